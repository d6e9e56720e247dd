"""The content-addressed image store under ``<data dir>/cas``.

Each image is kept as its uncompressed ACI tar in ``blob/sha512/<2 hex>/<key>`` with its manifest
in ``imageManifest/sha512/<2 hex>/<key>``, where the key is ``sha512-`` and the first 64 hex digits of
the tar's sha512 (rkt's layout). Imports are staged in ``tmp/``, made durable, renamed into place,
and only then recorded in the database, all under the image's lock in ``imagelocks/``: a crash can
leave an orphan file for ``image gc`` to remove, never a database row without its blob.

Lookups, imports and removals are plain SQL through ``sqlite3`` (see :mod:`rkt_core.store.db`).
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import time
from contextlib import contextmanager

from ..access import check_not_shared
from ..appc import AppcError, ImageManifest
from ..appc.reference import parse_app_string
from ..crashpoints import crash_point
from ..errors import ImageError, NotFoundError, RktError
from ..sys.fs import fsync_dir, write_atomic
from ..sys.lock import FileLock
from ..types import RemoteInfo
from . import db
from ..records import dataclass, field

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing's import (for `rkt image list`)
if TYPE_CHECKING:
    from typing import BinaryIO, Callable, Iterator

    from .aci import Limits

KEY_PREFIX = "sha512-"
KEY_LEN = len(KEY_PREFIX) + 64
MIN_KEY_LEN = len(KEY_PREFIX) + 2
DIR_MODE = 0o2750  # group rkt reads (the setgid bit keeps the group), only the owner writes
FILE_MODE = 0o640


@dataclass
class ImageInfo:
    """One image of the store, as ``image list`` and the observers see it."""

    key: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    import_time: float = 0.0
    last_used: float = 0.0
    latest: bool = False
    size: int = 0
    treestore_size: int = 0

    @property
    def version(self) -> str | None:
        """The ``version`` label, if the image has one."""
        return self.labels.get("version")

    @property
    def display_name(self) -> str:
        """``name:version`` (just the name when there is no version label), as rkt prints it."""
        return f"{self.name}:{self.version}" if self.version else self.name


@dataclass
class StagedImage:
    """An image decompressed into ``cas/tmp`` and checked, not yet part of the store."""

    path: str
    key: str
    size: int
    manifest_json: bytes
    manifest: ImageManifest


def short_key(key: str) -> str:
    """The 12-hex-digit form ``image list`` prints (``sha512-9485936ecf06``)."""
    return key[: len(KEY_PREFIX) + 12]


def fetch_key(key: str) -> str:
    """The 32-hex-digit form ``rkt fetch`` prints (rkt's ShortHash)."""
    return key[: len(KEY_PREFIX) + 32]


def _info(row) -> ImageInfo:
    return ImageInfo(key=row["blobkey"], name=row["name"], labels=json.loads(row["labels"]),
                     import_time=row["importtime"], last_used=row["lastused"],
                     latest=bool(row["latest"]), size=row["size"],
                     treestore_size=row["treestoresize"])


_SORT_COLUMNS = ("name", "importtime", "lastused", "size", "blobkey")


class ImageRemovedError(NotFoundError):
    """An image was removed from the store (by ``image rm`` or ``image gc``) after the command
    reading it found it."""


class ImageStore:
    """Images by key and by name; imports, removal and lookups."""

    def __init__(self, data_dir: str, log: Callable[[str], None] | None = None,
                 read_only: bool = False):
        self.data_dir = data_dir
        self.cas = os.path.join(data_dir, "cas")
        self.tmp_dir = os.path.join(self.cas, "tmp")
        self.locks_dir = os.path.join(self.cas, "imagelocks")
        self.log = log or (lambda message: None)
        if not read_only:
            for path in (data_dir, self.cas, self.tmp_dir, self.locks_dir):
                os.makedirs(path, mode=DIR_MODE, exist_ok=True)
            db_dir = os.path.join(self.cas, "db")
            check_not_shared([data_dir, self.cas, db_dir, os.path.join(db_dir, db.DB_FILE)],
                             os.stat(data_dir).st_uid)
        self.db = db.Database(self.cas, read_only=read_only)

    # --- paths and locks ------------------------------------------------------------------------

    def blob_path(self, key: str) -> str:
        """Where the uncompressed ACI of ``key`` lives."""
        return os.path.join(self.cas, "blob", "sha512", key[7:9], key)

    def manifest_path(self, key: str) -> str:
        """Where the image manifest of ``key`` lives."""
        return os.path.join(self.cas, "imageManifest", "sha512", key[7:9], key)

    def lock(self, key: str) -> FileLock:
        """The per-image lock (take ``.exclusive()`` to import or remove, ``.shared()`` to read)."""
        return FileLock(os.path.join(self.locks_dir, key), create=True)

    # --- importing ----------------------------------------------------------------------------

    @contextmanager
    def staging(self, source: BinaryIO, limits: Limits | None = None) -> Iterator[StagedImage]:
        """Decompress and check ``source`` into ``cas/tmp``; the temp file is removed on exit
        unless :meth:`commit` moved it into the store."""
        from .aci import Limits, stage_aci  # tarfile and the decompressors: only to import

        fd, path = self._locked_temp_file("import-")
        try:
            with os.fdopen(fd, "w+b", closefd=False) as dest:
                staged = stage_aci(source, dest, limits or Limits())
                dest.flush()
                os.fchmod(fd, FILE_MODE)
                os.fsync(fd)
            crash_point("fetch.staged")
            manifest = ImageManifest.from_json(staged.manifest)
            yield StagedImage(path, staged.key, staged.size, staged.manifest, manifest)
        finally:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            os.close(fd)  # the lock goes with it: image gc may take what is left from now on

    def _locked_temp_file(self, prefix: str) -> tuple[int, str]:
        """A new file in ``cas/tmp``, open and exclusively flocked so that ``image gc`` leaves it
        alone (:meth:`remove_stale_temp_files`); made again if a gc removed it before the lock
        was taken."""
        import tempfile  # here: a run that finds its image stored never makes one

        while True:
            fd, path = tempfile.mkstemp(dir=self.tmp_dir, prefix=prefix)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:
                return fd, path
            os.close(fd)

    def commit(self, staged: StagedImage, remote: RemoteInfo | None = None,
               latest: bool = False) -> ImageInfo:
        """Move a staged image into the store (blob, manifest, then database row)."""
        key = staged.key
        with self.lock(key).exclusive():
            existing = self.find_info(key)
            if existing is None or not os.path.exists(self.blob_path(key)):
                blob = self.blob_path(key)
                self._makedirs_durable(os.path.dirname(blob))
                os.rename(staged.path, blob)
                fsync_dir(os.path.dirname(blob))
                crash_point("fetch.blob")
                manifest_path = self.manifest_path(key)
                self._makedirs_durable(os.path.dirname(manifest_path))
                write_atomic(manifest_path, staged.manifest_json, mode=FILE_MODE)
                crash_point("fetch.files")
            now = time.time()
            labels = json.dumps(dict(staged.manifest.labels))
            with self.db.write() as conn:
                if existing is None:
                    conn.execute("INSERT INTO aciinfo (blobkey, name, labels, importtime, lastused, "
                                 "latest, size, treestoresize) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                                 (key, staged.manifest.name, labels, now, now, latest, staged.size))
                elif latest and not existing.latest:
                    conn.execute("UPDATE aciinfo SET latest = 1 WHERE blobkey = ?", (key,))
                if remote is not None:
                    self._save_remote(conn, remote, key, now)
                row = conn.execute("SELECT * FROM aciinfo WHERE blobkey = ?", (key,)).fetchone()
        return _info(row)

    @staticmethod
    def _save_remote(conn, remote: RemoteInfo, key: str, now: float) -> None:
        conn.execute("DELETE FROM remote WHERE aciurl = ?", (remote.aci_url,))
        conn.execute("INSERT INTO remote (aciurl, sigurl, etag, blobkey, cachemaxage, downloadtime) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     (remote.aci_url, remote.sig_url, remote.etag, key, remote.cache_max_age, now))

    @staticmethod
    def _makedirs_durable(path: str) -> None:
        missing = []
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for directory in reversed(missing):
            try:
                os.mkdir(directory, DIR_MODE)
            except FileExistsError:
                pass
            fsync_dir(os.path.dirname(directory))

    # --- remote records -----------------------------------------------------------------------

    def get_remote(self, aci_url: str) -> tuple[RemoteInfo, str, float] | None:
        """The remote record of a URL: (info, blob key, download time), if the image is stored."""
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM remote WHERE aciurl = ?", (aci_url,)).fetchone()
        if row is None or self.find_info(row["blobkey"]) is None:
            return None
        return (RemoteInfo(row["aciurl"], row["sigurl"], row["etag"], row["cachemaxage"]),
                row["blobkey"], row["downloadtime"])

    def save_remote(self, remote: RemoteInfo, key: str) -> None:
        """Record (or refresh) where ``key`` was downloaded from."""
        with self.db.write() as conn:
            self._save_remote(conn, remote, key, time.time())

    # --- lookups ------------------------------------------------------------------------------

    def find_info(self, key: str) -> ImageInfo | None:
        """The image with exactly this full key, or None."""
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM aciinfo WHERE blobkey = ?", (key,)).fetchone()
        return _info(row) if row else None

    def get_info(self, key: str) -> ImageInfo:
        """The image with this full key, or NotFoundError."""
        info = self.find_info(key)
        if info is None:
            raise NotFoundError(f'image "{key}" is not in the store')
        return info

    def list_images(self, sort: tuple[str, ...] = ("importtime",), ascending: bool = True) -> list[ImageInfo]:
        """All images, sorted by the given aciinfo columns (``name``, ``importtime``, ...)."""
        if not sort or any(column not in _SORT_COLUMNS for column in sort):
            raise ValueError(f"cannot sort images by {sort}")
        direction = "ASC" if ascending else "DESC"
        order = ", ".join(f"{column} {direction}" for column in sort)
        with self.db.read() as conn:
            rows = conn.execute(f"SELECT * FROM aciinfo ORDER BY {order}").fetchall()
        return [_info(r) for r in rows]

    def resolve_key(self, prefix: str) -> str:
        """The full key starting with ``prefix`` (``sha512-`` and at least 2 hex digits)."""
        if not prefix.startswith(KEY_PREFIX):
            raise RktError(f'"{prefix}": wrong image ID prefix (expected "{KEY_PREFIX}")')
        if len(prefix) < MIN_KEY_LEN:
            raise RktError(f'image ID "{prefix}" too short')
        prefix = prefix[:KEY_LEN].lower()
        if not all(c in "0123456789abcdef" for c in prefix[len(KEY_PREFIX):]):
            raise NotFoundError(f'no image with ID "{prefix}" in the store')
        with self.db.read() as conn:
            keys = [r[0] for r in conn.execute(
                "SELECT blobkey FROM aciinfo WHERE blobkey >= ? AND blobkey < ? LIMIT 2",
                (prefix, prefix + "g"))]
        if not keys:
            raise NotFoundError(f'no image with ID "{prefix}" in the store')
        if len(keys) > 1:
            raise RktError(f'ambiguous image ID: "{prefix}"')
        return keys[0]

    def find_by_name(self, name: str, labels: dict[str, str] | None = None) -> ImageInfo | None:
        """The best stored image called ``name`` whose manifest has all ``labels`` (rkt's rules:
        without a requested version prefer images marked latest, then the latest imported)."""
        labels = labels or {}
        with self.db.read() as conn:
            rows = conn.execute("SELECT * FROM aciinfo WHERE name = ?", (name,)).fetchall()
        best: ImageInfo | None = None
        version_requested = "version" in labels
        for info in map(_info, rows):
            if any(info.labels.get(k) != v for k, v in labels.items()):
                continue
            if best is None:
                best = info
                continue
            if not version_requested and info.latest != best.latest:
                if info.latest:
                    best = info
                continue
            if info.import_time > best.import_time:
                best = info
        return best

    def resolve(self, ref: str) -> str:
        """The key of an image given as an ID prefix or as ``name[:version][,label=value]``."""
        if ref.startswith(KEY_PREFIX):
            return self.resolve_key(ref)
        name, labels = parse_app_string(ref)
        info = self.find_by_name(name, labels)
        if info is None:
            raise NotFoundError(f'no image named "{ref}" in the store')
        return info.key

    def manifest_json(self, key: str) -> bytes:
        """The stored manifest bytes of an image."""
        try:
            with open(self.manifest_path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise self._missing(key, "manifest", self.manifest_path(key)) from None

    def manifest(self, key: str) -> ImageManifest:
        """The parsed manifest of an image."""
        data = self.manifest_json(key)
        try:
            return ImageManifest.from_json(data)
        except AppcError as e:
            raise ImageError(f'the stored manifest of image "{key}" is damaged ({e.message})',
                             hint=_refetch_hint(key)) from None

    def open_blob(self, key: str) -> BinaryIO:
        """Open the uncompressed ACI of an image for reading."""
        try:
            return open(self.blob_path(key), "rb")
        except FileNotFoundError:
            raise self._missing(key, "blob", self.blob_path(key)) from None

    def _missing(self, key: str, what: str, path: str) -> NotFoundError:
        """The error for a file of image ``key`` that was not at ``path``: the image was removed
        by another command after the caller found it (and may have been fetched again since: a
        row is added only once its files are there), or, if it is still listed without the
        file, the store is damaged."""
        if self.find_info(key) is None or os.path.exists(path):
            return ImageRemovedError(f'image "{key}" was removed from the store (by "rkt image '
                                     'rm" or "rkt image gc") meanwhile',
                                     hint="run the command again")
        return NotFoundError(f'the {what} of image "{key}" is missing from the store',
                             hint=_refetch_hint(key))

    def mark_used(self, key: str) -> None:
        """Record that an image was just used (``LAST USED``)."""
        self.db.execute_write("UPDATE aciinfo SET lastused = ? WHERE blobkey = ?", (time.time(), key))

    def set_treestore_size(self, key: str, size: int) -> None:
        """Record the size of the rendered tree of an image (part of ``SIZE``)."""
        self.db.execute_write("UPDATE aciinfo SET treestoresize = ? WHERE blobkey = ?", (size, key))

    # --- removal ------------------------------------------------------------------------------

    def remove(self, key: str) -> list[str]:
        """Remove an image: check that its files can go, then delete its database rows, then its
        files (a crash in between leaves orphans for ``image gc``, never a row without a blob).

        Returns the files that could not be removed (the image is gone from the store anyway).
        """
        stale = []
        with self.lock(key).exclusive():
            if self.find_info(key) is None:
                raise NotFoundError(f'image "{key}" is not in the store')
            paths = (self.blob_path(key), self.manifest_path(key))
            for directory in {os.path.dirname(p) for p in paths if os.path.lexists(p)}:
                if not os.access(directory, os.W_OK | os.X_OK):
                    raise RktError(f"cannot remove the image's files: {directory} is not writable")
            with self.db.write() as conn:
                found = conn.execute("DELETE FROM aciinfo WHERE blobkey = ?", (key,)).rowcount
                conn.execute("DELETE FROM remote WHERE blobkey = ?", (key,))
            if not found:
                raise NotFoundError(f'image "{key}" is not in the store')
            crash_point("image-rm.row")
            for path in paths:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    stale.append(f"{path}: {e.strerror}")
            try:  # while locked: a waiter then locks the file made again (see FileLock)
                os.unlink(os.path.join(self.locks_dir, key))
            except OSError:
                pass
        return stale

    def remove_stale_temp_files(self, older_than: float) -> list[str]:
        """Remove files in ``cas/tmp`` untouched for ``older_than`` seconds (staging files of a
        crashed import, partial downloads nobody resumed); skip those locked by an import or a
        download in progress. Return the paths removed."""
        removed = []
        cutoff = time.time() - older_than
        for name in os.listdir(self.tmp_dir):
            path = os.path.join(self.tmp_dir, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue  # gone meanwhile, or not a plain file of ours
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_mtime > cutoff:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # an import or a download is using it right now
                os.unlink(path)
                removed.append(path)
            finally:
                os.close(fd)
        return removed

    def orphan_files(self) -> list[str]:
        """Blobs and manifests with no database row (left by a crash between file and row).

        A database that records no image while blobs exist is not trusted to tell what is an
        orphan: that is a damaged store, and an error.
        """
        with self.db.read() as conn:
            keys = {r[0] for r in conn.execute("SELECT blobkey FROM aciinfo")}
        if not keys and db.holds_images(self.cas):
            raise self.db.damaged("it records no image while the store holds some")
        orphans = []
        for kind in ("blob", "imageManifest"):
            base = os.path.join(self.cas, kind, "sha512")
            if not os.path.isdir(base):
                continue
            for sub in os.listdir(base):
                for name in os.listdir(os.path.join(base, sub)):
                    # not a key: the temp file of an import writing the manifest right now
                    if name.startswith(KEY_PREFIX) and name not in keys:
                        orphans.append(os.path.join(base, sub, name))
        return orphans


def _refetch_hint(key: str) -> str:
    """What to do about an image whose files in the store are damaged."""
    return f'remove it with "rkt image rm {key}" and fetch it again'
