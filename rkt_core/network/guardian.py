"""The network guardian: releases a pod's networks once the pod's last process is gone, however
``rkt run`` ended (returned, crashed, was killed, or was replaced by a flavor's ``exec``).

A pod is running exactly while some process holds its lock (``RKT_LOCK_FD``), so its networks
must be released right after the last holder exits and not before. ``rkt run`` cannot be the
one to wait for that: it may be killed, or it may ``exec`` the flavor. So before setting the
networks up it starts a guardian, a small detached process (double fork, its own session, stdio
on /dev/null, no descriptor but the two below, so it pins no terminal, pipe or lock; named
``rkt-net-guard`` in ``ps -o comm``) holding:

- its own descriptor of the pod directory, to wait on the pod's lock (``flock`` is per open
  file, so waiting on a descriptor of its own works while the pod's processes hold theirs);
- one end of a socket pair whose other end only ``rkt run`` holds (close-on-exec).

Then one of two things happens:

- ``rkt run`` finishes (:meth:`Guardian.finish`): it closes its own lock descriptor and says
  so. If no pod process holds the lock any more, the guardian tears the networks down at once
  and reports back (warnings included), so that ``rkt run`` returns with nothing left; if some
  still do (an app that daemonized), it answers "busy" and waits for them.
- the socket closes without a word (``rkt run`` was killed, or exec'ed the flavor): the
  guardian waits for the lock, then tears down.

It holds the lock while tearing down, so ``rkt gc`` leaves the pod alone meanwhile; gc tears
down again anyway (idempotently), which covers a guardian that was killed itself.

A flavor that knows when every app of the pod has exited, with none of their processes left,
may say so (:func:`release_early`, ``plugin_api.stage1.release_networks``): ``rkt run`` tells
the guardian, which tears the networks down at once, while the rest of the pod (its init,
shutting down) still holds the lock, so that neither gc nor rm touches it meanwhile. What is
still up then is released as above once the pod is gone.
"""

from __future__ import annotations

import fcntl
import gc
import os
import signal
import socket
import sys

from ..errors import NotFoundError
from ..sys.lock import FileLock, LockBusyError

_EXITING, _DONE, _BUSY, _RELEASE = b"x", b"D", b"B", b"r"

# This process's guardians, by pod uuid (for release_early).
_GUARDIANS: dict[str, Guardian] = {}


def release_early(uuid: str) -> None:
    """Have the networks of pod ``uuid`` released now: every app of it has exited and none of
    their processes is left (what else of the pod is left, its init, needs no network). A no-op
    for a pod this process set no networks up for."""
    guardian = _GUARDIANS.get(uuid)
    if guardian is not None:
        guardian.release()


class Guardian:
    """``rkt run``'s handle on the guardian of one pod (see the module documentation)."""

    def __init__(self, ctx, pod):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pod_fd = os.open(pod.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            os.close(pod_fd)
            raise
        if pid == 0:  # the first child: start the guardian and exit, so init adopts it
            try:
                ours.close()
                os.setsid()
                if os.fork() == 0:
                    _guard(ctx, pod.data_dir, pod.uuid, pod_fd, theirs)
            finally:
                os._exit(0)
        theirs.close()
        os.close(pod_fd)
        os.waitpid(pid, 0)
        self.sock = ours
        self.released = False
        _GUARDIANS[pod.uuid] = self

    def release(self) -> None:
        """Ask for the early release (once); the guardian does it while ``rkt run`` goes on."""
        if not self.released:
            self.released = True
            try:
                self.sock.sendall(_RELEASE)
            except OSError:
                pass  # the guardian is gone: finish() copes

    def finish(self, ctx, pod) -> None:
        """``rkt run`` is done with the pod: drop its hold on the pod's lock and have the
        networks released now, unless pod processes are still alive (then the guardian
        releases them when those exit). Returns once the guardian has answered."""
        _GUARDIANS.pop(pod.uuid, None)
        _drop_hold(pod)
        reply = b""
        try:
            self.sock.sendall(_EXITING)
            while True:
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
                if reply[:1] == _BUSY:
                    break
        except OSError:
            pass
        finally:
            self.sock.close()
        if reply[:1] == _BUSY:
            ctx.log(f'networking: processes of pod "{pod.uuid}" are still alive; its networks '
                    "will be released when they exit")
        elif reply[:1] == _DONE:
            for line in reply[1:].decode(errors="replace").splitlines():
                ctx.warn(line)
        else:  # the guardian died: do its job if we can, else leave it to gc
            _teardown_if_unlocked(ctx, pod.data_dir, pod.uuid)


def _drop_hold(pod) -> None:
    """Close this process's descriptor of the pod's lock (the pod's processes keep theirs);
    the handle stays usable, unlocked."""
    pod.lock.close()
    pod.lock = FileLock(pod.path, directory=True)
    pod.locked_by_me = False


def _teardown_if_unlocked(ctx, data_dir: str, uuid: str) -> None:
    from .. import network
    from ..pod.pod import Pod

    try:
        with Pod.open(data_dir, uuid) as pod:
            pod.exclusive_lock()
            network.teardown(ctx, pod)
    except LockBusyError:
        ctx.warn(f'networking: pod "{uuid}" is still held; its networks will be released by '
                 "rkt gc")
    except NotFoundError:
        pass  # the pod is gone


def _guard(ctx, data_dir: str, uuid: str, pod_fd: int, sock: socket.socket) -> None:
    """The guardian's life (never returns normally: the caller exits)."""
    from ..sys import proc

    # Objects inherited from rkt run may own descriptors closed below: never finalize them.
    gc.freeze()
    try:  # named in ps -o comm / pgrep (its command line stays rkt run's)
        with open("/proc/self/comm", "w") as f:
            f.write("rkt-net-guard")
    except OSError:
        pass
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    proc.close_fds_except((pod_fd, sock.fileno()))
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    warnings: list[str] = []
    ctx.warn = warnings.append  # reported to rkt run, which prints them
    told = False
    while True:
        try:
            message = sock.recv(1)
        except OSError:
            break
        if message != _RELEASE:
            told = message == _EXITING
            break
        # Without the lock (see the module docs). What fails now is tried again, and only
        # then reported, once the pod is gone.
        ctx.warn = lambda message: None
        _teardown(ctx, data_dir, uuid)
        ctx.warn = warnings.append
    try:
        fcntl.flock(pod_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if told:
            _send(sock, _BUSY)
        sock.close()
        told = False
        fcntl.flock(pod_fd, fcntl.LOCK_EX)
    # Holding the lock: the pod has no process left, and gc waits for us.
    _teardown(ctx, data_dir, uuid)
    os.close(pod_fd)  # the pod reads as exited from now on: before rkt run hears of it
    if told:
        _send(sock, _DONE + "".join(w + "\n" for w in warnings).encode())


def _teardown(ctx, data_dir: str, uuid: str) -> None:
    """Release the pod's networks (what is released already is left alone); failures go to
    ``ctx.warn``."""
    from .. import network
    from ..pod.pod import Pod

    try:
        with Pod.open(data_dir, uuid) as pod:
            network.teardown(ctx, pod)
    except NotFoundError:
        pass  # the pod is gone: gc deleted it (and its networks) first
    except Exception as e:  # noqa: BLE001 - report what we can; gc retries
        ctx.warn(f'networking: pod "{uuid}": teardown failed: {e}')


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass
