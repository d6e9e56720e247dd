"""Garbage collection of pods (``rkt gc`` and ``rkt rm``), as rkt does it, minus its leaks.

Marking: exited pods move from ``run/`` to ``exited-garbage/`` (the directory's ctime starts the
grace period), aborted prepares and expired prepared pods to ``garbage/``. Sweeping: each pod is
locked exclusively (a pod someone else is deleting is skipped), its flavor releases what it set
up, every mount left under the pod directory is unmounted, and the directory is deleted without
ever crossing into another filesystem: a volume that is still mounted stops the deletion rather
than losing its data.
"""

from __future__ import annotations

import os
import stat
import sys
import time

from ..crashpoints import crash_point
from ..duration import format_duration
from ..errors import RktError
from ..pod.pod import EXITED_GARBAGE, GARBAGE, PREPARE, PREPARED, RUN, Pod
from ..pod.view import PodView
from ..sys.lock import LockBusyError


def _say(message: str) -> None:
    print(f"gc: {message}", file=sys.stderr)


def mark(ctx, expire_prepared: float) -> None:
    """Move exited, aborted and expired pods into the garbage directories; remove the embryos
    crashed pod creations left."""
    now = time.time()
    for pod_uuid in Pod.remove_abandoned_embryos(ctx.data_dir):
        ctx.log(f'gc: removed the embryo of pod "{pod_uuid}" (its creation crashed)')
    for pod in Pod.walk(ctx.data_dir, (RUN, PREPARE, PREPARED)):
        with pod:
            try:
                # rkt's messages, printed once the move is done: never for a move that failed.
                if pod.state_dir == RUN and pod.state == "exited":
                    _release_networks(ctx, pod)
                    pod.to_exited_garbage()
                    _say(f'moving pod "{pod.uuid}" to garbage')
                elif pod.state_dir == PREPARE and pod.state == "aborted prepare":
                    pod.to_garbage()
                    _say(f'moving failed prepare "{pod.uuid}" to garbage')
                elif pod.state_dir == PREPARED and now - (pod.created_at or now) > expire_prepared:
                    pod.to_garbage()
                    _say(f'moving expired prepared pod "{pod.uuid}" to garbage')
            except FileNotFoundError:
                continue  # another gc moved it first
            except RktError:
                continue  # its state changed under us (it started running)


def _release_networks(ctx, pod: Pod) -> None:
    """Tear down an exited pod's networks now rather than after the grace period (a pod whose
    ``rkt run`` was killed may still hold them); skipped while someone else holds the pod."""
    from .. import network

    if not network.needs_teardown(pod):
        return
    try:
        pod.exclusive_lock()
    except LockBusyError:
        return
    try:
        network.teardown(ctx, pod)
    finally:
        pod.unlock()


def sweep(ctx, grace_period: float) -> bool:
    """Delete garbage pods whose grace period is over; return False if any could not be."""
    ok = True
    now = time.time()
    for pod in Pod.walk(ctx.data_dir, (EXITED_GARBAGE, GARBAGE)):
        with pod:
            marked = pod.gc_marked_at
            if pod.state_dir == EXITED_GARBAGE and marked and now - marked < grace_period:
                _say(f'pod "{pod.uuid}" not removed: still within grace period '
                     f"({format_duration(grace_period)})")
                continue
            try:
                pod.exclusive_lock()
            except LockBusyError:
                continue  # being deleted by someone else
            if pod.is_gone():
                continue  # deleted meanwhile by another gc
            try:
                delete_pod(ctx, pod)
            except (RktError, OSError) as e:
                print(f'rkt: unable to remove pod "{pod.uuid}": {e}', file=sys.stderr)
                ok = False
    return ok


def delete_pod(ctx, pod: Pod) -> None:
    """Release and delete a locked pod: flavor gc, observers, mounts, then the directory."""
    from ..sys.mount import unmount_all_under

    from .. import network

    print(f'Garbage collecting pod "{pod.uuid}"')
    if not network.teardown(ctx, pod):  # the pod (and its records) stay for the next gc
        raise RktError("its networks could not be released; it is kept for the next gc")
    flavor_name = pod.read_text("stage1", "flavor")
    if flavor_name and pod.state_dir == EXITED_GARBAGE:
        try:
            from .run import load_stage1
            from .stage1 import mounted

            with mounted(ctx, pod, apps=False):
                load_stage1(ctx, pod).gc(PodView(pod))
        except RktError as e:
            ctx.warn(f'pod "{pod.uuid}": stage1 gc skipped: {e}')
    ctx.plugins.notify("rkt_pod_gc", pod=PodView(pod))
    unmount_all_under(pod.path)
    crash_point("gc.deleting")
    remove_tree_one_filesystem(pod.path)


def remove_tree_one_filesystem(path: str) -> None:
    """Delete a directory tree; refuse (before deleting anything below it) to enter a directory
    on another filesystem, i.e. a mount that is still there."""
    top = os.lstat(path)

    def remove(directory: str) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if st.st_dev != top.st_dev:
                        raise RktError(f'"{entry.path}" is still a mount point; not deleting it')
                    remove(entry.path)
                    os.rmdir(entry.path)
                else:
                    os.unlink(entry.path)

    remove(path)
    os.rmdir(path)


def remove_pod(ctx, uuid: str) -> None:
    """``rkt rm``: delete one exited or prepared pod now (a running one is refused)."""
    with Pod.find(ctx.data_dir, uuid) as pod:
        state = pod.state
        if state == "running":
            raise RktError(f'pod "{pod.uuid}" is running; stop it first')
        if state in ("preparing", "deleting", "exited deleting"):
            raise RktError(f'pod "{pod.uuid}" is {state}')
        try:
            if pod.state_dir == RUN:
                pod.to_exited_garbage()
            elif pod.state_dir in (PREPARE, PREPARED):
                pod.to_garbage()
            # garbage now: only a gc or another rm takes its lock, and not for long
            pod.exclusive_lock(blocking=pod.state_dir in (GARBAGE, EXITED_GARBAGE))
        except (FileNotFoundError, LockBusyError):
            raise RktError(f'pod "{pod.uuid}" changed state while being removed') from None
        if pod.is_gone():
            raise RktError(f'pod "{pod.uuid}" was removed by another process')
        delete_pod(ctx, pod)
