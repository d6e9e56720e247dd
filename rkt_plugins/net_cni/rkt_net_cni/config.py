"""Network configurations: rkt's built-in ``default`` and ``default-restricted``, and the
user's ``<local-config>/net.d/*.conf`` (one plugin) and ``*.conflist`` (a chain of plugins).

A user network with the name of a built-in one replaces it. The pod's interfaces are named
``eth0``, ``eth1``... in the order of the configuration file names. Plugin types are plain
names of executables (CVE-2021-20206: a type like ``../x`` would run any binary).
"""

from __future__ import annotations

import json
import os
import re
from rkt_core.plugin_api import RktError, dataclass

NET_DIR = "net.d"
CNI_VERSION = "1.0.0"

# rkt's built-ins (stage1/net/rootfs/etc/rkt/net.d), kept as they are apart from the CNI
# version; default-restricted has its own subnet (rkt v1.27+), so the two never collide.
BUILTIN = {
    "99-default.conf": {
        "cniVersion": CNI_VERSION, "name": "default", "type": "ptp", "ipMasq": True,
        "ipam": {"type": "host-local", "subnet": "172.16.28.0/24",
                 "routes": [{"dst": "0.0.0.0/0"}]},
    },
    "99-default-restricted.conf": {
        "cniVersion": CNI_VERSION, "name": "default-restricted", "type": "ptp", "ipMasq": False,
        "ipam": {"type": "host-local", "subnet": "172.31.0.0/16"},
    },
}

RESERVED = ("host", "none", "all")  # --net names that never mean a CNI network
_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class NetConfig:
    """One network: its name, where it came from and the plugin configurations to run (one
    for ``.conf``, the chain of a ``.conflist``, each with ``cniVersion`` and ``name``)."""

    name: str
    filename: str
    source: str  # the file it was read from, "" for a built-in
    data: bytes  # the file's content, copied into the pod
    version: str
    plugins: list[dict]

    @property
    def ip_masq(self) -> bool:
        """Whether a plugin masquerades the pod's traffic (rkt forwards ports on the first
        such network)."""
        return any(p.get("ipMasq") is True for p in self.plugins)


def check_type(value: object, where: str) -> str:
    """A plugin type: a plain name, never a path."""
    if not isinstance(value, str) or not _TYPE.match(value):
        raise RktError(f'{where}: invalid plugin type {json.dumps(value)}: it must be a plain '
                       "plugin name (letters, digits, '.', '_', '+', '-'; no '/')")
    return value


def parse(data: bytes, filename: str, source: str = "") -> NetConfig:
    """Read a ``.conf`` or ``.conflist`` (by ``filename``) and check it."""
    where = source or f"built-in network {filename}"
    try:
        conf = json.loads(data)
    except ValueError as e:
        raise RktError(f"{where}: invalid JSON: {e}") from None
    if not isinstance(conf, dict):
        raise RktError(f"{where}: a network configuration must be a JSON object")
    name = conf.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RktError(f"{where}: missing or invalid network name {json.dumps(name)}")
    version = conf.get("cniVersion") or "0.1.0"
    if not isinstance(version, str):
        raise RktError(f"{where}: cniVersion must be a string")
    if filename.endswith(".conflist"):
        plugins = conf.get("plugins")
        if not isinstance(plugins, list) or not plugins or not all(isinstance(p, dict)
                                                                   for p in plugins):
            raise RktError(f'{where}: "plugins" must be a non-empty list of objects')
        plugins = [{**p, "cniVersion": version, "name": name} for p in plugins]
    else:
        plugins = [conf]
    for plugin in plugins:
        check_type(plugin.get("type"), where)
        for key in ("ipam", "delegate"):
            nested = plugin.get(key)
            if isinstance(nested, dict) and "type" in nested:
                check_type(nested["type"], f"{where} ({key})")
    return NetConfig(name, filename, source, data, version, plugins)


def _user_configs(local_config: str, warn) -> dict[str, NetConfig]:
    directory = os.path.join(local_config, NET_DIR)
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found: dict[str, NetConfig] = {}
    for filename in names:
        if not filename.endswith((".conf", ".conflist")):
            continue
        path = os.path.join(directory, filename)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            conf = parse(f.read(), filename, path)
        if conf.name in RESERVED:
            warn(f'networking: ignoring {path}: "{conf.name}" is a special --net name, not a '
                 "network's")
            continue
        if conf.name in found:
            warn(f'networking: network "{conf.name}" is already defined by '
                 f"{found[conf.name].source}; ignoring {path}")
            continue
        found[conf.name] = conf
    return found


def load(local_config: str, warn=lambda message: None) -> dict[str, NetConfig]:
    """Every network known: built-ins, replaced by user networks of the same name."""
    configs = {}
    for filename, conf in BUILTIN.items():
        configs[conf["name"]] = parse(json.dumps(conf, indent=2).encode() + b"\n", filename)
    configs.update(_user_configs(local_config, warn) if local_config else {})
    return configs


def select(configs: dict[str, NetConfig], names: list[str]) -> list[NetConfig]:
    """The networks asked for, in interface order: user networks by configuration file name,
    then rkt's built-ins (as rkt appended its default after the user's networks). ``all`` means
    every user network plus ``default``; a name nobody defines is an error."""
    missing = [n for n in names if n != "all" and n not in configs]
    if missing:
        raise RktError(f"networks not found: {', '.join(missing)}",
                       hint="define them in <local-config>/net.d/*.conf (e.g. /etc/rkt/net.d)")
    wanted = set(names)
    if "all" in wanted:
        wanted |= {c.name for c in configs.values() if c.source} | {"default"}
    chosen = [c for c in configs.values() if c.name in wanted]
    return sorted(chosen, key=lambda c: (not c.source, c.filename))
