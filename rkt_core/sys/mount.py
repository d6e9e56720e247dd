"""mount(2) and umount2(2) through ctypes, and this process's mount table.

Every failing call raises OSError with the errno and a message naming the operation and paths.
"""

from __future__ import annotations

import errno
import os
import re
from typing import NamedTuple

from .libc import call

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21

MNT_FORCE = 0x1
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

# statvfs flags of a mount that a bind remount must repeat, and their MS_* equivalents.
_KEPT_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
               os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME,
               os.ST_RELATIME: MS_RELATIME}

_MOUNTINFO = "/proc/self/mountinfo"  # unit tests point it at a file of their own


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    """mount(2)."""
    call("mount", _bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data),
         what=f"cannot mount {source or fstype or 'none'} on {target} "
              f"(type {fstype or 'none'}, flags {flags:#x})")


def umount(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    call("umount2", _bytes(target), flags, what=f"cannot unmount {target}")


def bind(source: str, target: str, recursive: bool = False) -> None:
    """Bind ``source`` onto ``target`` (with its sub-mounts when ``recursive``)."""
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))


def remount_read_only(target: str) -> None:
    """Make the bind mount at ``target`` read-only, keeping its nosuid/nodev/noexec/atime
    flags (this mount only; the filesystem itself is untouched)."""
    current = os.statvfs(target).f_flag
    kept = 0
    for st_flag, ms_flag in _KEPT_FLAGS.items():
        if current & st_flag:
            kept |= ms_flag
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def make_private(target: str, recursive: bool = True) -> None:
    """Stop mount events propagating to and from ``target``."""
    mount(None, target, None, MS_PRIVATE | (MS_REC if recursive else 0))


def make_slave(target: str, recursive: bool = True) -> None:
    """Receive mount events from ``target``'s peers without sending any back."""
    mount(None, target, None, MS_SLAVE | (MS_REC if recursive else 0))


def make_shared(target: str, recursive: bool = True) -> None:
    """Share mount events of ``target`` with its peers."""
    mount(None, target, None, MS_SHARED | (MS_REC if recursive else 0))


def overlay_path(path: str) -> str:
    """A path escaped for overlayfs options (``\\``, ``,`` and ``:`` are special there)."""
    return re.sub(r"([\\,:])", r"\\\1", path)


def overlay(target: str, lower: list[str], upper: str, work: str) -> None:
    """Mount an overlay of the ``lower`` directories (topmost first) with a writable ``upper``
    (``work`` on the same filesystem) on ``target``."""
    data = (f"lowerdir={':'.join(overlay_path(p) for p in lower)},"
            f"upperdir={overlay_path(upper)},workdir={overlay_path(work)}")
    mount("overlay", target, "overlay", 0, data)


def mount_id(fd: int) -> int:
    """The id of the mount an open fd is on (``mnt_id`` of /proc/self/fdinfo)."""
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "mnt_id":
                return int(value)
    raise OSError(errno.ENOTSUP, "the kernel does not report mount ids", f"/proc/self/fdinfo/{fd}")


class MountInfo(NamedTuple):
    """One line of /proc/self/mountinfo."""

    mount_id: int
    parent_id: int
    mount_point: str
    fstype: str
    source: str
    options: str  # per-mount options (ro, nosuid, ...)
    super_options: str  # the filesystem's own (cgroup controllers, overlay layers, ...)


def _unescape(field: bytes) -> str:
    """A mountinfo field: the kernel writes space, tab, newline and backslash as ``\\ooo``."""
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), field))


def mounts(mountinfo: str = "") -> list[MountInfo]:
    """Every mount of this process's namespace, in the kernel's order (parents first); from
    ``mountinfo`` if given (a file in the format of /proc/self/mountinfo)."""
    with open(mountinfo or _MOUNTINFO, "rb") as f:
        lines = f.read().splitlines()
    result = []
    for line in lines:
        fields = line.split(b" ")
        sep = fields.index(b"-", 6)
        result.append(MountInfo(int(fields[0]), int(fields[1]), _unescape(fields[4]),
                                _unescape(fields[sep + 1]), _unescape(fields[sep + 2]),
                                _unescape(fields[5]), _unescape(fields[sep + 3])))
    return result


def mounts_under(path: str) -> list[MountInfo]:
    """The mounts at or below ``path`` (symlinks in it resolved), deepest first; of mounts
    stacked on one point, the top one first."""
    path = os.path.realpath(path)
    prefix = path.rstrip("/") + "/"
    found = [(i, m) for i, m in enumerate(mounts())
             if m.mount_point == path or m.mount_point.startswith(prefix)]
    found.sort(key=lambda im: (-im[1].mount_point.count("/"), -im[0]))
    return [m for _, m in found]


def unmount_all_under(path: str) -> None:
    """Unmount everything at or below ``path``, deepest first; a busy mount is detached
    (MNT_DETACH). Raises OSError if some mount cannot be removed."""
    while True:
        remaining = mounts_under(path)
        if not remaining:
            return
        progress = False
        for m in remaining:
            try:
                umount(m.mount_point, UMOUNT_NOFOLLOW)
            except OSError as e:
                if e.errno in (errno.EINVAL, errno.ENOENT):
                    continue  # covered by another mount, or already gone: next round
                if e.errno != errno.EBUSY:
                    raise
                umount(m.mount_point, UMOUNT_NOFOLLOW | MNT_DETACH)
            progress = True
        if not progress:
            raise OSError(errno.EBUSY, f"cannot unmount {remaining[0].mount_point}")
