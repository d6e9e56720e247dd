"""The ``flannel`` CNI plugin: run with ``python -m rkt_net_flannel.cni`` (rkt-net-cni does so
for networks of ``"type": "flannel"``).

Like flannel's own CNI plugin it does no networking itself. ADD reads the subnet flanneld
leased to this host (``subnetFile``, default ``/run/flannel/subnet.env``), writes a
configuration for the delegate plugin (``delegate.type``, default ``bridge`` as the gateway,
host-local addresses from the host's subnet, a route to the whole flannel network, the MTU,
and masquerading only when flanneld does not do it), keeps it in ``dataDir/<container id>``
and runs the delegate, whose result it prints. DEL runs the delegate with the kept
configuration and then forgets it; nothing kept means nothing to delete.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys

SUBNET_FILE = "/run/flannel/subnet.env"
DATA_DIR = "/var/lib/cni/flannel"
SUPPORTED = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]
_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PluginError(Exception):
    """An error reported to the runtime as CNI error JSON (``code`` 100+ are ours)."""

    def __init__(self, message: str, code: int = 100, details: str = ""):
        super().__init__(message)
        self.code, self.details = code, details


def read_subnet_env(path: str) -> dict:
    """FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU and FLANNEL_IPMASQ from flanneld's file."""
    values = {}
    try:
        with open(path) as f:
            for line in f:
                key, eq, value = line.strip().partition("=")
                if eq:
                    values[key] = value
    except OSError as e:
        raise PluginError(f"cannot read {path}: {e.strerror}", 11) from None
    missing = [k for k in ("FLANNEL_NETWORK", "FLANNEL_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ")
               if k not in values]
    if missing:
        raise PluginError(f"{path} is missing {', '.join(missing)}", 7)
    try:
        return {"network": str(ipaddress.ip_network(values["FLANNEL_NETWORK"], strict=False)),
                "subnet": str(ipaddress.ip_network(values["FLANNEL_SUBNET"], strict=False)),
                "mtu": int(values["FLANNEL_MTU"]),
                "ipmasq": values["FLANNEL_IPMASQ"] == "true"}
    except ValueError as e:
        raise PluginError(f"{path}: {e}", 7) from None


def delegate_config(conf: dict, subnet: dict) -> dict:
    """The delegate plugin's configuration, as flannel's CNI plugin builds it."""
    delegate = dict(conf.get("delegate") or {})
    if "type" in delegate and not isinstance(delegate["type"], str):
        raise PluginError("'delegate' dictionary, if present, must have (string) 'type' field", 7)
    for key in ("name", "ipam"):
        if key in delegate:
            raise PluginError(f"'delegate' dictionary must not have '{key}' field, it'll be "
                              "set by flannel", 7)
    delegate["name"] = conf["name"]
    delegate.setdefault("type", "bridge")
    if not _TYPE.match(delegate["type"]):
        raise PluginError(f'invalid delegate plugin type "{delegate["type"]}"', 7)
    delegate.setdefault("ipMasq", not subnet["ipmasq"])
    delegate.setdefault("mtu", subnet["mtu"])
    if delegate["type"] == "bridge":
        delegate.setdefault("isGateway", True)
    if conf.get("cniVersion"):
        delegate["cniVersion"] = conf["cniVersion"]
    if conf.get("runtimeConfig") is not None:
        delegate["runtimeConfig"] = conf["runtimeConfig"]
    delegate["ipam"] = {"type": "host-local", "subnet": subnet["subnet"],
                        "routes": [{"dst": subnet["network"]}]}
    return delegate


def _find(plugin_type: str, cni_path: str) -> str:
    for directory in cni_path.split(":"):
        path = os.path.join(directory, plugin_type)
        if directory and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise PluginError(f'failed to find plugin "{plugin_type}" in path [{cni_path}]', 11)


def _delegate(config: dict, env: dict) -> tuple[int, bytes]:
    done = subprocess.run([_find(config["type"], env.get("CNI_PATH", ""))],
                          input=json.dumps(config).encode(), env=env, capture_output=True)
    sys.stderr.buffer.write(done.stderr)
    return done.returncode, done.stdout


def _scratch(conf: dict, env: dict) -> str:
    container = env.get("CNI_CONTAINERID", "")
    if not _CONTAINER_ID.match(container):
        raise PluginError(f'invalid CNI_CONTAINERID "{container}"', 4)
    return os.path.join(conf.get("dataDir") or DATA_DIR, container)


def add(conf: dict, env: dict) -> tuple[int, bytes]:
    """ADD: build, keep and run the delegate configuration."""
    config = delegate_config(conf, read_subnet_env(conf.get("subnetFile") or SUBNET_FILE))
    path = _scratch(conf, env)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    return _delegate(config, env)


def delete(conf: dict, env: dict) -> tuple[int, bytes]:
    """DEL: run the delegate with the kept configuration, then remove it."""
    path = _scratch(conf, env)
    try:
        with open(path) as f:
            config = json.load(f)
    except FileNotFoundError:
        return 0, b""  # already deleted, or never added
    if not isinstance(config, dict) or not _TYPE.match(str(config.get("type", ""))):
        raise PluginError(f"{path}: not a delegate configuration", 7)
    if conf.get("prevResult") is not None:
        config["prevResult"] = conf["prevResult"]
    code, output = _delegate(config, env)
    if code == 0:
        os.unlink(path)
    return code, output


def main() -> int:
    env = dict(os.environ)
    command = env.get("CNI_COMMAND", "")
    try:
        conf = json.loads(sys.stdin.buffer.read() or b"{}")
        if not isinstance(conf, dict):
            raise PluginError("the network configuration must be a JSON object", 6)
        if command == "VERSION":
            code, output = 0, json.dumps({"cniVersion": conf.get("cniVersion") or "1.0.0",
                                          "supportedVersions": SUPPORTED}).encode()
        elif command == "ADD":
            code, output = add(conf, env)
        elif command == "DEL":
            code, output = delete(conf, env)
        elif command == "CHECK":
            code, output = 0, b""
        else:
            raise PluginError(f'unknown CNI_COMMAND "{command}"', 4)
    except ValueError as e:
        return _fail(PluginError(f"invalid network configuration: {e}", 6))
    except PluginError as e:
        return _fail(e)
    sys.stdout.buffer.write(output)
    return code


def _fail(error: PluginError) -> int:
    message = {"cniVersion": "1.0.0", "code": error.code, "msg": str(error)}
    if error.details:
        message["details"] = error.details
    sys.stdout.write(json.dumps(message))
    return 1


if __name__ == "__main__":
    sys.exit(main())
