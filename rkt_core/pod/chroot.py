"""Running a pod's single app chrooted, as a direct child of ``rkt run``: the fly flavor and
flavors like it build on this.

:func:`run_app` forks the app (see :func:`rkt_core.pod.stage2.start_app`), records its pid once
it exec'd, passes on the signals rkt gets, and records the exit status. The pod's lock fd is open
in both, so the pod reads as running exactly while either lives: killing ``rkt run`` leaves the
app running, and the pod with it. :func:`enter_app` and :func:`signal_app` find the app's process
again from its pid file, and never act on a recycled pid.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from ..errors import RktError
from ..sys import ns, proc
from ..sys.fs import write_atomic
from ..sys.spawn import spawn
from ..types import RunOptions
from . import stage2
from .runtime import AppRuntime

DEFAULT_ENTER_COMMAND = ["/bin/sh"]  # rkt used /bin/bash; busybox images have only sh
PID_POLL_SECONDS = 0.05
ENTERED_NAMESPACES = ("uts", "ipc", "net", "mnt")  # joined by enter when not the host's


def write_pid(pod, pid: int) -> None:
    """Record the pod's pid (``pid``): the pod has started."""
    write_atomic(pod.file("pid"), str(pid).encode(), durable=False)


def write_exit_status(pod, app: str, code: int) -> None:
    """Record an app's exit status (``stage1/rootfs/rkt/status/<app>``), which ``rkt status``
    shows."""
    status_dir = pod.file("stage1", "rootfs", "rkt", "status")
    os.makedirs(status_dir, mode=0o755, exist_ok=True)
    write_atomic(os.path.join(status_dir, app), str(code).encode(), durable=False)


def run_app(pod, app: AppRuntime, options: RunOptions, namespaces: int = 0,
            hostname: str = "") -> int:
    """Run ``app`` chrooted in new mount (and ``namespaces``) namespaces in the foreground, with
    its event handlers; return its exit status (128+N if killed by signal N)."""
    if options.lock_fd < 0:
        raise RktError("the pod's lock fd is missing")
    parent = os.getpid()
    with proc.blocked_signals(proc.FORWARDED):
        pid, fds = spawn(lambda channel: stage2.start_app(app, options, parent, channel,
                                                          namespaces, hostname),
                         fds=bool(app.post_stop))
        try:
            write_pid(pod, pid)
            code = proc.wait_forwarding(pid)
            write_exit_status(pod, app.name, code)
            if app.post_stop and len(fds) == 2:
                _post_stop(app, fds[0], fds[1], options)
        finally:
            proc.close_in_background(fds)  # the app's namespace dies without us waiting
    return code


def _post_stop(app: AppRuntime, ns_fd: int, root: int, options: RunOptions) -> None:
    """Run the post-stop handler in the app's namespace, kept alive by ``ns_fd``; a failure is
    reported, the app's exit status stays."""
    try:
        p = stage2.process(root, app, app.post_stop, app.working_directory, options.interactive,
                           options.metadata_url)
        stage2.run_handler(root, app, "post-stop", p, namespaces=(ns_fd,))
    except RktError as e:
        print(f"rkt: {e}", file=sys.stderr)


def enter_app(pod, app: AppRuntime, argv: list[str]) -> int:
    """Run ``argv`` (default ``/bin/sh``) in the app's namespaces and root, as its user and with
    its environment (``AC_METADATA_URL`` of a registered pod included); return its exit
    status."""
    proc_fd = app_process(pod)
    if proc_fd is None:
        raise RktError(f'pod "{pod.uuid}" is not running')
    fds = [proc_fd]
    try:
        try:
            fds.append(os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd))
            joined = tuple(_foreign_namespaces(proc_fd))
        except (FileNotFoundError, ProcessLookupError):
            raise RktError(f'pod "{pod.uuid}" exited') from None
        fds.extend(joined)
        root = fds[1]
        p = stage2.process(root, app, list(argv) or DEFAULT_ENTER_COMMAND, "/", os.isatty(0),
                           pod.metadata_url)
        with proc.blocked_signals(proc.FORWARDED):
            pid, _ = spawn(lambda channel: stage2.exec_in(root, p, keep=(channel.fileno(),),
                                                          namespaces=joined))
            return proc.wait_forwarding(pid)
    finally:
        for fd in fds:
            os.close(fd)


def _foreign_namespaces(proc_fd: int) -> list[int]:
    """Fds of the process's namespaces that are not ours, the mount namespace last."""
    fds: list[int] = []
    try:
        for kind in ENTERED_NAMESPACES:
            fd = ns.open_ns(kind, proc_fd=proc_fd)
            fds.append(fd)
            if os.fstat(fd).st_ino == os.stat(f"/proc/self/ns/{kind}").st_ino:
                os.close(fds.pop())
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def signal_app(pod, force: bool) -> None:
    """SIGTERM the app (``force``: SIGKILL), if it is still the pod's app."""
    proc_fd = app_process(pod)
    if proc_fd is None:
        return
    try:
        proc.send_signal(proc_fd, signal.SIGKILL if force else signal.SIGTERM)
    except ProcessLookupError:
        pass  # exited meanwhile
    finally:
        os.close(proc_fd)


def app_process(pod) -> int | None:
    """An fd of ``/proc/<pid>`` of the pod's app, which pins it, or None if it is gone.

    The pid is written once the app has exec'd; while the pod is running without it yet, this
    waits. A pid whose process does not hold the pod's lock is someone else's (recycled) and is
    never used."""
    pod_dir = os.fstat(pod.lock_fd)
    while True:
        pid = pod.pid
        if pid is not None:
            break
        if not pod.is_locked():
            return None
        time.sleep(PID_POLL_SECONDS)
    try:
        proc_fd = proc.open_process(pid)
    except ProcessLookupError:
        return None
    if proc.holds_open(proc_fd, pod_dir):
        return proc_fd
    os.close(proc_fd)
    return None

