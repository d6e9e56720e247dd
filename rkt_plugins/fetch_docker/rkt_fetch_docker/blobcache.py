"""The docker blob cache: ``<data dir>/cas/tmp/docker-blobs/``.

A layer or config blob is downloaded to ``<algorithm>-<hex>.partial`` while it is hashed, and
renamed to ``<algorithm>-<hex>`` only once its size and digest are right; a blob that does not
match is deleted. An interrupted download keeps its ``.partial`` file and the next fetch resumes
it with a ``Range`` request; if the resumed whole does not match, the blob is downloaded again
from the start, once. A cached blob is hashed again each time it is used, so a damaged or
tampered cache file is never trusted (it is deleted and downloaded again).

Complete blobs stay after the fetch, so that other tags sharing layers do not download them
again; the least recently used go once the cache holds more than ``max_bytes``, and partial
files after a week. Everything here may be deleted at any time: it is only a cache.

Two fetches of the same blob at once take turns: the partial file is locked (``flock``) while it
is written, and the path is re-checked after locking, so a file renamed or removed meanwhile is
never written to.
"""

from __future__ import annotations

import fcntl
import os
import time
from typing import BinaryIO, Callable

import requests
import urllib3

from rkt_core.plugin_api import ImageError

from .client import CHUNK, RegistryError, _reason
from .digest import DigestMismatch, check, hasher

GiB = 1 << 30
DEFAULT_MAX_BYTES = 1 * GiB
PARTIAL = ".partial"
PARTIAL_MAX_AGE = 7 * 24 * 3600
MAX_UNSIZED_BLOB = 64 * GiB  # schema1 layers come without a size


def _hash_file(f: BinaryIO, digest: str):
    """(bytes read, hash object) of ``f`` from its start."""
    f.seek(0)
    h = hasher(digest)
    size = 0
    while chunk := f.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return size, h


def _range_start(response) -> int:
    """The first byte of a 206 response (``Content-Range: bytes START-END/SIZE``)."""
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split(" ", 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return -1


class BlobCache:
    """Checked blobs in ``directory``; see the module docstring."""

    def __init__(self, directory: str, log: Callable[[str], None] = lambda message: None,
                 max_bytes: int = DEFAULT_MAX_BYTES):
        self.dir = directory
        self.log = log
        self.max_bytes = max_bytes
        os.makedirs(directory, mode=0o2750, exist_ok=True)

    def path(self, digest: str) -> str:
        """Where the complete blob ``digest`` is kept."""
        return os.path.join(self.dir, digest.replace(":", "-"))

    def open(self, digest: str, size: int | None,
             download: Callable[[int], requests.Response]) -> BinaryIO:
        """The blob, open at offset 0, its digest (and ``size``, when known) checked; taken from
        the cache or downloaded with ``download(offset)``, which returns a streaming response
        from byte ``offset`` (206) or from the start (200)."""
        cached = self._open_cached(digest)
        if cached is not None:
            return cached
        partial = self.path(digest) + PARTIAL
        f = os.fdopen(self._lock(partial), "r+b")
        try:
            if os.path.exists(self.path(digest)):  # another fetch finished it meanwhile
                os.unlink(partial)  # the one this fetch just created after the rename
                f.close()
                return self.open(digest, size, download)
            try:
                self._download(f, digest, size, download)
            except ImageError:
                os.unlink(partial)  # not the blob: nothing of it is kept
                raise
            os.rename(partial, self.path(digest))
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.seek(0)
            return f
        except BaseException:
            f.close()
            raise

    def _open_cached(self, digest: str) -> BinaryIO | None:
        try:
            f = open(self.path(digest), "rb")
        except FileNotFoundError:
            return None
        _, h = _hash_file(f, digest)
        try:
            check(digest, h.hexdigest(), f"cached blob {digest}")
        except DigestMismatch as e:
            self.log(f"docker: {e}; downloading it again")
            f.close()
            os.unlink(self.path(digest))
            return None
        os.utime(f.fileno())  # most recently used
        f.seek(0)
        return f

    @staticmethod
    def _lock(path: str) -> int:
        """An fd of ``path`` (created if missing), flocked, still the file at ``path``."""
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                st = os.stat(path, follow_symlinks=False)
                own = os.fstat(fd)
                if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def _download(self, f: BinaryIO, digest: str, size: int | None,
                  download: Callable[[int], requests.Response]) -> None:
        limit = MAX_UNSIZED_BLOB if size is None else size
        for attempt in (1, 2):
            offset, h = _hash_file(f, digest)
            if offset > limit:
                offset, h = self._restart(f, digest)
            resumed_at = offset
            if size is None or offset < size:
                offset, h = self._receive(f, digest, offset, h, limit, download)
            if size is not None and offset != size:
                raise ImageError(f"blob {digest}: {offset} bytes received, its descriptor says "
                                 f"{size}")
            try:
                check(digest, h.hexdigest(), f"blob {digest}")
                return
            except DigestMismatch:
                if not resumed_at or attempt == 2:
                    raise
                self.log(f"docker: blob {digest} did not match after resuming at byte "
                         f"{resumed_at}; downloading it again")
                self._restart(f, digest)

    @staticmethod
    def _restart(f: BinaryIO, digest: str):
        f.seek(0)
        f.truncate()
        return 0, hasher(digest)

    def _receive(self, f: BinaryIO, digest: str, offset: int, h, limit: int,
                 download: Callable[[int], requests.Response]):
        """Append what the registry sends from ``offset`` on (from 0 if it does not honour the
        range); returns the new (size, hash)."""
        response = download(offset)
        if offset:
            if response.status_code == 206 and _range_start(response) == offset:
                self.log(f"docker: resuming blob {digest} at byte {offset}")
            else:
                if response.status_code != 200:
                    response.close()
                    response = download(0)
                offset, h = self._restart(f, digest)
        with response:
            f.seek(offset)
            try:
                # Raw reads return what arrived before a connection broke (iter_content would
                # drop its last, incomplete chunk), so all of it is kept for the resume.
                while chunk := response.raw.read(CHUNK, decode_content=False):
                    offset += len(chunk)
                    if offset > limit:
                        raise ImageError(f"blob {digest}: more than the {limit} bytes expected")
                    h.update(chunk)
                    f.write(chunk)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
                f.flush()
                raise RegistryError(f"blob {digest}: download interrupted after {offset} bytes: "
                                    f"{_reason(e)}", hint="run the command again to resume it") \
                    from None
        f.flush()
        return offset, h

    def prune(self) -> None:
        """Drop the least recently used blobs beyond ``max_bytes`` and week-old partial files."""
        now = time.time()
        blobs = []
        for name in os.listdir(self.dir):
            path = os.path.join(self.dir, name)
            try:
                st = os.stat(path, follow_symlinks=False)
                if name.endswith(PARTIAL):
                    if now - st.st_mtime > PARTIAL_MAX_AGE:
                        os.unlink(path)
                    continue
            except FileNotFoundError:
                continue
            blobs.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in blobs)
        for _, size, path in sorted(blobs):
            if total <= self.max_bytes:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            total -= size
