"""Squashing layers into the rootfs of one ACI, following the OCI layer rules.

Nothing is extracted to disk here: the layers are plain tar files, read twice. The first pass
reads only headers and builds the final tree in memory, base layer first:

- a layer's whiteouts apply to the layers below it only, so they are applied before its own
  entries: ``dir/.wh.name`` removes ``dir/name`` and what is under it, ``dir/.wh..wh..opq``
  empties ``dir`` of what lower layers put there (docker2aci ignored opaque directories);
  other ``.wh..wh.*`` names are aufs bookkeeping and are dropped; ``.wh.``, ``.wh..`` and
  ``.wh...`` are refused;
- an entry replaces what was at its name, except that a directory over a directory only takes
  its metadata; a non-directory over a directory removes the directory's tree;
- paths are resolved through the tree built so far with chroot semantics (a symlinked parent is
  followed, absolute targets from the root, ``..`` never above it, 40 hops at most), so whiteouts
  and entries under a symlinked directory land where Docker would put them; names that are
  absolute mean root-relative, names with ``..`` are refused;
- a hard link shares the node of its target, which must already exist and not be a directory:
  links survive their target being replaced or deleted in a later layer, and cross layers.

The second pass writes the ACI: ``manifest``, ``rootfs``, then the tree in sorted order, each
header rebuilt from the entry's (type, mode with setuid/sticky, numeric and named owner, mtime,
link target, device numbers, ``SCHILY.xattr`` records; nothing else). The first name of a node
carries its content, the others are hard links to it. Content is copied by the kernel
(``copy_file_range``) from the layer file it came from. Directories missing from the layers
are added (0755, root, time 0), and, as docker2aci did, the ``/dev/stdin``, ``stdout``,
``stderr`` and ``fd`` symlinks when absent. The same layers always give the same bytes.

The ACI written is then checked and rendered by the core like any other (``stage_aci``, the
scoped extractor): this module decides content, the core decides what may touch the disk.
"""

from __future__ import annotations

import os
import tarfile
from typing import BinaryIO, Callable, Iterator

from rkt_core.plugin_api import ImageError
from rkt_core.plugin_api.fetch import TAR_ERRORS, Limits, clean_name, open_tar

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_SYMLINK_HOPS = 40
STDIO_SYMLINKS = (("stdin", "/proc/self/fd/0"), ("stdout", "/dev/console"),
                  ("stderr", "/dev/console"), ("fd", "/proc/self/fd"))
_PAX_XATTR = "SCHILY.xattr."


def _synthetic(name: str, kind: bytes, mode: int, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.linkname = kind, mode, 0, linkname
    info.uname = info.gname = ""
    return info


class _Dir:
    """A directory: its header and its children (``_Dir`` or ``_Inode`` by name)."""

    __slots__ = ("member", "children")

    def __init__(self, member: tarfile.TarInfo):
        self.member = member
        self.children: dict[str, _Dir | _Inode] = {}


class _Inode:
    """A non-directory: its header and the index of the layer holding its content. Hard links
    are the same object under several names; ``path`` is set to the first name written."""

    __slots__ = ("member", "layer", "path")

    def __init__(self, member: tarfile.TarInfo, layer: int):
        self.member = member
        self.layer = layer
        self.path: str | None = None


class Squasher:
    """Add layers base first with :meth:`add_layer`, then :meth:`write` the ACI; :meth:`close`
    (or the context manager) closes the layer files."""

    def __init__(self, limits: Limits = Limits(), warn: Callable[[str], None] = lambda m: None):
        self.limits = limits
        self.warn = warn
        self.root = _Dir(_synthetic("rootfs", tarfile.DIRTYPE, 0o755))
        self.layers: list[tarfile.TarFile | None] = []
        self.entries = 0

    def __enter__(self) -> Squasher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the layer files."""
        for tar in self.layers:
            if tar is not None:
                tar.close()
        self.layers.clear()

    # --- first pass: the tree ---------------------------------------------------------------

    def add_layer(self, path: str, what: str) -> None:
        """Apply the plain tar layer at ``path`` (``what`` names it in errors)."""
        index = len(self.layers)
        if os.path.getsize(path) == 0:
            self.layers.append(None)
            return
        try:
            tar = open_tar(path, self.limits)
        except TAR_ERRORS as e:
            raise ImageError(f"{what}: not a valid tar: {e}") from None
        self.layers.append(tar)
        whiteouts, opaques, entries = self._read(tar, what)
        for parts in opaques:
            directory = self._walk(parts, what)
            if directory is not None:
                directory.children.clear()
        for parts in whiteouts:
            directory = self._walk(parts[:-1], what)
            if directory is not None:
                directory.children.pop(parts[-1], None)
        for parts, member in entries:
            self._add(parts, member, index, what)

    def _read(self, tar: tarfile.TarFile, what: str):
        """The layer's whiteouts, opaque directories and entries, names split and checked."""
        whiteouts, opaques, entries = [], [], []
        try:
            while (member := tar.next()) is not None:
                tar.members.clear()
                self.entries += 1
                if self.entries > self.limits.max_entries:
                    raise ImageError(f"{what}: more than {self.limits.max_entries} entries")
                parts = self._parts(member.name, what)
                base = parts[-1] if parts else ""
                if not base.startswith(WHITEOUT):
                    entries.append((parts, member))
                elif base == OPAQUE:
                    opaques.append(parts[:-1])
                elif base.startswith(WHITEOUT + WHITEOUT):
                    pass  # aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not content
                elif base[len(WHITEOUT):] in ("", ".", ".."):
                    raise ImageError(f'{what}: invalid whiteout "{member.name}"')
                else:
                    whiteouts.append(parts[:-1] + [base[len(WHITEOUT):]])
            end = tar.offset
        except TAR_ERRORS as e:
            raise ImageError(f"{what}: not a valid tar: {e}") from None
        tar.fileobj.seek(end)
        if tar.fileobj.read(tarfile.BLOCKSIZE) not in (b"", tarfile.NUL * tarfile.BLOCKSIZE):
            raise ImageError(f"{what}: corrupt tar (a bad header at byte {end})")
        return whiteouts, opaques, entries

    def _parts(self, name: str, what: str) -> list[str]:
        if len(name) > self.limits.max_name_len:
            raise ImageError(f'{what}: entry "{name[:100]}..." has a name longer than '
                             f"{self.limits.max_name_len}")
        try:
            cleaned = clean_name(name.lstrip("/"))
        except ImageError as e:
            raise ImageError(f"{what}: {e.message.removeprefix('image archive: ')}") from None
        return [] if cleaned == "." else cleaned.split("/")

    def _walk(self, parts: list[str], what: str, create: bool = False) -> _Dir | None:
        """The directory at ``parts``, symlinks followed inside the tree; None if it is missing
        or not a directory, unless ``create`` (missing ones are made, a file is an error)."""
        stack = [self.root]
        todo = parts[::-1]
        hops = 0
        while todo:
            name = todo.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            node = stack[-1].children.get(name)
            if node is None:
                if not create:
                    return None
                node = stack[-1].children[name] = _Dir(_synthetic(name, tarfile.DIRTYPE, 0o755))
            elif isinstance(node, _Inode):
                if node.member.issym():
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise ImageError(f'{what}: "{"/".join(parts)}": too many levels of '
                                         "symbolic links")
                    if node.member.linkname.startswith("/"):
                        del stack[1:]
                    todo.extend(node.member.linkname.split("/")[::-1])
                    continue
                if not create:
                    return None
                raise ImageError(f'{what}: "{"/".join(parts)}": "{name}" is not a directory')
            stack.append(node)
        return stack[-1]

    def _lookup(self, parts: list[str], what: str) -> _Dir | _Inode | None:
        """The node at ``parts`` itself (a final symlink is not followed)."""
        if not parts:
            return self.root
        directory = self._walk(parts[:-1], what)
        return None if directory is None else directory.children.get(parts[-1])

    def _add(self, parts: list[str], member: tarfile.TarInfo, layer: int, what: str) -> None:
        if not parts:
            if not member.isdir():
                raise ImageError(f'{what}: entry "{member.name}" would replace the root '
                                 "directory")
            self.root.member = member
            return
        if member.islnk():
            target = self._lookup(self._parts(member.linkname, what), what)
            if target is None or isinstance(target, _Dir):
                problem = "does not exist" if target is None else "is a directory"
                raise ImageError(f'{what}: hard link "{member.name}": its target '
                                 f'"{member.linkname}" {problem}')
        parent = self._walk(parts[:-1], what, create=True)
        name = parts[-1]
        if member.isdir():
            existing = parent.children.get(name)
            if isinstance(existing, _Dir):
                existing.member = member
            else:
                parent.children[name] = _Dir(member)
        elif member.islnk():
            parent.children[name] = target
        elif member.isreg() or member.issym() or member.ischr() or member.isblk() \
                or member.isfifo():
            parent.children[name] = _Inode(member, layer)
        else:
            self.warn(f'{what}: skipping "{member.name}": unsupported entry type '
                      f"{member.type!r}")

    def add_stdio_symlinks(self) -> None:
        """``/dev/stdin``, ``stdout``, ``stderr`` and ``fd`` as docker2aci added them, where
        absent (nothing if ``/dev`` is not a directory)."""
        dev = self.root.children.setdefault("dev", _Dir(_synthetic("dev", tarfile.DIRTYPE,
                                                                   0o755)))
        if isinstance(dev, _Dir):
            for name, target in STDIO_SYMLINKS:
                if name not in dev.children:
                    dev.children[name] = _Inode(_synthetic(name, tarfile.SYMTYPE, 0o777, target),
                                                -1)

    def read_file(self, path: str, limit: int = 1 << 20) -> bytes | None:
        """The content of the regular file at ``path`` in the tree (symlinks followed), if it
        exists and is at most ``limit`` bytes."""
        parts = path.strip("/").split("/")
        node = self._lookup(parts, path)
        for _ in range(MAX_SYMLINK_HOPS):
            if not (isinstance(node, _Inode) and node.member.issym()):
                break
            target = node.member.linkname
            parts = target.split("/") if target.startswith("/") else parts[:-1] + target.split("/")
            node = self._lookup([p for p in parts if p], path)
        if not isinstance(node, _Inode) or not node.member.isreg() \
                or node.member.size > limit:
            return None
        return self.layers[node.layer].extractfile(node.member).read()

    # --- second pass: the ACI ----------------------------------------------------------------

    def _tree(self) -> Iterator[tuple[str, _Dir | _Inode]]:
        """Every node below the root with its path, parents first, names sorted."""
        stack = [("", iter(sorted(self.root.children.items())))]
        while stack:
            prefix, children = stack[-1]
            item = next(children, None)
            if item is None:
                stack.pop()
                continue
            name, node = item
            yield prefix + name, node
            if isinstance(node, _Dir):
                stack.append((prefix + name + "/", iter(sorted(node.children.items()))))

    def write(self, out: BinaryIO, manifest: bytes) -> None:
        """Write the ACI (an uncompressed tar) with ``manifest`` to the file ``out``."""
        total = 0
        tar = _TarWriter(out)
        info = _synthetic("manifest", tarfile.REGTYPE, 0o644)
        info.size = len(manifest)
        tar.add(info, manifest)
        tar.add(_header("rootfs", self.root.member))
        for path, node in self._tree():
            name = "rootfs/" + path
            if isinstance(node, _Dir):
                tar.add(_header(name, node.member))
            elif node.path is not None:
                info = _header(name, node.member)
                info.type, info.linkname, info.size = tarfile.LNKTYPE, "rootfs/" + node.path, 0
                tar.add(info)
            else:
                node.path = path
                info = _header(name, node.member)
                total += info.size
                if total > self.limits.max_uncompressed_bytes:
                    raise ImageError("the squashed image is larger than "
                                     f"{self.limits.max_uncompressed_bytes} bytes")
                tar.add(info, (self.layers[node.layer], node.member)
                        if node.member.isreg() else None)
        tar.close()


class _TarWriter:
    """Writes a PAX tar straight to a file's descriptor; content comes from bytes or is copied
    from a member of a layer file by the kernel (``copy_file_range``)."""

    def __init__(self, out: BinaryIO):
        out.flush()
        self.fd = out.fileno()
        self.size = 0

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        self.size += len(data)

    def add(self, info: tarfile.TarInfo, content=None) -> None:
        """``content``: bytes, or (layer tar, member) for a regular file."""
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if isinstance(content, bytes):
            self._write(content)
        elif content is not None:
            self._copy(*content)
        self._write(tarfile.NUL * (-info.size % tarfile.BLOCKSIZE))

    def _copy(self, layer: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        if not member.issparse():
            src, offset, left = layer.fileobj.fileno(), member.offset_data, member.size
            try:
                while left:
                    copied = os.copy_file_range(src, self.fd, left, offset_src=offset)
                    if not copied:
                        raise ImageError(f'layer ends inside "{member.name}"')
                    offset, left = offset + copied, left - copied
                self.size += member.size
                return
            except OSError:
                if left != member.size:
                    raise
        source, left = layer.extractfile(member), member.size  # sparse, or no copy_file_range
        while left:
            chunk = source.read(min(left, 1 << 20))
            if not chunk:
                raise ImageError(f'layer ends inside "{member.name}"')
            self._write(chunk)
            left -= len(chunk)

    def close(self) -> None:
        """The end-of-archive blocks, padded to a whole record as tarfile does."""
        self._write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
        self._write(tarfile.NUL * (-self.size % tarfile.RECORDSIZE))


def _header(name: str, member: tarfile.TarInfo) -> tarfile.TarInfo:
    """A fresh header for ``member`` under ``name``: only the fields an image needs."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE if member.isreg() else member.type
    info.mode = member.mode & 0o7777
    info.uid, info.gid, info.uname, info.gname = member.uid, member.gid, member.uname, \
        member.gname
    info.mtime = member.mtime
    if member.isreg():
        info.size = member.size
    if member.issym():
        info.linkname = member.linkname
    if member.ischr() or member.isblk():
        info.devmajor, info.devminor = member.devmajor, member.devminor
    info.pax_headers = {k: v for k, v in member.pax_headers.items() if k.startswith(_PAX_XATTR)}
    return info
