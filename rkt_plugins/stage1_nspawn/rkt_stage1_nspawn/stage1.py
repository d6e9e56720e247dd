"""The nspawn flavor: systemd-nspawn boots the pod's stage1 root with the host's systemd as
PID 1, which runs one service per app.

``rkt run`` prepares the stage1 root and the units (:mod:`.rootfs`, :mod:`.units`) and forks
the pod's keeper (:mod:`.keeper`), which forks a process that takes a private mount
namespace, mounts the apps' roots, volumes and the pod's cgroup view (:mod:`.apps`,
:mod:`.cgroups`) and execs systemd-nspawn. While the pod runs, ``rkt run`` relays the apps'
output (:mod:`.relay`) and passes SIGTERM/SIGINT/SIGHUP on to the keeper (which shuts the pod
down); when the keeper exits (nspawn is gone) it returns the exit status of the first app that
failed, and removes the pod's cgroups.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time

from rkt_core.plugin_api import NotFoundError, RktError, RunOptions, Stage1Features
from rkt_core.plugin_api.fs import write_atomic
from rkt_core.plugin_api.linux import activation, mount, ns, proc, spawn, watch
from rkt_core.plugin_api.stage1 import (CAPABILITIES, LINUX_ISOLATORS, AppRuntime, app_limits,
                                        app_runtimes, release_networks)

from . import apps as app_roots
from . import cgroups, keeper, nspawn, rootfs, units, userns
from .keeper import pod_init
from .relay import Relay

CGROUPS_FILE = "cgroups.json"  # the pod's cgroup hierarchies (for enter and gc)
SUBCGROUP_FILE = "subcgroup"  # the pod's cgroup, relative to the systemd hierarchy's root
PRIVATE_USERS_FILE = "private-users"  # shift:count of a pod run with --private-users
CGROUP_VIEW = "cgroup"  # mount point of the pod's /sys/fs/cgroup in the pod directory
NSPAWN_RUNTIME = "/run/systemd/nspawn"
STOPPED = 128 + signal.SIGTERM  # the exit status of an app the pod's shutdown stopped


class _Forwarder:
    """``rkt run``'s handler of SIGTERM, SIGINT and SIGHUP: each asks the pod's keeper to shut
    the pod down; one that comes while the pod is being set up is passed on once it runs."""

    def __init__(self) -> None:
        self.pidfd: int | None = None
        self.asked = False

    def __call__(self, _signum, _frame) -> None:
        self.asked = True
        self._send()

    def attach(self, pidfd: int | None) -> None:
        """Pass requests on to the keeper ``pidfd`` (None: to nobody), the earlier one too."""
        self.pidfd = pidfd
        if self.asked:
            self._send()

    def _send(self) -> None:
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGTERM)
            except ProcessLookupError:
                pass


class NspawnStage1:
    """Pods of any number of apps, each a systemd service inside the pod."""

    features = Stage1Features(isolators=LINUX_ISOLATORS, contained_network=True, interactive=True,
                              private_users=True, multi_app=True, own_hostname=True)

    # --- run ----------------------------------------------------------------------------------

    def run(self, pod, options: RunOptions) -> int:
        """Boot the pod in the foreground; return the first failing app's exit status."""
        if options.lock_fd < 0:
            raise RktError("the nspawn flavor needs the pod's lock fd")
        apps = app_runtimes(pod)
        for app in apps:
            if "/" in app.name:
                raise RktError(f'app name "{app.name}": the nspawn flavor does not support "/" '
                               "in app names")
            app_limits(app.name, app.isolators, "nspawn")  # refuse bad isolators before anything starts
        if options.interactive and len(apps) != 1:
            raise RktError("--interactive is only supported for pods with exactly one app")
        found = cgroups.hierarchies()
        write_atomic(pod.file(CGROUPS_FILE), json.dumps([h.__dict__ for h in found]).encode(),
                     durable=False)
        systemd = next((h for h in found if h.systemd), None)
        if systemd is not None:  # the pod's cgroup, as rkt's stage1 recorded it (before pid)
            own = os.path.join(systemd.own, f"rkt-{pod.uuid}").lstrip("/")
            write_atomic(pod.file(SUBCGROUP_FILE), own.encode(), durable=False)
        rootfs.build(pod, [a.name for a in apps])
        os.makedirs(pod.file(CGROUP_VIEW), mode=0o700, exist_ok=True)
        shift = self._private_users(pod, options)
        fifos = {} if options.interactive else rootfs.make_fifos(
            pod, [units.unit_name(a.name) for a in apps])
        relay = Relay(fifos, {units.unit_name(a.name): a.name for a in apps},
                      lambda: pod_init(nspawn_pid) if nspawn_pid > 0 else None)
        exited = _watch_statuses(pod, apps) if options.netns else None
        nspawn_pid = -1
        forwarder = _Forwarder()  # from before the pod reads as running (its pid is written)
        old = {sig: signal.signal(sig, forwarder) for sig in keeper.FORWARDED}
        try:
            pid, _ = spawn.spawn(lambda channel: keeper.keep(
                lambda: _start(pod, apps, options, found, shift), channel, options.lock_fd,
                pod.file("pid")))
            nspawn_pid = pod.pid or -1
            status = self._supervise(pid, relay, forwarder, pod, exited)
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            relay.close()
            if exited is not None:
                exited.close()
            cgroups.remove(found, pod.uuid)
        return self._exit_status(pod, apps, proc.exit_code(status))

    @staticmethod
    def _private_users(pod, options: RunOptions) -> str:
        """``shift:count`` for --private-users (a random multiple of 65536, as rkt), kept in
        the pod for ``enter``; "" without."""
        if not options.private_users:
            return ""
        value = f"{random.randint(1, 0x7FFF) << 16}:{nspawn.PRIVATE_USERS_COUNT}"
        write_atomic(pod.file(PRIVATE_USERS_FILE), value.encode(), durable=False)
        return value

    @staticmethod
    def _supervise(pid: int, relay: Relay, forwarder: _Forwarder, pod,
                   exited: watch.DirectoryWatch | None) -> int:
        """Relay output until the keeper (``pid``) exits, passing on the signals rkt run gets,
        and release the networks once every app recorded its exit (``exited``); return the
        keeper's wait status (nspawn's)."""
        def all_exited() -> bool:
            if not exited.has_all():
                return False
            release_networks(pod)
            return True

        pidfd = os.pidfd_open(pid)
        forwarder.attach(pidfd)
        try:
            relay.pump(pidfd, {exited.fileno(): all_exited} if exited is not None else None)
            _, status = os.waitpid(pid, 0)
        finally:
            forwarder.attach(None)
            os.close(pidfd)
        return status

    @staticmethod
    def _exit_status(pod, apps: list[AppRuntime], nspawn_code: int) -> int:
        """The first failing app's exit status. Apps that recorded none were stopped with the
        pod: they get nspawn's own status if it was killed, else 143 (SIGTERM)."""
        codes = pod.app_exit_codes()
        if not codes and 0 < nspawn_code < 128:
            raise RktError(f"systemd-nspawn failed (exit status {nspawn_code})")
        status_dir = pod.file("stage1", "rootfs", "rkt", "status")
        missing = [a.name for a in apps if a.name not in codes]
        for name in missing:
            code = nspawn_code if nspawn_code > 128 else STOPPED
            write_atomic(os.path.join(status_dir, name), str(code).encode(), durable=False)
            codes[name] = code
        try:
            first = os.readlink(pod.file("stage1", "rootfs", "rkt", "first-failure"))
        except OSError:
            first = None
        if first in codes:
            return codes[first]
        failed = [codes[a.name] for a in apps if codes[a.name] != 0]
        return failed[0] if failed else 0

    # --- enter, stop, gc ----------------------------------------------------------------------

    def enter(self, pod, app: str, argv: list[str]) -> int:
        """Run ``argv`` inside the app: its namespaces, root, cgroups, user, environment and
        capabilities, with no_new_privs."""
        from .enter import enter_app

        runtime = next((a for a in app_runtimes(pod)
                        if a.name == app), None)
        if runtime is None:
            raise NotFoundError(f'the pod has no app "{app}"')
        return enter_app(pod, runtime, _recorded_hierarchies(pod), argv)

    def stop(self, pod, force: bool) -> None:
        """SIGTERM the pod's keeper, which shuts the pod down (nspawn itself for a pod without
        one); ``force``: SIGKILL nspawn, then the pod's PID 1, which killing nspawn alone
        would leave running."""
        pidfd = nspawn_process(pod)
        if pidfd is None:
            return
        fds = [pidfd]
        try:
            if force:
                init = pod_init(pod.pid)
                try:
                    if init is not None:
                        fds.append(os.pidfd_open(init))
                except ProcessLookupError:
                    pass
            else:
                keeper_fd = keeper.keeper_of(pod.pid)
                if keeper_fd is not None:  # it passes the request on until the pod takes it
                    fds.insert(0, keeper_fd)
            for fd in fds if force else fds[:1]:
                try:
                    signal.pidfd_send_signal(fd, signal.SIGKILL if force else signal.SIGTERM)
                except ProcessLookupError:
                    pass
        finally:
            for fd in fds:
                os.close(fd)

    def logs(self, pod, app: str, lines: int, follow: bool, since: float | None,
             until: float | None):
        """What the pod's apps logged, from the journal kept in the pod (see ``Stage1Logs``)."""
        from .logs import read_logs

        return read_logs(pod, app, lines, follow, since, until)

    def gc(self, pod) -> None:
        """Remove what an exited pod left: its cgroups and mounts."""
        cgroups.remove(_recorded_hierarchies(pod), pod.uuid)
        mount.unmount_all_under(pod.path)


def _recorded_hierarchies(pod) -> list[cgroups.Hierarchy]:
    text = pod.read_text(CGROUPS_FILE)
    if not text:
        return []
    result = []
    for item in json.loads(text):
        h = cgroups.Hierarchy(item["mount_point"], int(item["version"]),
                              tuple(item["controllers"]), item["own"])
        if h.mount_point != cgroups.ROOT and not h.mount_point.startswith(cgroups.ROOT + "/"):
            raise RktError(f'pod "{pod.uuid}": unexpected cgroup hierarchy "{h.mount_point}"')
        if ".." in h.own.split("/"):
            raise RktError(f'pod "{pod.uuid}": unexpected cgroup "{h.own}"')
        result.append(h)
    return result


def nspawn_process(pod, wait: float = 0) -> int | None:
    """A pidfd of the pod's systemd-nspawn, or None if it is gone. A recorded pid whose
    process is not this pod's nspawn (a recycled pid) is never used."""
    deadline = time.monotonic() + wait
    while True:
        pid = pod.pid
        if pid is not None or not pod.is_locked() or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if pid is None:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        args = []
    if f"--machine={nspawn.machine_name(pod.uuid)}".encode() not in args:
        os.close(pidfd)
        return None
    return pidfd


def _watch_statuses(pod, apps: list[AppRuntime]) -> watch.DirectoryWatch | None:
    """A watch of the apps' exit statuses. A reaper records one once its app's unit stopped,
    no process of the app left: when all apps have one, the pod's networks can go while the
    pod's systemd shuts down. None when inotify is refused (its limits): the networks then go
    after the pod, as they would without it."""
    try:
        return watch.DirectoryWatch(pod.file("stage1", "rootfs", "rkt", "status"),
                                    [a.name for a in apps])
    except OSError:
        return None


# --- the process that becomes nspawn -----------------------------------------------------------


def _start(pod, apps: list[AppRuntime], options: RunOptions, found: list[cgroups.Hierarchy],
           shift: str) -> None:
    """In the child of ``rkt run``: a private mount namespace with the apps' roots and the
    pod's cgroup view, the units, the pod's cgroups; then exec systemd-nspawn."""
    parent = os.getppid()
    proc.set_parent_death_signal(signal.SIGKILL)  # rkt dying during set-up aborts the start
    ns.unshare(ns.CLONE_NEWNS)
    mount.make_slave("/")
    os.makedirs(NSPAWN_RUNTIME, mode=0o755, exist_ok=True)
    mount.mount("tmpfs", NSPAWN_RUNTIME, "tmpfs", mount.MS_NOSUID | mount.MS_NODEV, "mode=755")
    shift_by = int(shift.split(":")[0]) if shift else 0
    services = []
    for app in apps:
        root = app_roots.mount_root(app, options, shift_by)
        try:
            services.append(app_roots.service(root, app, found, options))
        finally:
            os.close(root)
    rootfs.write_units(pod, services, options.interactive)
    rootfs.write_accounts(pod, services)
    if not options.interactive:
        rootfs.chown_fifos(pod, services)
    if shift_by:
        userns.shift_tree(rootfs.rootfs(pod), shift_by)  # apps' roots are mount points: skipped
    cgroups.create(found, pod.uuid)
    view = pod.file(CGROUP_VIEW) if cgroups.mount_view(found, pod.uuid,
                                                       pod.file(CGROUP_VIEW)) else ""
    caps = sorted({c for s in services for c in s.limits.capabilities}, key=CAPABILITIES.get)
    argv = nspawn.argv(pod.uuid, rootfs.rootfs(pod),
                       hostname=options.hostname or nspawn.machine_name(pod.uuid),
                       register=nspawn.system_bus(), interactive=options.interactive,
                       private_users=shift, cgroup_view=view,
                       capabilities=tuple(caps), debug=options.debug)
    if options.netns:  # joined here: nspawn could not join it from the pod's user namespace
        fd = os.open(options.netns, os.O_RDONLY | os.O_CLOEXEC)
        ns.setns(fd, "net")
        os.close(fd)
    if not options.interactive:  # the apps' output is relayed; the console (systemd's own
        os.dup2(2, 1)            # messages under --debug) must not reach rkt's stdout
    os.set_inheritable(options.lock_fd, True)
    env = nspawn.environment()
    # nspawn hands these on to the pod's systemd, whose socket units adopt them (see units)
    activation.pass_sockets([s.fd for s in options.sockets], [s.port for s in options.sockets],
                            env, keep=(options.lock_fd,))
    proc.set_parent_death_signal(signal.SIGTERM)  # rkt run killed: the pod shuts down
    if os.getppid() != parent:
        raise RktError("rkt exited while the pod was starting")
    os.execve(argv[0], argv, env)
