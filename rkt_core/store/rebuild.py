"""Re-creating the store database from the stored images (``rkt image rebuild-db``).

Every blob in ``cas/blob`` is hashed again and recorded only if its content matches its name
(``sha512-`` and the first 64 hex digits of the sha512 of the uncompressed tar), with the
manifest read from the blob itself and the file's modification time as import time. A blob that
does not match, or holds no valid manifest, is reported and left where it is. Only once every
blob is read is anything changed: the old database (and any journal beside it) is moved to
``cas/db-backups/``, and the new one, written beside it, is renamed into place.

What only the old database knew is lost: where images were downloaded from (the next fetch
downloads them again) and which were marked latest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import time

from ..appc import ImageManifest
from ..errors import ImageError, RktError
from ..sys.fs import fsync_dir, write_atomic
from ..sys.lock import FileLock
from . import db
from .aci import read_manifest
from ..records import dataclass, field

_KEY = re.compile(r"sha512-[0-9a-f]{64}")
_JOURNALS = ("-journal", "-wal", "-shm")


@dataclass
class _Image:
    key: str
    name: str
    labels: str
    manifest_json: bytes
    mtime: float
    size: int


@dataclass
class RebuildResult:
    """What :func:`rebuild_database` did: images recorded, blobs left out (with why), and where
    the old database was put (None if there was none)."""

    recovered: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    backup: str | None = None


def rebuild_database(cas_dir: str) -> RebuildResult:
    """Re-create ``cas/db/store.sqlite3`` from the blobs; see the module docstring."""
    db_dir = os.path.join(cas_dir, "db")
    os.makedirs(db_dir, mode=0o2750, exist_ok=True)
    result = RebuildResult()
    with FileLock(os.path.join(db_dir, "lock"), create=True).exclusive():
        images = _read_blobs(cas_dir, result.skipped)
        result.backup = _set_aside(os.path.join(db_dir, db.DB_FILE),
                                   os.path.join(cas_dir, "db-backups"))
        _write_database(cas_dir, db_dir, images)
    result.recovered = [(image.key, image.name) for image in images]
    return result


def _read_blobs(cas_dir: str, skipped: list[str]) -> list[_Image]:
    base = os.path.join(cas_dir, "blob", "sha512")
    images = []
    for sub in sorted(os.listdir(base)) if os.path.isdir(base) else ():
        directory = os.path.join(base, sub)
        if os.path.islink(directory) or not os.path.isdir(directory):
            skipped.append(f"{directory}: not a directory of blobs")
            continue
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            try:
                images.append(_read_blob(path, name, sub))
            except (RktError, OSError) as e:
                skipped.append(f"{path}: {e.strerror if isinstance(e, OSError) else e}")
    return images


def _read_blob(path: str, name: str, sub: str) -> _Image:
    if not _KEY.fullmatch(name) or name[7:9] != sub:
        raise ImageError("not named like an image blob (sha512-<64 hex digits>)")
    with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ImageError("not a regular file")
        digest = "sha512-" + hashlib.file_digest(f, "sha512").hexdigest()[:64]
    if digest != name:
        raise ImageError(f"its content hashes to {digest}, not to its name; left as it is")
    manifest_json = read_manifest(path)
    manifest = ImageManifest.from_json(manifest_json)
    return _Image(name, manifest.name, json.dumps(dict(manifest.labels)), manifest_json,
                  st.st_mtime, st.st_size)


def _set_aside(path: str, backups_dir: str) -> str | None:
    """Move the database and its journals into ``backups_dir``; the path of the copy, if any."""
    present = [suffix for suffix in ("",) + _JOURNALS if os.path.lexists(path + suffix)]
    if not present:
        return None
    os.makedirs(backups_dir, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = os.path.join(backups_dir, f"{stamp}-damaged-{os.getpid()}.sqlite3")
    for suffix in present:
        os.rename(path + suffix, target + suffix)
    fsync_dir(backups_dir)
    fsync_dir(os.path.dirname(path))
    return target


def _write_database(cas_dir: str, db_dir: str, images: list[_Image]) -> None:
    from sqlalchemy import insert

    from . import schema

    fd, tmp = tempfile.mkstemp(dir=db_dir, prefix=".rebuild-", suffix=".sqlite3")
    os.fchmod(fd, db.DB_FILE_MODE)
    os.close(fd)
    try:
        schema.create_or_migrate(tmp, db.SCHEMA_VERSION, db.configure_connection, lambda _v: "")
        engine = schema.engine(tmp, db.configure_connection)
        try:
            with engine.begin() as conn:
                for image in images:
                    conn.execute(insert(schema.aciinfo).values(
                        blobkey=image.key, name=image.name, labels=image.labels,
                        importtime=image.mtime, lastused=image.mtime, latest=False,
                        size=image.size, treestoresize=0))
        finally:
            engine.dispose()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(db_dir, db.DB_FILE))
    except BaseException:
        for leftover in (tmp, tmp + "-journal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise
    fsync_dir(db_dir)
    for image in images:  # the manifest files are derived from the blobs: put them right too
        path = os.path.join(cas_dir, "imageManifest", "sha512", image.key[7:9], image.key)
        if _content(path) != image.manifest_json:
            os.makedirs(os.path.dirname(path), mode=0o2750, exist_ok=True)
            write_atomic(path, image.manifest_json, mode=0o640)


def _content(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError):
        return None
