"""The ``app`` section of an image or pod manifest: what to run and how (appc v0.7.4)."""

import re

from ..records import dataclass, field
from .errors import AppcError
from .gojson import (INT64_MAX, UINT64_MAX, as_bool, as_int, as_list, as_str, as_str_list,
                     struct_fields)
from .identifiers import quote, validate_ac_name
from .isolators import Isolator, isolators_from_json

EVENT_HANDLER_NAMES = ("pre-start", "post-stop")
_ENV_NAME = r"[A-Za-z_][A-Za-z_0-9]*"


def _list_from_json(data: object, what: str, decode) -> list:
    if data is None:
        return []
    return [decode(item, f"{what}[{i}]") for i, item in enumerate(as_list(data, what))]


def _str_list_or_null(items: list[str]) -> list[str] | None:
    """Go writes a nil slice as null; an empty exec list is written the same way."""
    return list(items) if items else None


@dataclass
class EventHandler:
    """A command run before the app starts (``pre-start``) or after it stops (``post-stop``)."""

    name: str
    exec: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check the handler name is one appc defines."""
        if self.name not in EVENT_HANDLER_NAMES:
            raise AppcError(f"invalid event handler name {quote(self.name)}: must be "
                            f"pre-start or post-stop")

    @classmethod
    def from_json(cls, data: object, what: str = "event handler") -> "EventHandler":
        """Decode ``{"name": ..., "exec": [...]}``."""
        fields = struct_fields(data, ("name", "exec"), what)
        return cls(as_str(fields.get("name", ""), f"{what} name"),
                   as_str_list(fields.get("exec", []), f"{what} exec"))

    def to_json(self) -> dict:
        """The JSON form."""
        self.validate()
        return {"name": self.name, "exec": _str_list_or_null(self.exec)}


@dataclass
class EnvironmentVariable:
    """One ``name=value`` pair of the app's environment; the value is not expanded."""

    name: str
    value: str = ""

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check the name is a shell-style identifier."""
        if not isinstance(self.name, str) or not re.fullmatch(_ENV_NAME, self.name):
            raise AppcError(f"invalid environment variable name {quote(self.name)}: must be a "
                            f"letter or _ followed by letters, digits or _")
        if not isinstance(self.value, str):
            raise AppcError(f"invalid value of environment variable {quote(self.name)}: "
                            f"must be a string")

    @classmethod
    def from_json(cls, data: object, what: str = "environment variable") -> "EnvironmentVariable":
        """Decode ``{"name": ..., "value": ...}``."""
        fields = struct_fields(data, ("name", "value"), what)
        return cls(as_str(fields.get("name", ""), f"{what} name"),
                   as_str(fields.get("value", ""), f"{what} value"))

    def to_json(self) -> dict:
        """The JSON form."""
        self.validate()
        return {"name": self.name, "value": self.value}


@dataclass
class MountPoint:
    """A place in the app's filesystem where the pod is expected to mount a volume."""

    name: str
    path: str
    read_only: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check the name is an ACName and a path is given."""
        validate_ac_name(self.name, "mount point name")
        if not isinstance(self.path, str) or not self.path:
            raise AppcError(f"invalid mount point {quote(self.name)}: path must be set")

    @classmethod
    def from_json(cls, data: object, what: str = "mount point") -> "MountPoint":
        """Decode ``{"name": ..., "path": ..., "readOnly": ...}``."""
        fields = struct_fields(data, ("name", "path", "readOnly"), what)
        return cls(as_str(fields.get("name", ""), f"{what} name"),
                   as_str(fields.get("path", ""), f"{what} path"),
                   as_bool(fields.get("readOnly", False), f"{what} readOnly"))

    def to_json(self) -> dict:
        """The JSON form (``readOnly`` only when true, as Go omits false)."""
        self.validate()
        data = {"name": self.name, "path": self.path}
        if self.read_only:
            data["readOnly"] = True
        return data


@dataclass
class Port:
    """A port (or ``count`` consecutive ports) the app listens on; a count of 0 means 1."""

    name: str
    protocol: str
    port: int
    count: int = 1
    socket_activated: bool = False

    def __post_init__(self):
        self.validate()
        if self.count == 0:
            self.count = 1

    def validate(self) -> None:
        """Check the name and that the port range lies within 1-65535."""
        validate_ac_name(self.name, "port name")
        if not isinstance(self.protocol, str):
            raise AppcError(f"invalid protocol of port {quote(self.name)}: must be a string")
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise AppcError(f"invalid port {quote(self.name)}: port {self.port} is not in "
                            f"the range 1-65535")
        if not isinstance(self.count, int) or self.count < 0 or self.port + self.count > 65536:
            raise AppcError(f"invalid port {quote(self.name)}: {self.count} ports from "
                            f"{self.port} go past 65535")

    @classmethod
    def from_json(cls, data: object, what: str = "port") -> "Port":
        """Decode ``{"name", "protocol", "port", "count", "socketActivated"}``."""
        fields = struct_fields(data, ("name", "protocol", "port", "count", "socketActivated"),
                               what)
        return cls(as_str(fields.get("name", ""), f"{what} name"),
                   as_str(fields.get("protocol", ""), f"{what} protocol"),
                   as_int(fields.get("port", 0), f"{what} port", 0, UINT64_MAX),
                   as_int(fields.get("count", 0), f"{what} count", 0, UINT64_MAX),
                   as_bool(fields.get("socketActivated", False), f"{what} socketActivated"))

    def to_json(self) -> dict:
        """The JSON form; every field is written, as in Go."""
        self.validate()
        return {"name": self.name, "protocol": self.protocol, "port": self.port,
                "count": self.count, "socketActivated": self.socket_activated}


_APP_FIELDS = ("exec", "eventHandlers", "user", "group", "supplementaryGIDs",
               "workingDirectory", "environment", "mountPoints", "ports", "isolators")


@dataclass
class App:
    """What an image (or a pod app overriding it) runs.

    ``exec`` may be empty or relative (searched in ``PATH``). ``user`` and ``group`` are
    required. ``working_directory`` is absolute when set (empty means ``/``).
    """

    exec: list[str] = field(default_factory=list)
    user: str = ""
    group: str = ""
    supplementary_gids: list[int] = field(default_factory=list)
    event_handlers: list[EventHandler] = field(default_factory=list)
    working_directory: str = ""
    environment: list[EnvironmentVariable] = field(default_factory=list)
    isolators: list[Isolator] = field(default_factory=list)
    mount_points: list[MountPoint] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check the rules that span fields (each item checks itself when built)."""
        if not isinstance(self.user, str) or not self.user:
            raise AppcError("invalid app: user is required")
        if not isinstance(self.group, str) or not self.group:
            raise AppcError("invalid app: group is required")
        if self.working_directory and not self.working_directory.startswith("/"):
            raise AppcError(f"invalid app workingDirectory {quote(self.working_directory)}: "
                            f"must be an absolute path")
        _check_unique([h.name for h in self.event_handlers], "event handler")
        _check_unique([e.name for e in self.environment], "environment variable")

    def env(self, name: str, default: str | None = None) -> str | None:
        """The value of environment variable ``name``, or ``default``."""
        for variable in self.environment:
            if variable.name == name:
                return variable.value
        return default

    @classmethod
    def from_json(cls, data: object, what: str = "app") -> "App":
        """Decode an ``app`` object; keys match case-insensitively, unknown keys are ignored."""
        fields = struct_fields(data, _APP_FIELDS, what)
        gids = [as_int(gid, f"{what} supplementaryGIDs[{i}]", -INT64_MAX - 1, INT64_MAX)
                for i, gid in enumerate(as_list(fields.get("supplementaryGIDs", []),
                                                f"{what} supplementaryGIDs"))]
        return cls(
            exec=as_str_list(fields.get("exec", []), f"{what} exec"),
            user=as_str(fields.get("user", ""), f"{what} user"),
            group=as_str(fields.get("group", ""), f"{what} group"),
            supplementary_gids=gids,
            event_handlers=_list_from_json(fields.get("eventHandlers"), f"{what} eventHandlers",
                                           EventHandler.from_json),
            working_directory=as_str(fields.get("workingDirectory", ""),
                                     f"{what} workingDirectory"),
            environment=_list_from_json(fields.get("environment"), f"{what} environment",
                                        EnvironmentVariable.from_json),
            isolators=isolators_from_json(fields.get("isolators"), f"{what} isolators"),
            mount_points=_list_from_json(fields.get("mountPoints"), f"{what} mountPoints",
                                         MountPoint.from_json),
            ports=_list_from_json(fields.get("ports"), f"{what} ports", Port.from_json),
        )

    def to_json(self) -> dict:
        """The JSON form, keys in Go's field order, empty optional lists left out."""
        self.validate()
        data = {"exec": _str_list_or_null(self.exec)}
        if self.event_handlers:
            data["eventHandlers"] = [h.to_json() for h in self.event_handlers]
        data["user"] = self.user
        data["group"] = self.group
        if self.supplementary_gids:
            data["supplementaryGIDs"] = list(self.supplementary_gids)
        if self.working_directory:
            data["workingDirectory"] = self.working_directory
        for key, items in (("environment", self.environment), ("mountPoints", self.mount_points),
                           ("ports", self.ports), ("isolators", self.isolators)):
            if items:
                data[key] = [item.to_json() for item in items]
        return data


def _check_unique(names: list[str], kind: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise AppcError(f"duplicate {kind} {quote(name)}: only one is allowed")
        seen.add(name)
