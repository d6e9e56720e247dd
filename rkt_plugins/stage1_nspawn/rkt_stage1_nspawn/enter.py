"""``rkt enter``: a command inside a running app, confined exactly like the app.

rkt's nspawn flavor entered only the pod's namespaces: the command had every capability, no
seccomp filter, no cgroup and no no_new_privs (CVE-2019-10144, -10145, -10147). Here the
command joins the app's cgroups (every hierarchy), the namespaces of one of the app's
processes (user, mount, UTS, IPC, network, cgroup, PID) and its root; it gets the app's
capability bounding set (no ambient or inheritable capabilities), its user and supplementary
groups (the list its unit gives it), its environment, the seccomp filters of that process
(:mod:`.seccomp`) and no_new_privs (which the app itself does not have: it is never needed to
run what the app can run, and keeps the command from gaining privileges through a setuid file).

All that is read before anything is joined, through an fd of ``/proc/<app pid>`` that pins the
process, once that process has exec'd the app (:func:`runs_the_app`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

from rkt_core.plugin_api import RktError, describe
from rkt_core.plugin_api.linux import libc, ns, proc
from rkt_core.plugin_api.stage1 import (CAPABILITIES, DEFAULT_PATH, AppRuntime, app_limits,
                                        process_environment, resolve_account,
                                        resolve_directory, resolve_executable)

from . import cgroups, seccomp, units

DEFAULT_COMMAND = ["/bin/sh"]  # rkt used /bin/bash; busybox images have only sh
APP_WAIT_SECONDS = 20
NAMESPACES = ("user", "mnt", "uts", "ipc", "net", "cgroup", "pid")  # the order they are joined

_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_V3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def confine_capabilities(keep: set[int]) -> None:
    """Drop every capability outside ``keep`` from the bounding set, clear the ambient and
    inheritable sets, and set no_new_privs (in the process about to exec)."""
    for cap in range(_last_cap() + 1):
        if cap not in keep:
            libc.call("prctl", _PR_CAPBSET_DROP, cap, 0, 0, 0, what=f"cannot drop capability {cap}")
    libc.call("prctl", _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0,
              what="cannot clear the ambient capabilities")
    header = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    libc.call("capget", ctypes.byref(header), data, what="cannot read the capabilities")
    for part in data:
        part.inheritable = 0
    libc.call("capset", ctypes.byref(header), data,
              what="cannot clear the inheritable capabilities")
    libc.call("prctl", _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, what="cannot set no_new_privs")


def app_process(pod, found: list[cgroups.Hierarchy], unit: str) -> tuple[int, int]:
    """(pid, pinned fd of /proc/<pid>) of a process of the app, waiting for it to start."""
    cgroup_dirs = [d for h, d in zip(found, cgroups.app_cgroups(found, pod.uuid, unit))
                   if h.systemd]
    deadline = time.monotonic() + APP_WAIT_SECONDS
    while True:
        for directory in cgroup_dirs:
            try:
                with open(os.path.join(directory, "cgroup.procs")) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                continue
            for pid in pids:
                try:
                    proc_fd = proc.open_process(pid)
                except ProcessLookupError:
                    continue
                if runs_the_app(proc_fd):
                    return pid, proc_fd
                os.close(proc_fd)
        if not pod.is_locked() or time.monotonic() > deadline:
            raise RktError(f'app "{unit}" of pod "{pod.uuid}" is not running')
        time.sleep(0.05)


def runs_the_app(proc_fd: int) -> bool:
    """Whether the process of ``proc_fd`` has exec'd: its executable is no longer its
    parent's. systemd's child sets the app up (root, user, seccomp filters) before it execs,
    so a process still running systemd's code has neither the app's root nor its confinement.
    The app's own forks that have not exec'd are left out too; the app itself qualifies."""
    try:
        stat_fd = os.open("stat", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
        try:
            stat = os.read(stat_fd, 4096).decode(errors="replace")
        finally:
            os.close(stat_fd)
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        own = os.stat("exe", dir_fd=proc_fd)
        parent = os.stat(f"/proc/{ppid}/exe")
    except (OSError, ValueError, IndexError):
        return False  # gone, or a kernel thread; the caller looks again
    return (own.st_dev, own.st_ino) != (parent.st_dev, parent.st_ino)


def enter_app(pod, app: AppRuntime, found: list[cgroups.Hierarchy], argv: list[str]) -> int:
    """Run ``argv`` (default ``/bin/sh``) inside the running app, with its environment
    (``AC_METADATA_URL`` of a registered pod included); return its exit status."""
    unit = units.service_file(app.name)
    pid, proc_fd = app_process(pod, found, unit)
    fds = [proc_fd]
    try:
        try:
            filters = seccomp.read_filters(pid, proc_fd)
        except (FileNotFoundError, ProcessLookupError):
            raise RktError(f'app "{app.name}" exited') from None
        except OSError as e:
            raise RktError(f'cannot read the seccomp filters of app "{app.name}": '
                           f"{describe(e)}") from None
        try:
            root = os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd)
            fds.append(root)
            joins = []
            for kind in NAMESPACES:
                fd = ns.open_ns(kind, proc_fd=proc_fd)
                fds.append(fd)
                if os.fstat(fd).st_ino != os.stat(f"/proc/self/ns/{kind}").st_ino:
                    joins.append((kind, fd))
        except (FileNotFoundError, ProcessLookupError):
            raise RktError(f'app "{app.name}" exited') from None
        account = resolve_account(root, app)
        env = process_environment(app, account, pod.metadata_url, interactive=os.isatty(0))
        cwd = resolve_directory(root, app, app.working_directory)
        command = list(argv) or DEFAULT_COMMAND
        path = resolve_executable(root, app, command[0], env.get("PATH", DEFAULT_PATH), cwd)
        keep = {CAPABILITIES[c] for c in app_limits(app.name, app.isolators, "nspawn").capabilities}
        cgroup_dirs = _process_cgroups(proc_fd, found, pod.uuid)
        with proc.blocked_signals(proc.FORWARDED):
            return _run(lambda: _exec(root, cwd, path, command, env, account, keep, filters),
                        cgroup_dirs, joins)
    finally:
        for fd in fds:
            os.close(fd)


def _process_cgroups(proc_fd: int, found: list[cgroups.Hierarchy], uuid: str) -> list[str]:
    """The host directories of the cgroups of the process ``proc_fd`` pins, in every
    hierarchy (each checked to be inside the pod's cgroup)."""
    with open(os.open("cgroup", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)) as f:
        lines = f.read().splitlines()
    result = []
    for line in lines:
        number, controllers, path = line.split(":", 2)
        names = tuple(controllers.split(",")) if controllers else ()
        for h in found:
            if (h.version == 2 and number == "0" and not names) or \
                    (h.version == 1 and set(h.controllers) == set(names)):
                directory = os.path.normpath(os.path.join(h.mount_point, path.lstrip("/")))
                pod = h.pod_dir(uuid)
                if directory != pod and not directory.startswith(pod + "/"):
                    raise RktError(f"the app's cgroup {path} is outside the pod's")
                result.append(directory)
    return result


def _exec(root: int, cwd: str, path: str, argv: list[str], env: dict, account, keep,
          filters: list[bytes]) -> None:
    """In the process inside every namespace: the app's root, identity and confinement; exec."""
    os.fchdir(root)
    os.chroot(".")
    os.chdir(cwd)
    os.setgroups(units.supplementary_groups(account.gid, account.groups))
    os.setresgid(account.gid, account.gid, account.gid)
    confine_capabilities(keep)
    os.setresuid(account.uid, account.uid, account.uid)
    proc.restore_default_signals()
    seccomp.install_filters(filters)  # last: the filters may refuse what comes before
    os.execve(path, argv, env)


def _run(exec_inside, cgroup_dirs: list[str], joins: list[tuple[str, int]]) -> int:
    """Fork a process that joins the cgroups and namespaces, then forks again (a PID namespace
    applies to children) to ``exec_inside()``; wait for it, passing signals on. A set-up error
    comes back through a pipe as RktError."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 254
        try:
            os.close(r)
            proc.set_parent_death_signal(signal.SIGKILL)
            proc.set_dumpable(False)
            for directory in cgroup_dirs:
                with open(os.path.join(directory, "cgroup.procs"), "w") as f:
                    f.write("0")
            for kind, fd in joins:
                ns.setns(fd, kind)
            inner = os.fork()
            if inner == 0:
                try:
                    exec_inside()
                except BaseException as e:  # noqa: BLE001
                    os.write(w, describe(e).encode("utf-8", "replace"))
                os._exit(254)
            os.close(w)
            code = proc.wait_forwarding(inner)
        except BaseException as e:  # noqa: BLE001
            try:
                os.write(w, describe(e).encode("utf-8", "replace"))
            except OSError:
                pass
        os._exit(code)
    os.close(w)
    chunks = []
    while True:
        data = os.read(r, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(r)
    code = proc.wait_forwarding(pid)
    if chunks:
        raise RktError(b"".join(chunks).decode("utf-8", "replace"))
    return code
