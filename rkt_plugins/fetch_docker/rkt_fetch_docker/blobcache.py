"""The docker blob cache: ``<data dir>/cas/tmp/docker-blobs/``.

A layer or config blob is downloaded to ``<algorithm>-<hex>.partial`` with rkt's resumable
download primitive (``rkt_core.plugin_api.fetch.Transfer``), and renamed to
``<algorithm>-<hex>`` only once its size and digest are right; a blob that does not match is
deleted. An interrupted download keeps its ``.partial`` file and the next fetch resumes it with
a ``Range`` request (a blob is named by its content, so no validator is needed); if the resumed
whole does not match, the blob is downloaded again from the start, once. A cached blob is hashed
again each time it is used, so a damaged or tampered cache file is never trusted (it is deleted
and downloaded again).

Complete blobs stay after the fetch, so that other tags sharing layers do not download them
again; the least recently used go once the cache holds more than ``max_bytes``, and partial
files after a week. Everything here may be deleted at any time: it is only a cache.

Two fetches of the same blob at once take turns: the partial file is locked while it is written
(``open_partial``), so a file renamed or removed meanwhile is never written to.
"""

from __future__ import annotations

import fcntl
import os
import time
from typing import Any, BinaryIO, Callable

from rkt_core.plugin_api import ImageError
from rkt_core.plugin_api.fetch import CHUNK, TOO_LARGE, HttpError, Transfer, open_partial

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
             request: Callable[[dict[str, str]], Any]) -> BinaryIO:
        """The blob, open at offset 0, its digest (and ``size``, when known) checked; taken from
        the cache or downloaded with ``request(headers)``, which sends the blob's GET with these
        headers (a ``Range`` to resume) and returns the streamed response."""
        cached = self._open_cached(digest)
        if cached is not None:
            return cached
        partial = self.path(digest) + PARTIAL
        f = open_partial(partial)
        try:
            if os.path.exists(self.path(digest)):  # another fetch finished it meanwhile
                os.unlink(partial)  # the one this fetch just created after the rename
                f.close()
                return self.open(digest, size, request)
            try:
                self._download(f, digest, size, request)
            except (ImageError, HttpError) as e:
                if isinstance(e, ImageError) or e.status == TOO_LARGE:
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

    def _download(self, f: BinaryIO, digest: str, size: int | None,
                  request: Callable[[dict[str, str]], Any]) -> None:
        limit = MAX_UNSIZED_BLOB if size is None else size
        for attempt in (1, 2):
            if os.fstat(f.fileno()).st_size > limit:
                f.truncate(0)
            resumed_at = os.fstat(f.fileno()).st_size
            if size is None or resumed_at < size:
                resumed_at = self._receive(f, digest, limit, request)
            received, h = _hash_file(f, digest)
            if size is not None and received != size:
                raise ImageError(f"blob {digest}: {received} bytes received, its descriptor says "
                                 f"{size}")
            try:
                check(digest, h.hexdigest(), f"blob {digest}")
                return
            except DigestMismatch:
                if not resumed_at or attempt == 2:
                    raise
                self.log(f"docker: blob {digest} did not match after resuming at byte "
                         f"{resumed_at}; downloading it again")
                f.truncate(0)

    def _receive(self, f: BinaryIO, digest: str, limit: int,
                 request: Callable[[dict[str, str]], Any]) -> int:
        """Append what the registry sends to what ``f`` holds (all of it again if the registry
        does not continue it); returns the byte it resumed at (0: the whole blob)."""
        what = f"blob {digest}"
        with Transfer(f, request, what=what) as transfer:
            if transfer.start > 0:
                self.log(f"docker: resuming blob {digest} at byte {transfer.start}")
            if transfer.start >= 0:
                transfer.copy(limit)
                return transfer.start
        f.truncate(0)  # the registry refused the range (416) or did not continue the file
        with Transfer(f, request, what=what) as transfer:
            transfer.copy(limit)
        return 0

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
