"""What happens inside a chroot-style pod (the fly flavor and flavors like it): the app's root
and its mounts, a process's identity, exec.

The image is untrusted, so its root is only ever touched through an fd of it
(:mod:`rkt_core.sys.scoped`, :mod:`rkt_core.pod.approot`): no symlink in it makes rkt read,
create or mount anything outside it. Executables and working directories are resolved the same
way to symlink-free paths, and refused under ``/proc``, before rkt enters the root.
"""

from __future__ import annotations

import os
import signal
from typing import NoReturn

from ..errors import RktError
from ..sys import activation, mount, ns, proc, scoped
from ..sys.spawn import Channel, spawn
from ..types import RunOptions
from . import approot
from ..records import dataclass
from .runtime import DEFAULT_PATH, Account, AppRuntime, process_environment

SYSTEM_BINDS = ("/dev", "/proc", "/sys")  # bound recursively from the host, as rkt fly does


@dataclass(frozen=True)
class Process:
    """A program to start inside an app's root, fully resolved beforehand."""

    path: str  # the executable, absolute inside the root, no symlinks
    argv: list[str]
    cwd: str  # likewise
    account: Account
    env: dict[str, str]


# --- the pod's child: from a fresh mount namespace to the app -------------------------------


def start_app(app: AppRuntime, options: RunOptions, parent: int, channel: Channel,
              namespaces: int = 0, hostname: str = "") -> NoReturn:
    """Run in the child of ``rkt run`` (pid ``parent``): set the app's root up in a new mount
    namespace (and the other ``namespaces``, ``CLONE_NEW*`` flags; ``hostname`` is set in a new
    UTS namespace), run its pre-start handler, send the app's mount namespace fd and root fd to
    the parent if it has a post-stop handler (spawn it with ``fds=bool(app.post_stop)``), and
    exec the app, keeping the pod's lock fd open in it and passing it its sockets
    (``options.sockets``) as systemd would."""
    proc.set_parent_death_signal(signal.SIGKILL)  # until exec: rkt dying aborts the start
    _check_parent(parent)
    proc.set_dumpable(False)
    ns.unshare(ns.CLONE_NEWNS | namespaces)
    if hostname and namespaces & ns.CLONE_NEWUTS:
        import socket

        socket.sethostname(hostname)
    root = mount_root(app, options)
    if app.pre_start:
        run_handler(root, app, "pre-start",
                    process(root, app, app.pre_start, app.working_directory, options.interactive,
                            options.metadata_url))
    main = process(root, app, app.exec, app.working_directory, options.interactive,
                   options.metadata_url)
    keep = (options.lock_fd, channel.fileno())
    sockets = [s for s in options.sockets if s.app == app.name]
    keep += activation.pass_sockets([s.fd for s in sockets], [s.port for s in sockets], main.env,
                                    keep)
    if app.post_stop:  # run in the app's namespace once the app exited
        channel.send_fds([ns.open_ns("mnt"), root])
    os.set_inheritable(options.lock_fd, True)
    proc.set_parent_death_signal(0)  # from now on the app outlives rkt, as the pod lock does
    _check_parent(parent)
    exec_in(root, main, keep=keep)


def _check_parent(parent: int) -> None:
    if os.getppid() != parent:
        raise RktError("rkt exited while the pod was starting")


def mount_root(app: AppRuntime, options: RunOptions, host_api: bool = True) -> int:
    """In a new mount namespace: stop mounts propagating to the host (``/`` becomes a slave),
    mount the app's root (an overlay of its tree, or its private copy bound on itself) with
    /dev, /proc, /sys, a /tmp tmpfs, the volumes and the name service files; return an
    ``O_PATH`` fd of the root.

    Without ``host_api``, /dev, /proc and /sys are only made sure to be directories (not
    symlinks) for whoever mounts them later: for a root handed to another kernel (a virtual
    machine's), which must never see the host's."""
    mount.make_slave("/")
    if app.overlay:
        mount.overlay(app.rootfs, [app.tree_rootfs], app.overlay_upper, app.overlay_work)
    else:
        mount.bind(app.rootfs, app.rootfs)
    root = os.open(app.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # The image must not redirect these (CVE-2019-19921): no symlinks on the way.
        for path in SYSTEM_BINDS:
            if host_api:
                approot.mount_step(app, path, scoped.bind_into, root, path, path,
                                   recursive=True, follow=False)
            else:
                approot.mount_step(app, path, lambda p: os.close(scoped.resolve(
                    root, p, want_dir=True, create="dir", follow=False).fd), path)
        approot.mount_step(app, "/tmp", scoped.mount_into, root, "/tmp", "tmpfs", "tmpfs",
                           mount.MS_NOSUID | mount.MS_NODEV, "mode=1777", follow=False)
        for m in app.mounts:
            approot.mount_step(app, f'volume "{m.volume}" on {m.target}', scoped.bind_into, root, m.source,
                      m.target, read_only=m.read_only)
        approot.bind_name_service(app, root, options)
    except BaseException:
        os.close(root)
        raise
    return root


# --- processes ---------------------------------------------------------------------------------


def process(root: int, app: AppRuntime, argv: list[str], cwd: str, interactive: bool,
            metadata_url: str = "") -> Process:
    """How ``argv`` runs in the app's root: as the app's user, with the app's environment (and
    ``AC_METADATA_URL``, if given), in ``cwd``; ``argv[0]`` without a ``/`` is searched in the
    app's PATH."""
    if not argv:
        raise RktError(f'app "{app.name}" has nothing to execute')
    account = approot.resolve_account(root, app)
    env = process_environment(app, account, metadata_url, interactive)
    where = approot.resolve_directory(root, app, cwd)
    path = approot.resolve_executable(root, app, argv[0], env.get("PATH", DEFAULT_PATH), where)
    return Process(path, list(argv), where, account, env)


def exec_in(root: int, p: Process, keep: tuple[int, ...] = (),
            namespaces: tuple[int, ...] = ()) -> NoReturn:
    """In a forked child: join the namespaces ``namespaces`` (fds of them, the mount namespace
    last), chroot into ``root``, take the process's identity, close every descriptor but 0-2 and
    ``keep``, and exec."""
    proc.set_dumpable(False)
    for ns_fd in namespaces:
        ns.setns(ns_fd)
    os.fchdir(root)
    os.chroot(".")
    os.chdir(p.cwd)
    if os.getcwd() != p.cwd:
        raise RktError(f'working directory "{p.cwd}" changed while starting')
    account = p.account
    os.setgroups(list(dict.fromkeys((account.gid, *account.groups))))
    os.setresgid(account.gid, account.gid, account.gid)
    os.setresuid(account.uid, account.uid, account.uid)
    proc.close_fds_except((0, 1, 2, *keep))
    proc.restore_default_signals()
    try:
        os.execve(p.path, p.argv, p.env)
    except OSError as e:
        raise RktError(f'cannot execute "{p.argv[0]}": {e.strerror}') from None


def run_handler(root: int, app: AppRuntime, kind: str, p: Process,
                namespaces: tuple[int, ...] = ()) -> None:
    """Run an event handler (``pre-start``, ``post-stop``) to completion; an error if it
    fails. Call with the forwarded signals blocked."""
    pid, _ = spawn(lambda channel: exec_in(root, p, keep=(channel.fileno(),),
                                           namespaces=namespaces))
    code = proc.wait_forwarding(pid)
    if code:
        raise RktError(f'app "{app.name}": {kind} handler "{p.argv[0]}" exited with {code}')
