"""The tree store: images rendered with their dependencies into ``cas/tree/<id>/rootfs``.

A tree's id is ``deps-`` + the key-style sha512 of the comma-joined keys of its flattened
dependency list, so an image renders once and every later pod reuses it. Rendering writes
``rootfs/``, then ``hash`` (a content hash of the whole tree) and ``fingerprint`` (a digest of
every entry's inode metadata), flushes the filesystem, and writes the ``rendered`` marker last: a
tree without the marker is incomplete and is rendered again.

Checking a tree before a pod uses it compares the fingerprint, which reads no file: any change to
the tree changes some entry's ctime. ``rkt image verify`` compares the content hash.
"""

from __future__ import annotations

import os
import stat

try:  # the builtin sha512: hashlib would load OpenSSL (2 ms, 1 MiB) for a run's short digests
    from _sha512 import sha512
except ImportError:  # a Python built without it
    from hashlib import sha512

from ..crashpoints import crash_point
from ..errors import ImageError, NotFoundError, RktError
from ..sys.fs import fsync_dir, syncfs, write_atomic
from ..sys.lock import FileLock
from .imagestore import KEY_PREFIX, ImageStore
from ..records import dataclass

MAX_DEPENDENCY_DEPTH = 32
MAX_DEPENDENCY_IMAGES = 256


class TreeVerificationError(RktError):
    """A rendered tree no longer matches the hash recorded when it was rendered."""


@dataclass(frozen=True)
class DepImage:
    """One image of a flattened dependency list: its key, manifest and depth (0 = the top)."""

    key: str
    manifest: object
    level: int


def dependency_list(store: ImageStore, key: str) -> list[DepImage]:
    """The flattened dependency list of an image, highest priority first (appc's order).

    Each image's dependencies are inserted right after it, later dependencies first, so for
    A -> [B, C] and C -> [D] the list is A, C, D, B. Dependencies are found in the store by image
    ID when the manifest gives one (which must then match), else by name and labels. Cycles and
    absurd depths are refused.
    """
    top = DepImage(key, store.manifest(key), 0)
    items: list[tuple[DepImage, tuple[str, ...]]] = [(top, (key,))]
    i = 0
    while i < len(items):
        image, ancestors = items[i]
        for dep in image.manifest.dependencies:
            dep_key = _resolve_dependency(store, image, dep)
            if dep_key in ancestors:
                raise ImageError(f'dependency cycle: image "{dep.image_name}" depends on itself '
                                 f'through "{image.manifest.name}"')
            if image.level + 1 > MAX_DEPENDENCY_DEPTH:
                raise ImageError(f'dependencies of "{top.manifest.name}" nest deeper than '
                                 f"{MAX_DEPENDENCY_DEPTH} levels")
            entry = DepImage(dep_key, store.manifest(dep_key), image.level + 1)
            items.insert(i + 1, (entry, ancestors + (dep_key,)))
            if len(items) > MAX_DEPENDENCY_IMAGES:
                raise ImageError(f'"{top.manifest.name}" has more than {MAX_DEPENDENCY_IMAGES} dependencies')
        i += 1
    return [image for image, _ in items]


def _resolve_dependency(store: ImageStore, parent: DepImage, dep) -> str:
    if dep.image_id:
        key = store.resolve_key(dep.image_id)
        name = store.get_info(key).name
        if name != dep.image_name:
            raise ImageError(f'dependency "{dep.image_name}" of "{parent.manifest.name}": image '
                             f'{dep.image_id} is called "{name}"')
        return key
    info = store.find_by_name(dep.image_name, dict(dep.labels))
    if info is None:
        raise NotFoundError(f'dependency "{dep.image_name}" of "{parent.manifest.name}" is not in '
                            "the store", hint="fetch it first")
    return info.key


def tree_id(keys: list[str]) -> str:
    """The tree store id of a flattened dependency list."""
    digest = sha512(",".join(keys).encode()).hexdigest()
    return "deps-" + KEY_PREFIX + digest[:64]


def tree_hash(root: str) -> tuple[str, int]:
    """A content hash of a directory tree and the total size of its files.

    Covers every path, type, mode (with setuid bits), owner, symlink target, file content and
    extended attribute; not times, which change when the tree is merely read.
    """
    import hashlib  # here: OpenSSL hashes file contents faster than the builtin sha512

    digest = hashlib.sha512()
    total = 0

    def walk(directory: str, rel: str) -> None:
        nonlocal total
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            relpath = f"{rel}/{name}" if rel else name
            st = os.lstat(path)
            digest.update(f"{relpath}\0{st.st_mode:o}\0{st.st_uid}\0{st.st_gid}\0".encode())
            for attr in sorted(_xattrs(path, st)):
                digest.update(attr.encode() + b"=" + os.getxattr(path, attr, follow_symlinks=False) + b"\0")
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.readlink(path).encode() + b"\0")
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
                with open(path, "rb") as f:
                    digest.update(hashlib.file_digest(f, "sha512").digest())
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                digest.update(f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}\0".encode())
            elif stat.S_ISDIR(st.st_mode):
                walk(path, relpath)

    walk(root, "")
    return KEY_PREFIX + digest.hexdigest(), total


def tree_fingerprint(root: str) -> str:
    """A digest of every path under ``root`` with its inode number, type, mode, owner, size,
    mtime and ctime: a change to the tree changes it (writing, chmod, chown, xattrs and renames
    all update a ctime, which no user can set), yet no file is read."""
    digest = sha512()
    pending = [(root, "")]
    while pending:
        directory, rel = pending.pop()
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                st = entry.stat(follow_symlinks=False)
                relpath = f"{rel}/{entry.name}" if rel else entry.name
                digest.update(f"{relpath}\0{st.st_ino}\0{st.st_mode:o}\0{st.st_uid}\0{st.st_gid}\0"
                              f"{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n".encode())
                if stat.S_ISDIR(st.st_mode):
                    pending.append((entry.path, relpath))
    return KEY_PREFIX + digest.hexdigest()


def _xattrs(path: str, st: os.stat_result) -> list[str]:
    if stat.S_ISLNK(st.st_mode):
        return []
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []


class TreeStore:
    """Rendered trees, one directory per dependency list."""

    def __init__(self, store: ImageStore):
        self.store = store
        self.dir = os.path.join(store.cas, "tree")
        self.locks_dir = os.path.join(store.cas, "treestorelocks")
        os.makedirs(self.dir, mode=0o2700, exist_ok=True)
        os.makedirs(self.locks_dir, mode=0o2700, exist_ok=True)

    def path(self, tree: str) -> str:
        """The directory of a tree (holding ``rootfs``, ``hash``, ``image`` and ``rendered``)."""
        return os.path.join(self.dir, tree)

    def rootfs(self, tree: str) -> str:
        """The rendered root filesystem of a tree."""
        return os.path.join(self.path(tree), "rootfs")

    def lock(self, tree: str) -> FileLock:
        """The lock of one tree."""
        return FileLock(os.path.join(self.locks_dir, tree), create=True)

    def id_for(self, key: str) -> str:
        """The tree id an image renders to."""
        return tree_id([d.key for d in dependency_list(self.store, key)])

    def is_rendered(self, tree: str) -> bool:
        """Whether a tree is complete (its ``rendered`` marker exists)."""
        return os.path.exists(os.path.join(self.path(tree), "rendered"))

    def render(self, key: str, warn=None) -> str:
        """Render an image with its dependencies unless already rendered; return the tree id."""
        deps = dependency_list(self.store, key)
        tree = tree_id([d.key for d in deps])
        if self.is_rendered(tree):
            return tree
        with self.lock(tree).exclusive():
            if self.is_rendered(tree):
                return tree
            path = self.path(tree)
            self._remove_dir(path)
            os.mkdir(path, 0o700)
            rootfs = os.path.join(path, "rootfs")
            os.mkdir(rootfs, 0o755)
            from .render import Layer, render_layers  # the extractor: only to render

            layers = [Layer(self.store.blob_path(d.key), d.key, list(d.manifest.path_whitelist), d.level)
                      for d in deps]
            render_layers(layers, rootfs, warn=warn)
            crash_point("render.tree")
            digest, size = tree_hash(rootfs)
            write_atomic(os.path.join(path, "hash"), digest.encode())
            write_atomic(os.path.join(path, "fingerprint"), tree_fingerprint(rootfs).encode())
            write_atomic(os.path.join(path, "image"), key.encode())
            syncfs(path)
            crash_point("render.marker")
            write_atomic(os.path.join(path, "rendered"), b"")
            fsync_dir(self.dir)
        self.store.set_treestore_size(key, size)
        return tree

    def rebuild(self, key: str, warn=None) -> str:
        """Render an image again from its blob, replacing its tree; return the tree id."""
        self.remove(self.id_for(key))
        return self.render(key, warn=warn)

    def check(self, tree: str) -> None:
        """The cheap check before a pod uses a tree: compare its fingerprint with the one
        recorded at render time (a tree rendered before fingerprints is hashed once instead)."""
        path = self.path(tree)
        try:
            with open(os.path.join(path, "fingerprint")) as f:
                expected = f.read().strip()
        except FileNotFoundError:
            with self.lock(tree).exclusive():
                self.verify(tree)
                write_atomic(os.path.join(path, "fingerprint"),
                             tree_fingerprint(self.rootfs(tree)).encode())
            return
        if tree_fingerprint(self.rootfs(tree)) != expected:
            raise TreeVerificationError(f'tree "{tree}" was modified on disk since it was rendered')

    def verify(self, tree: str) -> None:
        """Re-hash a rendered tree and compare with the hash recorded at render time."""
        try:
            with open(os.path.join(self.path(tree), "hash")) as f:
                expected = f.read().strip()
        except FileNotFoundError:
            raise TreeVerificationError(f'tree "{tree}" has no recorded hash') from None
        actual, _ = tree_hash(self.rootfs(tree))
        if actual != expected:
            raise TreeVerificationError(f'tree "{tree}" was modified on disk: its hash is {actual}, '
                                        f"expected {expected}")

    def ids(self) -> list[str]:
        """Every tree in the store, rendered or not."""
        return sorted(n for n in os.listdir(self.dir) if n.startswith("deps-"))

    def image_of(self, tree: str) -> str | None:
        """The key of the image a tree was rendered for, if recorded."""
        try:
            with open(os.path.join(self.path(tree), "image")) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def remove(self, tree: str) -> None:
        """Delete a tree: its ``rendered`` marker first (durably), then the files."""
        path = self.path(tree)
        with self.lock(tree).exclusive():
            try:
                os.unlink(os.path.join(path, "rendered"))
                fsync_dir(path)
            except FileNotFoundError:
                pass
            crash_point("image-gc.tree")
            self._remove_dir(path)
            try:  # while locked: a waiter then locks the file made again (see FileLock)
                os.unlink(os.path.join(self.locks_dir, tree))
            except OSError:
                pass

    @staticmethod
    def _remove_dir(path: str) -> None:
        if not os.path.lexists(path):
            return
        # A tree is ours alone (no mounts inside), but refuse to cross into another filesystem.
        device = os.lstat(path).st_dev
        for dirpath, dirnames, _ in os.walk(path):
            for d in dirnames:
                if os.lstat(os.path.join(dirpath, d)).st_dev != device:
                    raise RktError(f'"{os.path.join(dirpath, d)}" is a mount point inside the tree store')
        import shutil  # here: only removals need it

        shutil.rmtree(path)
