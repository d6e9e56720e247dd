"""Writing tar members into a directory without ever touching anything outside it.

Every path is resolved from an fd of the root, one component at a time, each opened with
``O_NOFOLLOW`` (:mod:`rkt_core.sys.scoped`). Symlinks met in *parent* components are followed
with chroot semantics: an absolute target starts again at the root, ``..`` never climbs above
it, and more than 40 hops is a loop. The *final* component is never followed. A member
replaces whatever is at its name: a directory over a directory only updates metadata, anything
else removes what was there first (a non-directory over a directory removes that whole tree: a
later entry wins, as in rkt and appc).

Metadata is changed only through an fd of the node itself, never through a path that could be a
symlink, and directory metadata is applied by :meth:`ScopedExtractor.finish`, after children.

Entry names must be relative and free of ``..``; only a directory may name the root itself (it
sets the root's metadata). A hard link must point at an existing non-directory inside the root
(an absolute target is root-relative). Device nodes are made only when allowed (by default the
harmless character devices of ``/dev``); others are skipped with a warning. Extended attributes
are kept for ``user.*`` and ``security.capability``, as rkt does; others are dropped.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from typing import Callable

from ..errors import ImageError
from ..sys import scoped
from .aci import TAR_ERRORS, clean_name

# (type, major, minor): null, zero, full, random, urandom, tty, console, ptmx.
DEFAULT_DEVICES = frozenset({("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 1, 8), ("c", 1, 9),
                             ("c", 5, 0), ("c", 5, 1), ("c", 5, 2)})
XATTR_PREFIXES = ("user.", "security.capability")
COPY_BUFFER = 1 << 20

_PAX_XATTR = "SCHILY.xattr."
_NODE_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _components(name: str, what: str) -> list[str]:
    """The components of a relative archive path (``[]`` for the root itself)."""
    cleaned = clean_name(name, what)
    return [] if cleaned == "." else cleaned.split("/")


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


class ScopedExtractor:
    """Extracts tar members into the directory ``root``. Call :meth:`finish` when done (used as
    a context manager, it only releases its fds on exit).

    ``allowed_devices`` holds ``(type, major, minor)`` triples, type ``"c"`` or ``"b"``.
    ``preserve_owner`` applies the members' numeric uid/gid (needs root). ``warn`` receives a
    message for every member skipped or attribute dropped.
    """

    def __init__(self, root: str, *, allowed_devices=DEFAULT_DEVICES, preserve_owner: bool = True,
                 warn: Callable[[str], None] | None = None):
        self.allowed_devices = allowed_devices
        self.preserve_owner = preserve_owner
        self._warn = warn or (lambda message: None)
        self._warned_xattrs: set[str] = set()
        self._root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        # Directories whose metadata finish() applies: (components, member, st_dev, st_ino).
        self._dirs: list[tuple[list[str], tarfile.TarInfo, int, int]] = []
        # The last parent directory resolved, (components, fd). It goes stale whenever anything
        # is removed, as a removal can change where a path resolves.
        self._cached: tuple[list[str], int] | None = None
        self._stale = False

    def __enter__(self) -> ScopedExtractor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the fds (without applying pending directory metadata)."""
        self._forget_cached()
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def extract_member(self, tar: tarfile.TarFile, member: tarfile.TarInfo,
                       relpath: str | None = None, *, linkpath: str | None = None) -> None:
        """Write ``member`` (``tar`` positioned at it) at ``relpath`` under the root, default its
        own name. A hard link's target is ``linkpath``, default its link name, also resolved
        under the root."""
        name = member.name if relpath is None else relpath
        parts = _components(name, "entry")
        try:
            if not parts:
                self._set_root(member)
            elif member.isdir():
                self._make_dir(parts, member)
            elif member.isreg():
                self._write_file(tar, parts, member)
            elif member.issym():
                self._make_symlink(parts, member)
            elif member.islnk():
                self._make_hardlink(parts, member, member.linkname if linkpath is None else linkpath)
            elif member.isfifo():
                self._make_node(parts, member, stat.S_IFIFO, 0)
            elif member.ischr() or member.isblk():
                self._make_device(parts, member)
            else:
                self._warn(f'image archive: skipping "{name}": unsupported entry type '
                           f"{member.type!r}")
        except TAR_ERRORS as e:
            raise ImageError(f'image archive: reading "{name}": {e}') from None
        except OSError as e:
            raise ImageError(f'image archive: cannot extract "{name}": {e.strerror}') from None

    def finish(self) -> None:
        """Apply the metadata of the directories extracted, deepest first, then close."""
        for parts, member, dev, ino in sorted(self._dirs, key=lambda d: -len(d[0])):
            try:
                fd = self._open_dir(parts, create=False)
            except (OSError, ImageError):
                continue  # replaced by a later member
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    self._set_metadata(scoped.fd_path(fd), member)
            except OSError as e:
                raise ImageError(f'image archive: cannot set metadata of "{member.name}": '
                                 f"{e.strerror}") from None
            finally:
                os.close(fd)
        self._dirs.clear()
        self.close()

    # --- path resolution ------------------------------------------------------------------------

    def _parent(self, parts: list[str]) -> tuple[int, str]:
        """An fd of the parent directory of ``parts`` (created if missing; owned by the cache)
        and the final component's name."""
        parent = parts[:-1]
        if self._cached is None or self._stale or self._cached[0] != parent:
            fd = self._open_dir(parent, create=True)
            self._forget_cached()
            self._cached = (parent, fd)
            self._stale = False
        return self._cached[1], parts[-1]

    def _forget_cached(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _open_dir(self, parts: list[str], create: bool) -> int:
        """An ``O_PATH`` fd of the directory ``parts`` under the root (chroot semantics, see
        :mod:`rkt_core.sys.scoped`). Missing directories are created (0755) when ``create``,
        else FileNotFoundError."""
        try:
            return scoped.open_dir(self._root_fd, parts, create=create)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            raise ImageError(f'image archive: "{"/".join(parts)}": {e.strerror}') from None

    def _replace(self, parent: int, name: str, keep_dir: bool = False) -> os.stat_result | None:
        """Remove what is at ``name`` (never following it), except a directory when
        ``keep_dir``; return the stat of what is left, if anything."""
        st = _lstat(parent, name)
        if st is None or (keep_dir and stat.S_ISDIR(st.st_mode)):
            return st
        self._stale = True
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)
        return None

    # --- one member -----------------------------------------------------------------------------

    def _set_root(self, member: tarfile.TarInfo) -> None:
        if not member.isdir():
            raise ImageError(f'image archive: entry "{member.name}" would replace the root '
                             "directory")
        st = os.fstat(self._root_fd)
        self._dirs.append(([], member, st.st_dev, st.st_ino))

    def _make_dir(self, parts: list[str], member: tarfile.TarInfo) -> None:
        parent, name = self._parent(parts)
        st = self._replace(parent, name, keep_dir=True)
        if st is None:
            os.mkdir(name, 0o700, dir_fd=parent)
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        self._dirs.append((parts, member, st.st_dev, st.st_ino))

    def _write_file(self, tar: tarfile.TarFile, parts: list[str], member: tarfile.TarInfo) -> None:
        parent, name = self._parent(parts)
        self._replace(parent, name)
        fd = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            with open(fd, "wb", closefd=False) as out:
                shutil.copyfileobj(tar.extractfile(member), out, COPY_BUFFER)
            self._set_metadata(fd, member)
        finally:
            os.close(fd)

    def _make_symlink(self, parts: list[str], member: tarfile.TarInfo) -> None:
        parent, name = self._parent(parts)
        self._replace(parent, name)
        os.symlink(member.linkname, name, dir_fd=parent)
        if self.preserve_owner:
            os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        os.utime(name, ns=self._times(member), dir_fd=parent, follow_symlinks=False)

    def _make_hardlink(self, parts: list[str], member: tarfile.TarInfo, target: str) -> None:
        """Link to the node at ``target`` itself (a symlink there is not followed); the link's
        own metadata is ignored, as it is the target's."""
        what = f'hard link target of "{member.name}"'
        tparts = _components(target.lstrip("/"), what)
        if not tparts:
            raise ImageError(f"image archive: {what} is the root directory")
        try:
            tparent = self._open_dir(tparts[:-1], create=False)
        except FileNotFoundError:
            raise ImageError(f'image archive: {what} "{target}" does not exist') from None
        try:
            tst = _lstat(tparent, tparts[-1])
            if tst is None:
                raise ImageError(f'image archive: {what} "{target}" does not exist')
            if stat.S_ISDIR(tst.st_mode):
                raise ImageError(f'image archive: {what} "{target}" is a directory')
            parent, name = self._parent(parts)
            st = _lstat(parent, name)
            if st is not None and (st.st_dev, st.st_ino) == (tst.st_dev, tst.st_ino):
                return
            self._replace(parent, name)
            os.link(tparts[-1], name, src_dir_fd=tparent, dst_dir_fd=parent,
                    follow_symlinks=False)
        finally:
            os.close(tparent)

    def _make_device(self, parts: list[str], member: tarfile.TarInfo) -> None:
        kind = "c" if member.ischr() else "b"
        if (kind, member.devmajor, member.devminor) not in self.allowed_devices:
            self._warn(f'image archive: skipping device node "{member.name}" '
                       f"({kind} {member.devmajor}:{member.devminor}): not in the allow list")
            return
        file_type = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
        try:
            self._make_node(parts, member, file_type, os.makedev(member.devmajor, member.devminor))
        except PermissionError:
            self._warn(f'image archive: skipping device node "{member.name}": not permitted')

    def _make_node(self, parts: list[str], member: tarfile.TarInfo, file_type: int,
                   device: int) -> None:
        """A FIFO or device node; its metadata is set through an ``O_PATH`` fd (opening it for
        real could block or have side effects)."""
        parent, name = self._parent(parts)
        self._replace(parent, name)
        os.mknod(name, file_type | 0o600, device, dir_fd=parent)
        fd = os.open(name, _NODE_FLAGS, dir_fd=parent)
        try:
            if stat.S_IFMT(os.fstat(fd).st_mode) != file_type:
                raise ImageError(f'image archive: "{member.name}" changed while extracting')
            self._set_metadata(scoped.fd_path(fd), member)
        finally:
            os.close(fd)

    # --- metadata -------------------------------------------------------------------------------

    @staticmethod
    def _times(member: tarfile.TarInfo) -> tuple[int, int]:
        """(atime, mtime) in ns; the atime from a PAX record, else the mtime."""
        mtime = int(member.mtime * 1_000_000_000)
        atime = member.pax_headers.get("atime")
        return (int(float(atime) * 1_000_000_000) if atime else mtime, mtime)

    def _set_metadata(self, target: int | str, member: tarfile.TarInfo) -> None:
        """Owner, mode, xattrs and times of a node that is not a symlink; ``target`` is an fd
        open on it or the :func:`scoped.fd_path` of one. chown comes first: it clears setuid bits
        and file capabilities."""
        if self.preserve_owner:
            os.chown(target, member.uid, member.gid)
        os.chmod(target, member.mode & 0o7777)
        for key, value in member.pax_headers.items():
            if key.startswith(_PAX_XATTR):
                self._set_xattr(target, member, key[len(_PAX_XATTR):], value)
        os.utime(target, ns=self._times(member))

    def _set_xattr(self, target: int | str, member: tarfile.TarInfo, attr: str, value: str) -> None:
        if not attr.startswith(XATTR_PREFIXES):
            if attr not in self._warned_xattrs:
                self._warned_xattrs.add(attr)
                self._warn(f'image archive: dropping extended attribute "{attr}" (first seen on '
                           f'"{member.name}")')
            return
        try:
            os.setxattr(target, attr, value.encode("utf-8", "surrogateescape"))
        except OSError as e:
            self._warn(f'image archive: "{member.name}": cannot set extended attribute "{attr}": '
                       f"{e.strerror}")
