"""Configuration files: ``auth``, ``dockerAuth``, ``paths`` and ``stage1`` kinds, and ``limits``
(not in rkt: the bounds on what an image archive may expand to, see
:class:`rkt_core.store.aci.Limits`).

rkt reads ``*.json`` files directly inside ``auth.d/``, ``paths.d/`` and ``stage1.d/`` of the system
(``/usr/lib/rkt``), local (``/etc/rkt``) and user directories, in that order; later layers override
earlier ones per domain, registry or field. Inside one directory, the same domain, registry or field
given twice is an error.
"""

from __future__ import annotations

import json
import os

from .errors import RktError
from .records import dataclass, field

DEFAULT_SYSTEM_CONFIG = "/usr/lib/rkt"
DEFAULT_LOCAL_CONFIG = "/etc/rkt"
DEFAULT_DATA_DIR = "/var/lib/rkt"

_SUBDIR_KINDS = {"auth.d": ("auth", "dockerAuth"), "paths.d": ("paths",), "stage1.d": ("stage1",),
                 "limits.d": ("limits",)}
# limits fields: JSON key -> Config attribute
_LIMITS = {"maxUncompressedBytes": "max_uncompressed_bytes",
           "maxCompressionRatio": "max_compression_ratio",
           "compressionRatioGraceBytes": "compression_ratio_grace_bytes"}


class ConfigError(RktError):
    """A configuration file is malformed."""


@dataclass(frozen=True)
class Auth:
    """Credentials for one host: ``type`` is ``basic``, ``oauth`` or ``aws``.

    A domain is a host name, or ``host:port`` to apply to that port only; the http fetchers send
    the credentials only to that host and only over https (:mod:`rkt_core.remote.httpclient`). ``aws``
    credentials are parsed and shown by ``rkt config`` but not used for signing requests.
    """

    type: str
    credentials: dict

    def headers(self) -> dict[str, str]:
        """The HTTP headers that carry these credentials (AWS signing is done by the fetcher)."""
        import base64

        if self.type == "basic":
            raw = f'{self.credentials["user"]}:{self.credentials["password"]}'.encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if self.type == "oauth":
            return {"Authorization": "Bearer " + self.credentials["token"]}
        return {}


@dataclass
class Config:
    """The merged configuration of all layers."""

    auth: dict[str, Auth] = field(default_factory=dict)
    docker_auth: dict[str, dict] = field(default_factory=dict)
    data_dir: str = ""
    stage1_images_dir: str = ""
    stage1_name: str = ""
    stage1_version: str = ""
    stage1_location: str = ""
    max_uncompressed_bytes: int | None = None
    max_compression_ratio: int | None = None
    compression_ratio_grace_bytes: int | None = None
    # Settings of stage1 flavors: ``"flavors": {"kvm": {"accel": "tcg"}}`` in stage1 files;
    # a later layer overrides single settings of a flavor.
    stage1_flavors: dict[str, dict] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The ``rkt config`` document: one entry per auth domain and docker registry."""
        stage0: list[dict] = []
        for host, auth in self.auth.items():
            stage0.append({"rktVersion": "v1", "rktKind": "auth", "domains": [host],
                           "type": auth.type, "credentials": auth.credentials})
        for registry, creds in self.docker_auth.items():
            stage0.append({"rktVersion": "v1", "rktKind": "dockerAuth", "registries": [registry],
                           "credentials": creds})
        stage0.append({"rktVersion": "v1", "rktKind": "paths", "data": self.data_dir,
                       "stage1-images": self.stage1_images_dir})
        stage1 = {"rktVersion": "v1", "rktKind": "stage1", "name": self.stage1_name,
                  "version": self.stage1_version, "location": self.stage1_location}
        if self.stage1_flavors:
            stage1["flavors"] = self.stage1_flavors
        stage0.append(stage1)
        limits = {key: getattr(self, attr) for key, attr in _LIMITS.items()
                  if getattr(self, attr) is not None}
        if limits:
            stage0.append({"rktVersion": "v1", "rktKind": "limits", **limits})
        return {"stage0": stage0}


def load_config(*dirs: str) -> Config:
    """Read and merge the configuration directories, lowest precedence first (empty ones skipped)."""
    merged = Config()
    for directory in dirs:
        if directory:
            _merge(merged, _read_dir(directory))
    return merged


def _merge(into: Config, layer: Config) -> None:
    into.auth.update(layer.auth)
    into.docker_auth.update(layer.docker_auth)
    if layer.data_dir:
        into.data_dir = layer.data_dir
    if layer.stage1_images_dir:
        into.stage1_images_dir = layer.stage1_images_dir
    if layer.stage1_name:
        into.stage1_name, into.stage1_version = layer.stage1_name, layer.stage1_version
    if layer.stage1_location:
        into.stage1_location = layer.stage1_location
    for flavor, settings in layer.stage1_flavors.items():
        into.stage1_flavors.setdefault(flavor, {}).update(settings)
    for attr in _LIMITS.values():
        if getattr(layer, attr) is not None:
            setattr(into, attr, getattr(layer, attr))


def _read_dir(directory: str) -> Config:
    config = Config()
    if not os.path.exists(directory):
        return config
    if not os.path.isdir(directory):
        raise ConfigError(f'expected "{directory}" to be a directory')
    for subdir, kinds in _SUBDIR_KINDS.items():
        path = os.path.join(directory, subdir)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            file = os.path.join(path, name)
            if name.endswith(".json") and os.path.isfile(file):
                _parse_file(config, file, kinds)
    return config


def _parse_file(config: Config, path: str, kinds: tuple[str, ...]) -> None:
    try:
        with open(path, "rb") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f'failed to parse "{path}": {e}') from None
    if not isinstance(doc, dict):
        raise ConfigError(f'failed to parse "{path}": not a JSON object')
    kind, version = doc.get("rktKind"), doc.get("rktVersion")
    if not kind:
        raise ConfigError(f'no rktKind specified in "{path}"')
    if not version:
        raise ConfigError(f'no rktVersion specified in "{path}"')
    if kind not in kinds:
        raise ConfigError(f'"{path}" has kind "{kind}", but its directory holds kinds {", ".join(kinds)}')
    if version != "v1":
        raise ConfigError(f'"{path}": no parser available for configuration of kind "{kind}" '
                          f'and version "{version}"')
    try:
        _PARSERS[kind](config, doc)
    except ConfigError as e:
        raise ConfigError(f'failed to parse "{path}": {e}') from None


def _require_str(doc: dict, key: str, what: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} not specified")
    return value


def _parse_auth(config: Config, doc: dict) -> None:
    domains = doc.get("domains")
    if not isinstance(domains, list) or not domains:
        raise ConfigError("no domains specified")
    kind = doc.get("type")
    if not kind:
        raise ConfigError("no auth type specified")
    creds = doc.get("credentials")
    if not isinstance(creds, dict):
        raise ConfigError("no credentials")
    if kind == "basic":
        creds = {"user": _require_str(creds, "user", "user"),
                 "password": _require_str(creds, "password", "password")}
    elif kind == "oauth":
        creds = {"token": _require_str(creds, "token", "oauth bearer token")}
    elif kind == "aws":
        creds = {"accessKeyID": _require_str(creds, "accessKeyID", "AWS Access Key ID"),
                 "secretAccessKey": _require_str(creds, "secretAccessKey", "AWS Secret Access Key"),
                 "awsRegion": creds.get("awsRegion", "")}
    else:
        raise ConfigError(f'unknown auth type: "{kind}"')
    for domain in domains:
        if not isinstance(domain, str) or not domain or "/" in domain or domain != domain.strip():
            raise ConfigError(f"invalid domain {json.dumps(domain)}: expected a host name, "
                              "optionally with :port")
        if domain in config.auth:
            raise ConfigError(f'auth for domain "{domain}" is already specified')
        config.auth[domain] = Auth(kind, creds)


def _parse_docker_auth(config: Config, doc: dict) -> None:
    registries = doc.get("registries")
    if not isinstance(registries, list) or not registries:
        raise ConfigError("no registries specified")
    creds = doc.get("credentials")
    if not isinstance(creds, dict):
        raise ConfigError("no credentials")
    creds = {"user": _require_str(creds, "user", "user"),
             "password": _require_str(creds, "password", "password")}
    for registry in registries:
        if registry in config.docker_auth:
            raise ConfigError(f'credentials for docker registry "{registry}" are already specified')
        config.docker_auth[registry] = creds


def _parse_paths(config: Config, doc: dict) -> None:
    for key, attr, what in (("data", "data_dir", "data directory"),
                            ("stage1-images", "stage1_images_dir", "stage1 images directory")):
        value = doc.get(key)
        if not value:
            continue
        if getattr(config, attr):
            raise ConfigError(f"{what} is already specified")
        if not os.path.isabs(value):
            raise ConfigError(f"{what} must be an absolute path")
        setattr(config, attr, value)


def _parse_stage1(config: Config, doc: dict) -> None:
    name, version, location = doc.get("name", ""), doc.get("version", ""), doc.get("location", "")
    if name or version:
        if not name:
            raise ConfigError("default stage1 image version specified, but name is missing")
        if not version:
            raise ConfigError("default stage1 image name specified, but version is missing")
        if config.stage1_name:
            raise ConfigError("name and version of a default stage1 image are already specified")
        config.stage1_name, config.stage1_version = name, version
    if location:
        if config.stage1_location:
            raise ConfigError("location of a default stage1 image is already specified")
        if not os.path.isabs(location):
            from urllib.parse import urlparse

            scheme = urlparse(location).scheme
            if not scheme:
                raise ConfigError("default stage1 image location is either a relative path "
                                  "or a URL without scheme")
            if scheme not in ("file", "http", "https", "docker"):
                raise ConfigError(f'default stage1 image location URL has invalid scheme "{scheme}"')
        config.stage1_location = location
    flavors = doc.get("flavors", {})
    if not isinstance(flavors, dict) or not all(
            isinstance(v, dict) and all(isinstance(k, str) for k in v) for v in flavors.values()):
        raise ConfigError('"flavors" must map flavor names to objects of settings')
    for flavor, settings in flavors.items():
        known = config.stage1_flavors.setdefault(flavor, {})
        for key, value in settings.items():
            if key in known:
                raise ConfigError(f'setting "{key}" of the {flavor} flavor is already specified')
            known[key] = value


def _parse_limits(config: Config, doc: dict) -> None:
    for key, attr in _LIMITS.items():
        if key not in doc:
            continue
        value = doc[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{key} must be a positive whole number (got {json.dumps(value)})")
        if getattr(config, attr) is not None:
            raise ConfigError(f"{key} is already specified")
        setattr(config, attr, value)


_PARSERS = {"auth": _parse_auth, "dockerAuth": _parse_docker_auth,
            "paths": _parse_paths, "stage1": _parse_stage1, "limits": _parse_limits}
