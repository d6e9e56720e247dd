"""The pod manifest: the apps of a pod, their images, volumes and mounts (appc v0.7.4)."""

import re

from .. import APPC_VERSION
from ..records import dataclass, field
from .annotations import Annotations
from .app import App
from .errors import AppcError
from .gojson import (INT64_MAX, UINT64_MAX, as_bool, as_int, as_list, as_str, dumps, loads,
                     struct_fields)
from .identifiers import (parse_semver, quote, validate_ac_name, validate_image_id,
                          validate_image_name)
from .isolators import Isolator, isolators_from_json
from .labels import Labels

POD_MANIFEST_KIND = "PodManifest"
EMPTY_VOLUME_DEFAULT_MODE = "0755"
PATH_MAX = 4096
_OCTAL = r"[0-7]+"
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _cli_params(text: str, what: str) -> dict[str, str]:
    """Split ``key=value,key=value`` (each key once), as appc's flag parsers do."""
    params = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise AppcError(f"invalid {what} {quote(text)}: {quote(key)} has no value "
                            f"(expected key=value)")
        if key in params:
            raise AppcError(f"invalid {what} {quote(text)}: {quote(key)} is given more than once")
        params[key] = value
    return params


def _cli_int(value: str, what: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise AppcError(f"invalid {what} {quote(value)}: must be an integer")
    if len(value) > 20:  # past any 64-bit id (and Python refuses int() of thousands of digits)
        raise AppcError(f"invalid {what} {quote(value)}: out of range")
    return int(value)


def _check_cli_path(path: str, what: str) -> None:
    """A path given on the command line: no control characters (in a path they are a mistake
    or an attack on what prints or parses it) and at most PATH_MAX bytes."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise AppcError(f"invalid {what}: the path contains a control character")
    if len(path.encode("utf-8", "surrogateescape")) > PATH_MAX:
        raise AppcError(f"invalid {what}: the path is longer than {PATH_MAX} bytes")


@dataclass
class Volume:
    """A volume of the pod: a host directory (``host``) or a new empty one (``empty``).

    An empty volume gets mode ``"0755"`` and uid/gid 0 unless given; a host volume needs an
    absolute ``source`` and takes no mode, uid or gid.
    """

    name: str
    kind: str
    source: str = ""
    read_only: bool | None = None
    mode: str | None = None
    uid: int | None = None
    gid: int | None = None

    def __post_init__(self):
        if self.kind == "empty":
            self.mode = EMPTY_VOLUME_DEFAULT_MODE if self.mode is None else self.mode
            self.uid = 0 if self.uid is None else self.uid
            self.gid = 0 if self.gid is None else self.gid
        self.validate()

    def validate(self) -> None:
        """Check the name and the fields each kind needs or refuses."""
        validate_ac_name(self.name, "volume name")
        what = f"volume {quote(self.name)}"
        if self.kind == "empty":
            if self.source:
                raise AppcError(f"invalid {what}: an empty volume takes no source")
            if not isinstance(self.mode, str) or not re.fullmatch(_OCTAL, self.mode):
                raise AppcError(f"invalid {what}: mode {quote(self.mode)} must be an octal "
                                f"string such as \"0755\"")
            for key in ("uid", "gid"):
                as_int(getattr(self, key), f"{what} {key}", -INT64_MAX - 1, INT64_MAX)
        elif self.kind == "host":
            if not self.source:
                raise AppcError(f"invalid {what}: a host volume needs a source")
            for key in ("mode", "uid", "gid"):
                if getattr(self, key) is not None:
                    raise AppcError(f"invalid {what}: a host volume takes no {key}")
            if not self.source.startswith("/"):
                raise AppcError(f"invalid {what}: source {quote(self.source)} must be an "
                                f"absolute path")
        else:
            raise AppcError(f"invalid {what}: kind {quote(self.kind)} must be \"host\" or "
                            f"\"empty\"")

    @classmethod
    def from_json(cls, data: object, what: str = "volume") -> "Volume":
        """Decode a volume object (``mode`` is a string holding octal digits)."""
        fields = struct_fields(data, ("name", "kind", "source", "readOnly", "mode", "uid", "gid"),
                               what)
        read_only, mode = fields.get("readOnly"), fields.get("mode")
        uid, gid = fields.get("uid"), fields.get("gid")
        return cls(
            name=as_str(fields.get("name", ""), f"{what} name"),
            kind=as_str(fields.get("kind", ""), f"{what} kind"),
            source=as_str(fields.get("source", ""), f"{what} source"),
            read_only=None if read_only is None else as_bool(read_only, f"{what} readOnly"),
            mode=None if mode is None else as_str(mode, f"{what} mode"),
            uid=None if uid is None else as_int(uid, f"{what} uid", -INT64_MAX - 1, INT64_MAX),
            gid=None if gid is None else as_int(gid, f"{what} gid", -INT64_MAX - 1, INT64_MAX),
        )

    @classmethod
    def from_cli(cls, text: str) -> "Volume":
        """Parse rkt's ``--volume NAME,kind=host|empty[,source=PATH][,readOnly=BOOL]
        [,mode=0755][,uid=N][,gid=N]``."""
        params = _cli_params("name=" + text, "--volume value")
        what = f"--volume value {quote(text)}"
        unknown = set(params) - {"name", "kind", "source", "readOnly", "mode", "uid", "gid"}
        if unknown:
            raise AppcError(f"invalid {what}: unknown parameter {quote(sorted(unknown)[0])}")
        read_only = params.get("readOnly")
        if read_only is not None and read_only not in _TRUE + _FALSE:
            raise AppcError(f"invalid {what}: readOnly must be true or false")
        uid, gid = params.get("uid"), params.get("gid")
        _check_cli_path(params.get("source", ""), f"source in {what}")
        return cls(
            name=params["name"],
            kind=params.get("kind", ""),
            source=params.get("source", ""),
            read_only=None if read_only is None else read_only in _TRUE,
            mode=params.get("mode"),
            uid=None if uid is None else _cli_int(uid, f"uid in {what}"),
            gid=None if gid is None else _cli_int(gid, f"gid in {what}"),
        )

    def to_cli(self) -> str:
        """The ``--volume`` text for this volume; empty-volume defaults are left out."""
        text = f"{self.name},kind={self.kind}"
        if self.source:
            text += f",source={self.source}"
        if self.read_only is not None:
            text += f",readOnly={'true' if self.read_only else 'false'}"
        if self.kind == "empty":
            if self.mode != EMPTY_VOLUME_DEFAULT_MODE:
                text += f",mode={self.mode}"
            if self.uid != 0:
                text += f",uid={self.uid}"
            if self.gid != 0:
                text += f",gid={self.gid}"
        return text

    def to_json(self) -> dict:
        """The JSON form; unset optional fields are left out, as Go does."""
        self.validate()
        data = {"name": self.name, "kind": self.kind}
        if self.source:
            data["source"] = self.source
        for key, value in (("readOnly", self.read_only), ("mode", self.mode),
                           ("uid", self.uid), ("gid", self.gid)):
            if value is not None:
                data[key] = value
        return data


@dataclass
class Mount:
    """Mounts the pod volume ``volume`` at ``path`` inside one app."""

    volume: str
    path: str

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check the volume name and that a path is given."""
        validate_ac_name(self.volume, "mount volume")
        if not isinstance(self.path, str) or not self.path:
            raise AppcError(f"invalid mount of volume {quote(self.volume)}: path must be set")

    @classmethod
    def from_json(cls, data: object, what: str = "mount") -> "Mount":
        """Decode ``{"volume": ..., "path": ...}``."""
        fields = struct_fields(data, ("volume", "path"), what)
        return cls(as_str(fields.get("volume", ""), f"{what} volume"),
                   as_str(fields.get("path", ""), f"{what} path"))

    @classmethod
    def from_cli(cls, text: str) -> "Mount":
        """Parse rkt's ``--mount volume=NAME,target=PATH``."""
        params = _cli_params(text, "--mount value")
        unknown = set(params) - {"volume", "target"}
        if unknown:
            raise AppcError(f"invalid --mount value {quote(text)}: unknown parameter "
                            f"{quote(sorted(unknown)[0])} (expected volume=NAME,target=PATH)")
        if "volume" not in params or "target" not in params:
            raise AppcError(f"invalid --mount value {quote(text)}: expected "
                            f"volume=NAME,target=PATH")
        _check_cli_path(params["target"], f"target in --mount value {quote(text)}")
        return cls(params["volume"], params["target"])

    def to_json(self) -> dict:
        """The JSON form."""
        self.validate()
        return {"volume": self.volume, "path": self.path}


@dataclass
class RuntimeImage:
    """The image of a pod app: its ID (required once the pod is reified), name and labels."""

    name: str | None = None
    id: str | None = None
    labels: Labels = field(default_factory=Labels)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check the optional name and ID."""
        if self.name is not None:
            validate_image_name(self.name)
        if self.id is not None:
            validate_image_id(self.id)

    @classmethod
    def from_json(cls, data: object, what: str = "image") -> "RuntimeImage":
        """Decode ``{"name", "id", "labels"}``."""
        fields = struct_fields(data, ("name", "id", "labels"), what)
        name, image_id = fields.get("name"), fields.get("id")
        return cls(name=None if name is None else as_str(name, f"{what} name"),
                   id=None if image_id is None else as_str(image_id, f"{what} id"),
                   labels=Labels.from_json(fields.get("labels"), f"{what} labels"))

    def to_json(self) -> dict:
        """The JSON form (``id`` is left out while unknown, in a pod template)."""
        self.validate()
        data = {}
        if self.name is not None:
            data["name"] = self.name
        if self.id is not None:
            data["id"] = self.id
        if self.labels:
            data["labels"] = self.labels.to_json()
        return data


@dataclass
class RuntimeApp:
    """One app of the pod: its ACName, image, optional ``app`` replacing the image's, mounts."""

    name: str
    image: RuntimeImage
    app: App | None = None
    mounts: list[Mount] = field(default_factory=list)
    annotations: Annotations = field(default_factory=Annotations)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check the app name."""
        validate_ac_name(self.name, "app name")

    @classmethod
    def from_json(cls, data: object, what: str = "app") -> "RuntimeApp":
        """Decode a pod app object."""
        fields = struct_fields(data, ("name", "image", "app", "mounts", "annotations"), what)
        name = validate_ac_name(as_str(fields.get("name", ""), f"{what} name"), "app name")
        what = f"app {quote(name)}"
        app = fields.get("app")
        return cls(
            name=name,
            image=RuntimeImage.from_json(fields.get("image", {}), f"{what} image"),
            app=None if app is None else App.from_json(app, f"{what} app"),
            mounts=[Mount.from_json(m, f"{what} mounts[{i}]") for i, m in
                    enumerate(as_list(fields.get("mounts", []), f"{what} mounts"))],
            annotations=Annotations.from_json(fields.get("annotations"), f"{what} annotations"),
        )

    def to_json(self) -> dict:
        """The JSON form; ``app``, ``mounts`` and ``annotations`` only when set."""
        self.validate()
        data = {"name": self.name, "image": self.image.to_json()}
        if self.app is not None:
            data["app"] = self.app.to_json()
        if self.mounts:
            data["mounts"] = [m.to_json() for m in self.mounts]
        if self.annotations:
            data["annotations"] = self.annotations.to_json()
        return data


@dataclass
class ExposedPort:
    """Publishes the app port called ``name`` on ``host_port`` of the host (only on the
    address ``host_ip`` if set: ``hostIP``, as later appc versions and rkt write it)."""

    name: str
    host_port: int = 0
    host_ip: str = ""

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check the port name, that the host port is an unsigned integer and the host IP an
        address."""
        validate_ac_name(self.name, "exposed port name")
        as_int(self.host_port, f"hostPort of port {quote(self.name)}", 0, UINT64_MAX)
        if self.host_ip:
            import ipaddress

            try:
                ipaddress.ip_address(self.host_ip)
            except ValueError:
                raise AppcError(f"invalid hostIP of port {quote(self.name)}: "
                                f"{quote(self.host_ip)}") from None

    @classmethod
    def from_json(cls, data: object, what: str = "port") -> "ExposedPort":
        """Decode ``{"name": ..., "hostPort": ..., "hostIP": ...}``."""
        fields = struct_fields(data, ("name", "hostPort", "hostIP"), what)
        return cls(as_str(fields.get("name", ""), f"{what} name"),
                   as_int(fields.get("hostPort", 0), f"{what} hostPort", 0, UINT64_MAX),
                   as_str(fields.get("hostIP", ""), f"{what} hostIP"))

    def to_json(self) -> dict:
        """The JSON form (``hostIP`` only when set)."""
        self.validate()
        data = {"name": self.name, "hostPort": self.host_port}
        if self.host_ip:
            data["hostIP"] = self.host_ip
        return data


_FIELDS = ("acVersion", "acKind", "apps", "volumes", "isolators", "annotations", "ports")


def _list_or_null(items: list) -> list | None:
    """Go writes a nil slice without omitempty as null."""
    return [item.to_json() for item in items] if items else None


@dataclass
class PodManifest:
    """An appc pod manifest. Building one validates it; ``to_json`` validates again.

    Like appc, only ``acKind`` is required when parsing; ``acVersion`` may be absent (empty
    here), but a manifest without one cannot be written back.
    """

    ac_version: str = APPC_VERSION
    ac_kind: str = POD_MANIFEST_KIND
    apps: list[RuntimeApp] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    isolators: list[Isolator] = field(default_factory=list)
    annotations: Annotations = field(default_factory=Annotations)
    ports: list[ExposedPort] = field(default_factory=list)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check the kind, the version when given, and that app names are unique."""
        if self.ac_kind != POD_MANIFEST_KIND:
            raise AppcError(f"invalid pod manifest: acKind must be {quote(POD_MANIFEST_KIND)}, "
                            f"not {quote(self.ac_kind)}")
        if self.ac_version:
            self.ac_version = parse_semver(self.ac_version)
        seen = set()
        for app in self.apps:
            if app.name in seen:
                raise AppcError(f"invalid pod manifest: more than one app is named "
                                f"{quote(app.name)}")
            seen.add(app.name)

    def app(self, name: str) -> RuntimeApp | None:
        """The app called ``name``, or None."""
        return next((app for app in self.apps if app.name == name), None)

    @classmethod
    def from_json(cls, data: bytes | str | dict) -> "PodManifest":
        """Parse and validate a pod manifest from JSON text or an already decoded object."""
        fields = struct_fields(loads(data, "pod manifest"), _FIELDS, "pod manifest")

        def items(key: str, decode) -> list:
            return [decode(item, f"{key}[{i}]")
                    for i, item in enumerate(as_list(fields.get(key, []), key))]

        return cls(
            ac_version=as_str(fields.get("acVersion", ""), "pod manifest acVersion"),
            ac_kind=as_str(fields.get("acKind", ""), "pod manifest acKind"),
            apps=items("apps", RuntimeApp.from_json),
            volumes=items("volumes", Volume.from_json),
            isolators=isolators_from_json(fields.get("isolators"), "pod isolators"),
            annotations=Annotations.from_json(fields.get("annotations"), "pod annotations"),
            ports=items("ports", ExposedPort.from_json),
        )

    def to_dict(self) -> dict:
        """The JSON object as rkt writes it: every key present, empty lists as null except
        ``ports``, which is ``[]``."""
        self.validate()
        if not self.ac_version:
            raise AppcError("invalid pod manifest: acVersion must be set to write it")
        return {
            "acVersion": self.ac_version,
            "acKind": self.ac_kind,
            "apps": _list_or_null(self.apps),
            "volumes": _list_or_null(self.volumes),
            "isolators": _list_or_null(self.isolators),
            "annotations": self.annotations.to_json() if self.annotations else None,
            "ports": [port.to_json() for port in self.ports],
        }

    def to_json(self, pretty: bool = False) -> str:
        """The manifest as Go's ``json.Marshal`` writes it (``MarshalIndent``, tab, if pretty)."""
        return dumps(self.to_dict(), pretty)
