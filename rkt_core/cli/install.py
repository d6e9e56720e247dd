"""``rkt install``: set up, or repair, the data directory so that group rkt reads and root writes.

Directories belong to root and the ``rkt`` group, with the setgid bit and no group write
(2750); the store's files are 0640. Members of ``rkt`` can so run the commands that only read
(``list``, ``status``, ``image list``, ``cat-manifest``...) and change nothing. The rendered trees
(``cas/tree``) stay root-only, hiding setuid binaries of untrusted images. Stores made by older
versions (group-writable directories and database, directories a member created first) are
re-owned and re-moded recursively; symbolic links are never followed, and those found where the
store keeps only files and directories are removed.
"""

from __future__ import annotations

import errno
import grp
import os
import stat

import click

from ..errors import RktError
from .main import RktCommand, get_context

SETGID = 0o2000
# Directories of the data directory and their modes (with the setgid bit, owner root:rkt).
DIRS = {
    ".": 0o750, "tmp": 0o750, "locks": 0o750,
    "cas": 0o750, "cas/db": 0o750, "cas/imagelocks": 0o750, "cas/imageManifest": 0o750,
    "cas/blob": 0o750, "cas/tmp": 0o750, "cas/tree": 0o700, "cas/treestorelocks": 0o700,
    "pods": 0o750, "pods/embryo": 0o750, "pods/prepare": 0o750, "pods/prepared": 0o750,
    "pods/run": 0o750, "pods/exited-garbage": 0o750, "pods/garbage": 0o750,
}
# Directories holding only rkt's own files, re-owned recursively: (directory mode, file mode).
# The trees and the pods hold image files with the image's owners, and are left alone.
STORE_FILES = {
    "tmp": (0o750, 0o640), "locks": (0o750, 0o640), "cas/db": (0o750, 0o640),
    "cas/imagelocks": (0o750, 0o640), "cas/imageManifest": (0o750, 0o640),
    "cas/blob": (0o750, 0o640), "cas/tmp": (0o750, 0o640), "cas/treestorelocks": (0o700, 0o600),
    "cas/db-backups": (0o700, 0o600),
}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@click.command(cls=RktCommand)
def install() -> None:
    """Set up rkt data directories with correct permissions."""
    ctx = get_context()
    try:
        gid = grp.getgrnam("rkt").gr_gid
    except KeyError:
        raise RktError('group "rkt" not found', hint="create it first: groupadd --system rkt") from None
    if os.geteuid() != 0:
        raise RktError("rkt install needs root", hint="run it as root (e.g. with sudo)")
    os.makedirs(ctx.data_dir, mode=0o750, exist_ok=True)
    for name, mode in sorted(DIRS.items()):
        fd = _open_dir(ctx.data_dir, name, create=True)
        try:
            _set_owner_and_mode(fd, gid, mode | SETGID)
        finally:
            os.close(fd)
    _repair_store_files(ctx, gid)
    # Opening the store checks it and creates the database if it is missing (root:rkt 0640: cas/db
    # is setgid).
    ctx.store
    click.echo("rkt directory structure successfully created.", err=True)


def _open_dir(data_dir: str, name: str, create: bool) -> int:
    """An fd of ``data_dir/name``, walked one component at a time without following symbolic
    links (each component made if missing when ``create``)."""
    fd = os.open(data_dir, _DIR_FLAGS)
    try:
        for part in [] if name == "." else name.split("/"):
            if create:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except OSError as e:
        os.close(fd)
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        raise RktError(f"{os.path.join(data_dir, name)} is not a directory (a symbolic link?)",
                       hint="remove it, then run rkt install again") from None
    return fd


def _set_owner_and_mode(fd: int, gid: int, mode: int) -> None:
    os.fchown(fd, 0, gid)
    os.fchmod(fd, mode)


def _repair_store_files(ctx, gid: int) -> None:
    """Re-own and re-mode everything under the :data:`STORE_FILES` directories, and under the
    other top-level directories, where plugins keep their state (the API service's events)."""
    plugin_dirs = {entry.name: (0o750, 0o640) for entry in os.scandir(ctx.data_dir)
                   if entry.is_dir(follow_symlinks=False)
                   and entry.name not in ("cas", "pods", *STORE_FILES)}
    for name, (dir_mode, file_mode) in sorted({**STORE_FILES, **plugin_dirs}.items()):
        try:
            top = _open_dir(ctx.data_dir, name, create=False)
        except FileNotFoundError:
            continue
        try:
            for path, dirs, files, dir_fd in os.fwalk(".", dir_fd=top):
                _set_owner_and_mode(dir_fd, gid, dir_mode | SETGID)
                for entry in files + [d for d in dirs if _is_link(d, dir_fd)]:
                    _repair_file(ctx, os.path.join(ctx.data_dir, name, path, entry), entry, dir_fd,
                                 gid, file_mode)
        finally:
            os.close(top)


def _is_link(name: str, dir_fd: int) -> bool:
    return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)


def _repair_file(ctx, path: str, name: str, dir_fd: int, gid: int, mode: int) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        ctx.warn(f"removed {os.path.normpath(path)}: the store keeps only files and directories")
        return
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        _set_owner_and_mode(fd, gid, mode)
    finally:
        os.close(fd)
