"""The pod's systemd units, generated from its apps.

- ``default.target`` wants every app's service (and journald, which keeps the apps' logs);
- ``<app>.service`` runs the app in ``/opt/stage2/<app>/rootfs`` (``RootDirectory=``) as its
  user, with its environment, capabilities, limits and event handlers; its stdout and stderr
  go to FIFOs that ``rkt run`` relays to its own terminal and to the pod's journal;
- ``reaper-<app>.service`` (the app's ``OnSuccess=``/``OnFailure=``) records the app's exit
  status in ``/rkt/status/<app>`` and, once every app has one, ends the pod with the exit
  status of the first app that failed (``systemctl exit``);
- ``<app>.<port>.socket`` for each port of the app that gets sockets ``rkt run`` was passed by
  socket activation: it lists their exact addresses, so that systemd in the pod adopts the
  descriptors nspawn hands it (instead of opening sockets of its own) and passes them to the
  app's service, named after the port (``FileDescriptorName=``).

Everything is text; values are quoted and escaped for systemd's unit file syntax.
"""

from __future__ import annotations

import re
import signal
from rkt_core.plugin_api import dataclass, field
from rkt_core.plugin_api.stage1 import AppLimits

STAGE2 = "/opt/stage2"
IO_DIR = "/rkt/io"
REAPER = "/rkt/reaper"
APPS_FILE = "/rkt/apps"
SHELL = "/usr/bin/sh"
STOP_TIMEOUT_SECONDS = 10

_UNIT_SAFE = re.compile(r"[a-z0-9_.]")


@dataclass(frozen=True)
class Command:
    """A resolved program: its executable (absolute in the app's root) and argv."""

    path: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class PortSockets:
    """The sockets an app gets for one of its ports: the port's name, its protocol (``tcp`` or
    ``udp``) and the addresses they listen on (``127.0.0.1:8080``)."""

    port: str
    protocol: str
    addresses: tuple[str, ...]


@dataclass
class AppService:
    """Everything one app's service needs."""

    app: str
    image: str
    main: Command
    working_directory: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    environment: dict[str, str]
    limits: AppLimits
    pre_start: Command | None = None
    post_stop: Command | None = None
    # (source in the pod, target in the app): the app's own cgroup directories, shown to it
    # where the hierarchies are (/sys/fs/cgroup/<controller>).
    cgroup_views: list[tuple[str, str]] = field(default_factory=list)
    unified: bool = False  # cgroup v2 host: MemoryMax=/CPUQuota= on the unified hierarchy
    sockets: list[PortSockets] = field(default_factory=list)  # passed by socket activation

    @property
    def unit(self) -> str:
        """The service's unit name without ``.service``."""
        return unit_name(self.app)


def supplementary_groups(gid: int, groups: tuple[int, ...]) -> list[int]:
    """An app's supplementary groups: its group, then the image's ``supplementaryGIDs``. Its
    unit names them all (systemd adds the group itself only when it is not 0), and ``rkt
    enter`` sets the same list."""
    return list(dict.fromkeys((gid, *groups)))


def unit_name(app: str) -> str:
    """A unit name for an app: characters systemd does not allow are hex-escaped (``\\xNN``)."""
    return "".join(c if _UNIT_SAFE.fullmatch(c) else f"\\x{ord(c):02x}" for c in app)


def service_file(app: str) -> str:
    """The file name of an app's service."""
    return unit_name(app) + ".service"


def socket_file(app: str, port: str) -> str:
    """The file name of the socket unit of an app's port."""
    return f"{unit_name(app)}.{unit_name(port)}.socket"


def _escape(value: str) -> str:
    """A double-quoted word for unit files: C escapes, ``%`` specifiers and ``$`` expansion
    disabled."""
    out = []
    for c in value:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "%":
            out.append("%%")
        elif c == "$":
            out.append("$$")
        elif ord(c) < 0x20 or ord(c) == 0x7f:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _plain(value: str) -> str:
    """A value for settings that take no quoting: refuse what would break the line."""
    if any(ord(c) < 0x20 for c in value):
        raise ValueError(f"control character in unit file value {value!r}")
    return value.replace("%", "%%")


def command_line(command: Command) -> str:
    """An Exec*= value that runs exactly ``command``, its argv[0] included (``@``), with no
    variable expansion and no specifiers."""
    return "@" + " ".join([_escape(command.path)] + [_escape(a) for a in command.argv])


def _environment_line(name: str, value: str) -> str:
    # Environment= takes the quoted "NAME=VALUE" word; "$" is not expanded there.
    return "Environment=" + _escape(f"{name}={value}").replace("$$", "$")


def app_service(svc: AppService, interactive: bool) -> str:
    """The text of ``<app>.service``."""
    root = f"{STAGE2}/{svc.app}/rootfs"
    lines = [
        "[Unit]",
        f"Description={_plain(f'Application={svc.app} Image={svc.image}')}",
        "DefaultDependencies=false",
        # The pod's shutdown stops the app before it unmounts the app's root: an app whose
        # start was still queued then never starts (it would find its root gone: status 203).
        "Conflicts=shutdown.target",
        "Before=shutdown.target",
        # One reaper per outcome: systemd passes the exit status (MONITOR_*) only to a unit
        # that one unit triggers once.
        f"OnSuccess={reaper_file(svc.app, True)}",
        f"OnFailure={reaper_file(svc.app, False)}",
    ]
    if not interactive:
        lines.append("After=systemd-journald.socket")
    sockets = " ".join(socket_file(svc.app, s.port) for s in svc.sockets)
    if sockets:
        lines += [f"Requires={sockets}", f"After={sockets}"]
    lines += [
        "",
        "[Service]",
        "Type=exec",
        "Restart=no",
        f"RootDirectory={_plain(root)}",
        "MountAPIVFS=yes",
        f"WorkingDirectory={_plain(svc.working_directory)}",
        f"User={svc.uid}",
        f"Group={svc.gid}",
        f"SyslogIdentifier={_plain(svc.app)}",
        f"TimeoutStopSec={STOP_TIMEOUT_SECONDS}",
    ]
    if sockets:
        lines.append(f"Sockets={sockets}")
    lines.append("SupplementaryGroups=" + " ".join(
        str(g) for g in supplementary_groups(svc.gid, svc.groups)))
    lines.append("CapabilityBoundingSet=" + " ".join(svc.limits.capabilities))
    if svc.limits.memory_bytes is not None:
        lines.append(f"{'MemoryMax' if svc.unified else 'MemoryLimit'}={svc.limits.memory_bytes}")
    if svc.limits.cpu_quota_percent is not None:
        lines.append(f"CPUQuota={svc.limits.cpu_quota_percent}%")
    if svc.cgroup_views:
        # The pod's cgroup tree, then the app's own cgroups over it where systemd made them.
        lines.append("BindReadOnlyPaths=/sys/fs/cgroup")
    for source, target in svc.cgroup_views:
        lines.append(f"BindReadOnlyPaths=-{_plain(source)}:{_plain(target)}")
    for name, value in svc.environment.items():
        lines.append(_environment_line(name, value))
    if interactive:
        lines += ["StandardInput=tty", "StandardOutput=tty", "StandardError=tty",
                  "TTYPath=/dev/console", "TTYReset=no", "TTYVHangup=no"]
    else:
        lines += ["StandardInput=null",
                  f"StandardOutput=file:{IO_DIR}/{svc.unit}.stdout",
                  f"StandardError=file:{IO_DIR}/{svc.unit}.stderr"]
    if svc.pre_start is not None:
        lines.append("ExecStartPre=" + command_line(svc.pre_start))
    lines.append("ExecStart=" + command_line(svc.main))
    if svc.post_stop is not None:
        lines.append("ExecStopPost=-" + command_line(svc.post_stop))
    return "\n".join(lines) + "\n"


LISTEN_SETTINGS = {"tcp": "ListenStream", "udp": "ListenDatagram"}


def socket_unit(app: str, sockets: PortSockets) -> str:
    """The text of the socket unit of an app's port: the sockets passed to the pod for it."""
    return "\n".join([
        "[Unit]",
        f"Description={_plain(f'Application={app} port {sockets.port}')}",
        "DefaultDependencies=false",
        "",
        "[Socket]",
        f"Service={service_file(app)}",
        f"FileDescriptorName={_plain(sockets.port)}",
        *(f"{LISTEN_SETTINGS[sockets.protocol]}={_plain(a)}" for a in sockets.addresses),
    ]) + "\n"


# systemd adopts the sockets it was passed at start-up, before it loads the units the pod's
# target needs: only units loaded by then get one. The root slice is (it is always there), and
# so are the units it names.
SOCKETS_DROP_IN_DIR = "-.slice.d"
SOCKETS_DROP_IN = "rkt-sockets.conf"


def sockets_drop_in(socket_units: list[str]) -> str:
    """The text of the root slice's drop-in that has systemd load the socket units early."""
    return "[Unit]\n" + "".join(f"Wants={unit}\n" for unit in socket_units)


def reaper_file(app: str, success: bool) -> str:
    """The file name of the unit that records an app's exit status after a success
    (``exited-<app>.service``) or a failure (``reaper-<app>.service``)."""
    return f"{'exited' if success else 'reaper'}-{unit_name(app)}.service"


def reaper_service(app: str) -> str:
    """The text of an app's reaper units: ``/rkt/reaper <app>`` outside the app's root once
    the app's service ended (systemd passes the exit status as ``MONITOR_*``)."""
    return "\n".join([
        "[Unit]",
        f"Description={_plain(f'Exit status of {app}')}",
        "DefaultDependencies=false",
        "",
        "[Service]",
        "Type=oneshot",
        f"ExecStart={SHELL} {REAPER} {_escape(app)}",
    ]) + "\n"


def default_target(apps: list[str], journal: bool) -> str:
    """The text of ``default.target``: the apps (and journald)."""
    wants = [service_file(a) for a in apps]
    if journal:
        # journald writes to the runtime journal until it is told to flush to /var/log/journal
        wants[:0] = ["systemd-journald.service", "systemd-journal-flush.service"]
    return "\n".join([
        "[Unit]",
        "Description=rkt pod",
        "Wants=" + " ".join(wants),
    ]) + "\n"


# systemd names the signal that killed an app (MONITOR_EXIT_STATUS=KILL); the shell of the
# stage1 root may be dash, whose ``kill -l`` cannot turn a name into a number: a table does.
_SIGNAL_CASES = "".join(f"    {s.name[3:]}) code={128 + s.value} ;;\n"
                        for s in sorted(signal.Signals, key=lambda s: s.value)
                        if not s.name.startswith("SIGRT") and s.name != "SIGIOT")

REAPER_SCRIPT = """\
#!/bin/sh
# Records the exit status of app $1 (from systemd's MONITOR_* variables) and, once every app
# of the pod has one, ends the pod with the status of the first app that failed (128+N for an
# app killed by signal N, as a shell reports it).
app=$1
case "$MONITOR_EXIT_CODE" in
    exited) code=$MONITOR_EXIT_STATUS ;;
    killed|dumped) case "$MONITOR_EXIT_STATUS" in
""" + _SIGNAL_CASES + """\
    *) code=128 ;;
    esac ;;
    *) code=1 ;;
esac
case "$code" in ''|*[!0-9]*) code=1 ;; esac
echo "$code" > "/rkt/status/.$app.tmp" && mv -f "/rkt/status/.$app.tmp" "/rkt/status/$app"
[ "$code" = 0 ] || ln -s "$app" /rkt/first-failure 2>/dev/null
while read -r other; do
    [ -e "/rkt/status/$other" ] || exit 0
done < /rkt/apps
code=0
first=$(readlink /rkt/first-failure 2>/dev/null) && code=$(cat "/rkt/status/$first")
exec /usr/bin/systemctl --no-block exit "$code"
"""

JOURNALD_CONF = """\
[Journal]
Storage=persistent
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
"""
