"""Crash-safe file operations: temp file, fsync, rename, fsync of the directory."""

from __future__ import annotations

import os


def fsync_dir(path: str) -> None:
    """fsync a directory so that renames and new entries in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rename_durable(src: str, dst: str) -> None:
    """rename(2) ``src`` to ``dst`` and fsync both parent directories."""
    os.rename(src, dst)
    dst_dir, src_dir = os.path.dirname(dst) or ".", os.path.dirname(src) or "."
    fsync_dir(dst_dir)
    if os.path.realpath(src_dir) != os.path.realpath(dst_dir):
        fsync_dir(src_dir)


def write_atomic(path: str, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically; never follows a symlink at ``path``.

    Written to a temp file in the same directory, renamed over ``path``: a reader sees the old
    content or the new, never part of it. When ``durable`` the file is fsynced before the rename
    and the directory after it, so that the new content also survives a crash.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if durable:
                os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(directory)


def _create_temp(directory: str) -> tuple[int, str]:
    """A new, empty, private file ``.tmp-<random>`` in ``directory``, as (fd, path): what
    ``tempfile.mkstemp`` does, without importing tempfile (shutil, random, bz2, lzma)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        path = os.path.join(directory, ".tmp-" + os.urandom(6).hex())
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {directory}")


def makedirs(path: str, mode: int = 0o755) -> None:
    """Create ``path`` and its parents if missing (like ``mkdir -p``)."""
    os.makedirs(path, mode=mode, exist_ok=True)


def syncfs(path: str) -> None:
    """syncfs(2): flush every dirty page of the filesystem holding ``path`` (one call, not a walk)."""
    from .libc import call  # imported when needed: ctypes costs start-up

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        call("syncfs", fd, what=f"cannot sync the filesystem of {path}")
    finally:
        os.close(fd)


_NO_OVERLAY_UPPER = {"overlay": "overlayfs", "aufs": "AUFS", "zfs": "ZFS", "fuse.lxcfs": "lxcfs"}


def filesystem_type(path: str) -> str:
    """The type of the filesystem holding ``path``, from /proc/self/mountinfo."""
    from .mount import mounts

    path = os.path.realpath(path)
    best, fstype = "", ""
    for m in mounts():
        inside = path == m.mount_point or path.startswith(m.mount_point.rstrip("/") + "/")
        if inside and len(m.mount_point) >= len(best):
            best, fstype = m.mount_point, m.fstype
    return fstype


def overlay_unsupported_reason(path: str) -> str:
    """Why overlayfs cannot put a writable layer under ``path`` (empty if it can)."""
    try:
        with open("/proc/filesystems") as f:
            if not any(line.split()[-1] == "overlay" for line in f if line.strip()):
                return "the kernel has no overlay filesystem"
    except OSError:
        return "cannot read /proc/filesystems"
    fstype = filesystem_type(path)
    if fstype in _NO_OVERLAY_UPPER:
        return f"{path} is on {_NO_OVERLAY_UPPER[fstype]}, which overlayfs cannot use"
    return ""
