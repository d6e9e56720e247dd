"""Finding and running CNI plugins, as the CNI specification says: the configuration on stdin,
the parameters in ``CNI_*`` environment variables, a result or an error as JSON on stdout.

Plugins are executables named after their type, searched in rkt's plugin directories, then in
Debian's (``/usr/lib/cni``) and the usual ``/opt/cni/bin``. rkt plugins can provide plugin
types too, as Python modules run with ``python -m`` (the ``rkt_cni_plugin_types`` hook,
:mod:`.hookspecs`; rkt-net-flannel provides ``flannel`` this way).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from rkt_core.plugin_api import RktError, dataclass

from .config import NET_DIR, check_type

SYSTEM_DIRS = ("/usr/lib/rkt/plugins/net", "/usr/lib/cni", "/opt/cni/bin")
TIMEOUT = 120  # seconds: a plugin that hangs (dhcp without a server) must not hang rkt
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def plugin_dirs(local_config: str) -> list[str]:
    """Where plugins are searched, in order (``CNI_PATH``)."""
    first = [os.path.join(local_config, NET_DIR)] if local_config else []
    return first + list(SYSTEM_DIRS)


@dataclass(frozen=True)
class Plugin:
    """A plugin found for a type: the command that runs it."""

    type: str
    argv: tuple[str, ...]

    @property
    def path(self) -> str:
        """How ``net-info.json`` names it (``pluginPath``)."""
        return " ".join(self.argv)


def python_types(ctx) -> dict:
    """The CNI plugin types rkt plugins provide, by name (``rkt_cni_plugin_types``)."""
    return {name: record for name, (record, _plugin) in
            ctx.plugins.declarations("rkt_cni_plugin_types").items()}


def find(plugin_type: str, dirs: list[str], python_types: dict = {}) -> Plugin:  # noqa: B006
    """The plugin for a type: an executable file in ``dirs``, else one of ``python_types``
    (``CniPluginType`` records by name, from the ``rkt_cni_plugin_types`` hook)."""
    check_type(plugin_type, "network configuration")
    for directory in dirs:
        path = os.path.join(directory, plugin_type)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return Plugin(plugin_type, (path,))
    python_type = python_types.get(plugin_type)
    if python_type is not None and _MODULE.match(python_type.module):
        return Plugin(plugin_type, (sys.executable, "-m", python_type.module))
    raise RktError(f'CNI plugin "{plugin_type}" not found in {":".join(dirs)}',
                       hint="install containernetworking-plugins, or the distribution that "
                            f'provides "{plugin_type}"')


def environment(command: str, container_id: str, netns: str, ifname: str, args: str,
                dirs: list[str]) -> dict[str, str]:
    """The plugin's environment: rkt's own (plugins run iptables and need ``PATH``) without
    stray ``CNI_*`` variables, plus the CNI parameters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.update(CNI_COMMAND=command, CNI_CONTAINERID=container_id, CNI_NETNS=netns,
               CNI_IFNAME=ifname, CNI_ARGS=args, CNI_PATH=":".join(dirs))
    return env


class PluginError(RktError):
    """A plugin failed; ``code`` is the CNI error code (0 if it said none), ``reason`` the
    plugin's own message ("" if the plugin itself said nothing: it timed out or could not
    start)."""

    def __init__(self, message: str, code: int = 0, reason: str = ""):
        super().__init__(message)
        self.code = code
        self.reason = reason


def run(plugin: Plugin, config: dict, env: dict[str, str],
        keep_fds: tuple[int, ...] = ()) -> dict | None:
    """Run one plugin command (with no descriptor of ours but ``keep_fds``); return its JSON
    result (None for an empty output, as DEL gives) or raise PluginError with the plugin's own
    message."""
    what = f'CNI plugin "{plugin.type}" ({env["CNI_COMMAND"]})'
    try:
        done = subprocess.run(plugin.argv, input=json.dumps(config).encode(), env=env,
                              capture_output=True, timeout=TIMEOUT, pass_fds=keep_fds)
    except subprocess.TimeoutExpired:
        raise PluginError(f"{what} did not finish within {TIMEOUT} s") from None
    except OSError as e:
        raise PluginError(f"{what} cannot be run: {e.strerror}") from None
    output = done.stdout.strip()
    if done.returncode != 0:
        reason = _error_message(output, done.stderr)
        raise PluginError(f"{what} failed: {reason}", _error_code(output), reason)
    if not output:
        return None
    try:
        result = json.loads(output)
    except ValueError:
        raise PluginError(f"{what} printed a result that is not JSON: "
                          f"{output[:200].decode(errors='replace')!r}") from None
    if not isinstance(result, dict):
        raise PluginError(f"{what} printed a result that is not a JSON object")
    return result


def _error_code(output: bytes) -> int:
    try:
        code = json.loads(output).get("code", 0)
    except (ValueError, AttributeError):
        return 0
    return code if isinstance(code, int) else 0


def _error_message(output: bytes, stderr: bytes) -> str:
    try:
        error = json.loads(output)
        message = str(error.get("msg") or "")
        if error.get("details"):
            message += f"; {error['details']}"
    except (ValueError, AttributeError):
        message = ""
    if not message:
        message = (output or stderr).decode(errors="replace").strip()[-500:] or "no message"
    return message
