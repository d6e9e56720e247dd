"""Paths resolved inside a root directory with chroot semantics, without ever leaving it.

A path is walked from an fd of the root one component at a time, each opened ``O_PATH |
O_NOFOLLOW``: a symlink met on the way is read and its target walked in turn, an absolute target
starting again at the root, ``..`` never climbing above the root, more than 40 hops failing with
ELOOP. Nothing outside the root can be reached, whatever the tree holds (magic links of ``/proc``
are just symlinks here, read as text and resolved inside the root too).

:func:`bind_into` and :func:`mount_into` mount onto such a resolved target through
``/proc/self/fd/N``, so a symlink swapped in after the check cannot redirect the mount
(CVE-2021-30465).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import NamedTuple

from . import mount as _mount

MAX_SYMLINK_HOPS = 40

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NODE_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class Resolved(NamedTuple):
    """An ``O_PATH`` fd of a node inside a root and its symlink-free path from the root."""

    fd: int
    path: str


def fd_path(fd: int) -> str:
    """A path naming exactly the node an fd refers to."""
    return f"/proc/self/fd/{fd}"


def _parts(path: str | list[str]) -> list[str]:
    parts = path.split("/") if isinstance(path, str) else path
    return [p for p in parts if p not in ("", ".")]


def _mkdir(dir_fd: int, name: str, mode: int) -> int:
    """Create directory ``name`` with exactly ``mode`` (no umask) and return an fd of it."""
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    except FileExistsError:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)  # created concurrently
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        os.chmod(fd_path(fd), mode)
    except OSError:
        os.close(fd)
        raise
    return fd


def _mkfile(dir_fd: int, name: str) -> int:
    """Create an empty file ``name`` (0644, never through a symlink) and return an fd of it."""
    try:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644, dir_fd=dir_fd))
    except FileExistsError:
        pass  # created meanwhile: checked below
    fd = os.open(name, _NODE_FLAGS, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EEXIST, f'"{name}" changed while being created')
    return fd


def resolve(root_fd: int, path: str | list[str], *, want_dir: bool = False, create: str = "",
            mode: int = 0o755, follow: bool = True) -> Resolved:
    """Open ``path`` under the directory ``root_fd``, chroot semantics, the final symlink
    followed too.

    ``want_dir``: the node must be a directory (NotADirectoryError otherwise). ``create``:
    ``"dir"`` or ``"file"`` creates a missing final node of that kind, and missing parents as
    directories; directories get ``mode``. ``follow=False`` refuses any symlink on the way
    (ELOOP) instead of following it. Missing nodes raise FileNotFoundError.
    """
    shown = path if isinstance(path, str) else "/".join(path)
    stack = [(os.dup(root_fd), "")]  # (fd, name) of the directories walked; [0] is the root
    todo = _parts(path)[::-1]
    hops = 0
    try:
        while todo:
            name = todo.pop()
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop()[0])
                continue
            last = not todo
            top = stack[-1][0]
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=top)
            except FileNotFoundError:
                if not create:
                    raise FileNotFoundError(errno.ENOENT, f'"{name}" does not exist',
                                            shown) from None
                if last and create == "file":
                    fd = _mkfile(top, name)
                    stack.append((fd, name))
                    break
                fd = _mkdir(top, name, mode)
            except NotADirectoryError:
                if last and not want_dir:
                    fd = os.open(name, _NODE_FLAGS, dir_fd=top)  # the node, whatever it is
                    if not stat.S_ISLNK(os.fstat(fd).st_mode):
                        stack.append((fd, name))
                        break
                    os.close(fd)
                elif not stat.S_ISLNK(os.stat(name, dir_fd=top, follow_symlinks=False).st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, f'component "{name}" is not a '
                                             "directory", shown) from None
                if not follow:
                    raise OSError(errno.ELOOP, f'component "{name}" is a symbolic link', shown) \
                        from None
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", shown) from None
                target = os.readlink(name, dir_fd=top)  # if it changed meanwhile: still inside
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop()[0])
                todo.extend(_parts(target)[::-1])
                continue
            stack.append((fd, name))
        path_out = "/" + "/".join(name for _, name in stack[1:])
        return Resolved(stack.pop()[0], path_out)
    finally:
        for fd, _ in stack:
            os.close(fd)


def open_dir(root_fd: int, path: str | list[str], *, create: bool = False,
             mode: int = 0o755) -> int:
    """An ``O_PATH`` fd of the directory ``path`` under the root (see :func:`resolve`)."""
    return resolve(root_fd, path, want_dir=True, create="dir" if create else "", mode=mode).fd


def read_file(root_fd: int, path: str, limit: int = 1 << 20) -> bytes | None:
    """The content of the regular file ``path`` under the root (at most ``limit`` bytes), or
    None if it does not exist."""
    try:
        node = resolve(root_fd, path)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(node.fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        with open(fd_path(node.fd), "rb") as f:
            return f.read(limit)
    finally:
        os.close(node.fd)


def _target(root_fd: int, target: str, is_dir: bool, follow: bool) -> Resolved:
    """The mount target ``target`` under the root, created if missing (a directory, or an empty
    file for a file source); its kind must match the source's."""
    node = resolve(root_fd, target, create="dir" if is_dir else "file", follow=follow)
    if stat.S_ISDIR(os.fstat(node.fd).st_mode) != is_dir:
        os.close(node.fd)
        kind = "a directory" if is_dir else "not a directory"
        raise OSError(errno.ENOTDIR if is_dir else errno.EISDIR,
                      f"the mount source is {kind} but the target is not", target)
    return node


def _plainly(call, *args, **kwargs) -> None:
    """Call a mount function; its errors name ``/proc/self/fd`` paths, which mean nothing to
    the caller, so they are re-raised with the bare reason."""
    try:
        call(*args, **kwargs)
    except OSError as e:
        raise OSError(e.errno, os.strerror(e.errno)) from None


def bind_into(root_fd: int, source: str, target: str, *, recursive: bool = False,
              read_only: bool = False, follow: bool = True) -> None:
    """Bind ``source`` (a host path) onto ``target`` inside the root; ``read_only`` remounts
    the new (top) mount read-only. ``follow=False`` refuses symlinks in ``target``."""
    src = os.open(source, os.O_PATH | os.O_CLOEXEC)
    try:
        node = _target(root_fd, target, stat.S_ISDIR(os.fstat(src).st_mode), follow)
        try:
            _plainly(_mount.bind, fd_path(src), fd_path(node.fd), recursive=recursive)
            if read_only:
                _remount_read_only(root_fd, node)
        finally:
            os.close(node.fd)
    finally:
        os.close(src)


def _remount_read_only(root_fd: int, below: Resolved) -> None:
    """Remount read-only what was just mounted on ``below`` (found again by its symlink-free
    path, and checked to be another mount than the one ``below`` is on)."""
    top = resolve(root_fd, below.path, follow=False)
    try:
        if _mount.mount_id(top.fd) == _mount.mount_id(below.fd):
            raise OSError(errno.EBUSY, "the new mount is not at its target any more", below.path)
        _plainly(_mount.remount_read_only, fd_path(top.fd))
    finally:
        os.close(top.fd)


def mount_into(root_fd: int, target: str, source: str, fstype: str, flags: int = 0,
               data: str = "", *, follow: bool = True) -> None:
    """Mount a filesystem (``source``, ``fstype``, ``data``) on the directory ``target`` inside
    the root, created if missing. ``follow=False`` refuses symlinks in ``target``."""
    node = _target(root_fd, target, True, follow)
    try:
        _plainly(_mount.mount, source, fd_path(node.fd), fstype, flags, data)
    finally:
        os.close(node.fd)
