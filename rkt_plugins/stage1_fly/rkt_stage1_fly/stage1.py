"""The fly flavor: one app, chrooted in a private mount namespace, as a direct child of rkt.

``rkt run`` forks the app (see :func:`rkt_stage1_fly.stage2.start_app`), records its pid once it
exec'd, passes on the signals it gets, and records the exit status. The pod's lock fd is open in
both, so the pod reads as running exactly while either lives: killing ``rkt run`` leaves the app
running, and the pod with it. A set-up failure (a missing executable included) is an error of
rkt: ``rkt: <message>`` and exit status 254, as rkt's fly flavor did.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from rkt_core.errors import NotFoundError, RktError
from rkt_core.pod.runtime import AppRuntime, app_runtimes
from rkt_core.sys import mount, ns, proc
from rkt_core.sys.fs import write_atomic
from rkt_core.types import RunOptions, Stage1Features

from . import stage2
from .spawn import spawn

DEFAULT_ENTER_COMMAND = ["/bin/sh"]  # rkt used /bin/bash; busybox images have only sh
PID_POLL_SECONDS = 0.05


class FlyStage1:
    """Runs pods of exactly one app on the host's network, without isolators."""

    features = Stage1Features(interactive=True)

    # --- run ----------------------------------------------------------------------------------

    def run(self, pod, options: RunOptions) -> int:
        """Run the pod's app in the foreground; return its exit status (128+N if killed by
        signal N)."""
        app = self._app_to_run(pod, options)
        parent = os.getpid()
        with proc.blocked_signals(proc.FORWARDED):
            pid, fds = spawn(lambda channel: stage2.start_app(app, options, parent, channel))
            try:
                write_atomic(pod.file("pid"), str(pid).encode())
                code = proc.wait_forwarding(pid)
                status_dir = pod.file("stage1", "rootfs", "rkt", "status")
                os.makedirs(status_dir, mode=0o755, exist_ok=True)
                write_atomic(os.path.join(status_dir, app.name), str(code).encode())
                if app.post_stop and len(fds) == 2:
                    self._post_stop(app, fds[0], fds[1], options)
            finally:
                proc.close_in_background(fds)  # the app's namespace dies without us waiting
        return code

    def _app_to_run(self, pod, options: RunOptions) -> AppRuntime:
        """The pod's only app; what fly cannot do is refused (stage0 checks it first)."""
        manifest = pod.manifest()
        if len(manifest.apps) != 1:
            raise RktError("the fly flavor runs exactly one app; this pod has "
                           f"{len(manifest.apps)}")
        if options.net not in ((), ("host",)):
            raise RktError("the fly flavor only supports --net=host "
                           f"(got --net={','.join(options.net)})")
        if options.private_users:
            raise RktError("the fly flavor does not support --private-users")
        if options.hostname:
            raise RktError("the fly flavor shares the host's hostname; --hostname is not supported")
        if options.lock_fd < 0:
            raise RktError("the fly flavor needs the pod's lock fd")
        app = app_runtimes(pod.data_dir, pod.path, manifest)[0]
        if app.isolators:
            names = ", ".join(i.name for i in app.isolators)
            raise RktError(f'the fly flavor cannot apply isolators (app "{app.name}": {names})')
        return app

    def _post_stop(self, app: AppRuntime, ns_fd: int, root: int, options: RunOptions) -> None:
        """Run the post-stop handler in the app's namespace, kept alive by ``ns_fd``; a failure
        is reported, the app's exit status stays."""
        try:
            p = stage2.process(root, app, app.post_stop, app.working_directory,
                               options.interactive)
            stage2.run_handler(root, app, "post-stop", p, ns_fd=ns_fd)
        except RktError as e:
            print(f"rkt: {e}", file=sys.stderr)

    # --- enter, stop, gc ----------------------------------------------------------------------

    def enter(self, pod, app: str, argv: list[str]) -> int:
        """Run ``argv`` (default ``/bin/sh``) in the app's mount namespace and root, as its user
        and with its environment; return its exit status."""
        runtime = next((a for a in app_runtimes(pod.data_dir, pod.path, pod.manifest())
                        if a.name == app), None)
        if runtime is None:
            raise NotFoundError(f'the pod has no app "{app}"')
        proc_fd = self._app_process(pod)
        if proc_fd is None:
            raise RktError(f'pod "{pod.uuid}" is not running')
        fds = [proc_fd]
        try:
            try:
                fds.append(os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
                                   dir_fd=proc_fd))
                fds.append(ns.open_ns("mnt", proc_fd=proc_fd))
            except (FileNotFoundError, ProcessLookupError):
                raise RktError(f'pod "{pod.uuid}" exited') from None
            root, ns_fd = fds[1], fds[2]
            p = stage2.process(root, runtime, list(argv) or DEFAULT_ENTER_COMMAND, "/",
                               os.isatty(0))
            with proc.blocked_signals(proc.FORWARDED):
                pid, _ = spawn(lambda channel: stage2.exec_in(root, p, keep=(channel.fileno(),),
                                                               ns_fd=ns_fd))
                return proc.wait_forwarding(pid)
        finally:
            for fd in fds:
                os.close(fd)

    def stop(self, pod, force: bool) -> None:
        """SIGTERM the app (``force``: SIGKILL), if it is still the pod's app."""
        proc_fd = self._app_process(pod)
        if proc_fd is None:
            return
        try:
            proc.send_signal(proc_fd, signal.SIGKILL if force else signal.SIGTERM)
        except ProcessLookupError:
            pass  # exited meanwhile
        finally:
            os.close(proc_fd)

    def gc(self, pod) -> None:
        """Nothing of a fly pod outlives it: its mounts died with its namespace. Anything found
        mounted under the pod directory anyway is unmounted."""
        mount.unmount_all_under(pod.path)

    @staticmethod
    def _app_process(pod) -> int | None:
        """An fd of ``/proc/<pid>`` of the pod's app, which pins it, or None if it is gone.

        The pid is written once the app has exec'd; while the pod is running without it yet,
        this waits. A pid whose process does not hold the pod's lock is someone else's
        (recycled) and is never used."""
        pod_dir = os.fstat(pod.lock.fd)
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
