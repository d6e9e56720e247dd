"""The systemd-nspawn command line for a pod, and what it depends on on this host."""

from __future__ import annotations

import os
import shutil
import socket

from rkt_core.plugin_api import RktError

SYSTEM_BUS = "/run/dbus/system_bus_socket"
PRIVATE_USERS_COUNT = 65536


def binary() -> str:
    """The host's systemd-nspawn."""
    path = shutil.which("systemd-nspawn", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        raise RktError("systemd-nspawn is not installed",
                       hint="install it (Debian: apt-get install systemd-container)")
    return path


def system_bus() -> bool:
    """Whether systemd runs the host and its system bus answers (then nspawn registers the
    pod with machined)."""
    if not os.path.isdir("/run/systemd/system"):
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(0.5)
    try:
        sock.connect(SYSTEM_BUS)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def machine_name(uuid: str) -> str:
    """The pod's machine name (``rkt-<uuid>``)."""
    return f"rkt-{uuid}"


def argv(uuid: str, directory: str, *, hostname: str, register: bool, interactive: bool,
         netns: str = "", private_users: str = "", cgroup_view: str = "",
         capabilities: tuple[str, ...] = (), debug: bool = False) -> list[str]:
    """The nspawn command that boots the pod's stage1 root with systemd."""
    args = [binary(), "--boot", "--keep-unit", f"--register={'yes' if register else 'no'}",
            f"--machine={machine_name(uuid)}", f"--uuid={uuid}", f"--directory={directory}",
            "--bind-ro=/usr", f"--hostname={hostname}", "--link-journal=no",
            f"--console={'interactive' if interactive else 'read-only'}"]
    if not debug:
        args.append("--quiet")
    if netns:
        args.append(f"--network-namespace-path={netns}")
    if private_users:
        args += [f"--private-users={private_users}", "--private-users-ownership=off"]
    if cgroup_view:
        args.append(f"--bind={cgroup_view}:/sys/fs/cgroup")
    if capabilities:
        args.append("--capability=" + ",".join(capabilities))
    args.append("--")
    if debug:
        args += ["--log-level=debug", "--log-target=console", "--show-status=1"]
    else:
        args += ["--log-target=null", "--show-status=0"]
    return args


def environment() -> dict[str, str]:
    """nspawn's environment: rkt's, without a notify socket or sockets that are not the
    pod's."""
    env = {k: v for k, v in os.environ.items() if k not in (
        "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "RKT_LOCK_FD")}
    env["SYSTEMD_NSPAWN_CONTAINER_SERVICE"] = "rkt"
    return env
