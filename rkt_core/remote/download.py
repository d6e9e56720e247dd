"""Resumable downloads into a partial file, for any fetcher.

The primitive is :class:`Transfer`: one GET that continues a partial file opened (and locked)
with :func:`open_partial`. The file's size says where an earlier transfer stopped, so only the
rest is asked for (``Range: bytes=N-``, with ``If-Range`` when the caller holds a validator of
what the file has). A ``200`` answer starts the file over; a ``206`` is appended only if it
continues the file exactly (and, with ``If-Range``, is of the version the validator names);
any other answer is the caller's to handle. A transfer that breaks off keeps what arrived for
the next try. Whether the whole is right is the caller's to check: the docker blob cache checks
digests (its blobs are named by their content and need no validator).

:func:`download` fetches a URL that way: what arrived is kept in ``<partial>`` and the
validators of the resource (``ETag``, ``Last-Modified``) in ``<partial>.meta``. If the resource
changed meanwhile the server answers with all of it and the download starts over from zero; a
resource without a strong ETag or a Last-Modified date is never resumed (its partial file is
dropped). The finished file is returned open and its names unlinked: the caller reads
(verifies, imports) those very bytes and nothing is left behind.

Concurrent downloads of one partial file take turns: the file is locked (``flock``) while it is
written, and the path is checked again after locking, so a file renamed or removed meanwhile is
never written to.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from typing import Any, BinaryIO, Callable

from .httpclient import HttpClient, HttpError, reason
from ..records import dataclass
from ..sys.proc import prompt_signals

CHUNK = 64 * 1024
BROKEN = -1  # HttpError.status of a transfer that broke off (resumable)
TOO_LARGE = -2  # HttpError.status of a body larger than allowed
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)$")


def open_partial(path: str) -> BinaryIO:
    """The partial file ``path`` (created if missing, never through a symlink), open for
    reading and writing and locked; the lock is on the file that is still at ``path`` (a
    concurrent download may have finished and renamed or unlinked it meanwhile)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            st, own = os.stat(path, follow_symlinks=False), os.fstat(fd)
            if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):
                return os.fdopen(fd, "r+b")
        except FileNotFoundError:
            pass
        os.close(fd)


class Transfer:
    """One GET continuing the partial file ``f`` (see the module docstring); a context manager
    that holds the response.

    ``request(headers)`` sends the GET with these headers added and returns the streamed
    response. ``if_range``: a validator (ETag or date) of what ``f`` holds. Once made:
    ``status``, ``headers`` and ``url`` of the answer; ``start``, the byte the body continues
    the file from (0: the whole resource), or -1 when the answer does not continue it;
    ``total``, the size of the whole resource (0 if unknown).
    """

    def __init__(self, f: BinaryIO, request: Callable[[dict[str, str]], Any], *, what: str,
                 if_range: str = ""):
        self.f, self.what = f, what
        self.offset = os.fstat(f.fileno()).st_size
        headers = {"Accept-Encoding": "identity"}
        if self.offset:
            headers["Range"] = f"bytes={self.offset}-"
            if if_range:
                headers["If-Range"] = if_range
        self.response = request(headers)
        self.status = self.response.status_code
        self.headers = self.response.headers
        self.url = self.response.url
        self.start, self.total = self._continues(if_range if self.offset else "")

    def __enter__(self) -> "Transfer":
        return self

    def __exit__(self, *exc) -> None:
        self.response.close()

    def _continues(self, if_range: str) -> tuple[int, int]:
        if self.status == 200:
            length = self.headers.get("Content-Length", "")
            return 0, int(length) if length.isdigit() else 0
        match = _CONTENT_RANGE.match(self.headers.get("Content-Range", ""))
        if (self.status == 206 and self.offset and match and int(match.group(1)) == self.offset
                and self._same_version(if_range)):
            return self.offset, int(match.group(3)) if match.group(3) != "*" else 0
        return -1, 0

    def _same_version(self, if_range: str) -> bool:
        """Whether a 206 is of the version ``if_range`` names (a server may ignore If-Range)."""
        if not if_range:
            return True
        sent = self.headers.get("ETag" if if_range.startswith(('"', "W/")) else "Last-Modified")
        return not sent or sent == if_range

    def copy(self, limit: int, progress: Callable[[int, int], Any] | None = None) -> int:
        """Write the body into the file from ``start`` on; returns the file's new size. An answer
        that does not continue the file (``start`` -1) is an :class:`HttpError`.

        More than ``limit`` bytes in all raise :class:`HttpError` (status :data:`TOO_LARGE`); a
        transfer that breaks off raises it with status :data:`BROKEN`, what arrived written and
        flushed. ``progress(total, done)`` must return an object with ``update(n)`` and
        ``finish()``.
        """
        f, what, url = self.f, self.what, self.url
        if self.start < 0:
            raise HttpError(f"{what}: {url}: the answer (HTTP {self.status}) does not continue "
                            "the partial file", status=self.status)
        if self.total > limit:
            raise HttpError(f"{what}: {url} is larger than {limit} bytes ({self.total})",
                            status=TOO_LARGE)
        f.truncate(self.start)
        f.seek(self.start)
        bar = progress(self.total, self.start) if progress else None
        received = self.start
        try:
            # Reads return what arrived before a connection broke, so all of it is kept.
            with prompt_signals():
                while chunk := self.response.read(CHUNK):
                    if received + len(chunk) > limit:
                        raise HttpError(f"{what}: {url} is larger than {limit} bytes",
                                        status=TOO_LARGE)
                    f.write(chunk)
                    received += len(chunk)
                    if bar:
                        bar.update(len(chunk))
        except HttpError:
            raise
        except Exception as e:  # a body cut short, timeouts, resets
            f.flush()
            raise HttpError(f"{what}: the download of {url} broke off at byte {received}: "
                            f"{reason(e)}", hint="run the command again to resume it",
                            status=BROKEN) from None
        finally:
            if bar:
                bar.finish()
        f.flush()
        if self.total and received != self.total:
            raise HttpError(f"{what}: the download of {url} broke off at byte {received} of "
                            f"{self.total}", hint="run the command again to resume it",
                            status=BROKEN)
        return received


@dataclass
class Downloaded:
    """The result of :func:`download`: ``file`` (open at offset 0), or ``not_modified`` when the
    server answered 304 to ``If-None-Match``. ``resumed_at`` is the byte the transfer resumed
    from (0 for a whole transfer)."""

    file: BinaryIO | None
    not_modified: bool = False
    etag: str = ""
    last_modified: str = ""
    cache_control: str = ""
    size: int = 0
    resumed_at: int = 0
    url: str = ""


def max_age(cache_control: str) -> int:
    """Seconds a response may be reused without asking the server (``Cache-Control``):
    ``max-age=N``, 0 with ``no-cache``/``no-store`` or nothing."""
    directives = [d.strip().lower() for d in cache_control.split(",")]
    if "no-cache" in directives or "no-store" in directives:
        return 0
    for d in directives:
        name, _, value = d.partition("=")
        if name.strip() == "max-age" and value.strip().strip('"').isdigit():
            return int(value.strip().strip('"'))
    return 0


def partial_name(url: str) -> str:
    """A file name for the partial download of ``url``."""
    import hashlib

    return "download-" + hashlib.sha256(url.encode()).hexdigest()


def _validator(meta: dict) -> str:
    etag = meta.get("etag", "")
    if etag and not etag.startswith("W/"):
        return etag
    return meta.get("last_modified", "")


def _read_meta(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            meta = json.loads(f.read(64 * 1024))
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_meta(path: str, meta: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(meta, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _remove(*paths: str) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def download(client: HttpClient, url: str, partial: str, *, what: str = "image",
             if_none_match: str = "", limit: int = 1 << 40,
             progress: Callable[[int, int], object] | None = None) -> Downloaded:
    """Download ``url`` into ``partial``, resuming an earlier broken transfer of the same URL.

    ``client`` is an :class:`HttpClient` (anything with its ``request`` method will do).
    ``if_none_match``: an ETag the caller already has (a 304 gives ``not_modified``).
    ``limit``: the most bytes accepted. ``progress(total, done)`` is called once the size is
    known and must return an object with ``update(n)`` and ``finish()``. Errors raise
    :class:`HttpError`; a broken transfer keeps its partial file for the next call.
    """
    meta_path = partial + ".meta"
    f = open_partial(partial)
    try:
        for _attempt in range(3):
            result = _attempt_download(client, url, f, meta_path, what, if_none_match, limit,
                                       progress)
            if result is not None:
                break
        else:
            raise HttpError(f"{what}: {url}: the server keeps changing the file while it is "
                            "downloaded")
    except BaseException as e:
        # A transfer that broke off (or was interrupted: Ctrl-C) is kept if it can be resumed.
        broken = not isinstance(e, HttpError) or e.status == BROKEN
        if not (broken and os.path.exists(meta_path)):
            _remove(partial, meta_path)
        f.close()
        raise
    _remove(partial, meta_path)  # the open file (still locked) is all that is left
    if result.file is None:
        f.close()
    return result


def _attempt_download(client, url, f, meta_path, what, if_none_match, limit, progress):
    """One request; None means "start over" (the resource changed)."""
    meta = _read_meta(meta_path)
    validator = _validator(meta)
    if os.fstat(f.fileno()).st_size and (meta.get("url") != url or not validator):
        f.truncate(0)
    extra = {"If-None-Match": if_none_match} if if_none_match else {}
    with Transfer(f, lambda headers: client.request("GET", url, {**headers, **extra}, what),
                  what=what, if_range=validator) as transfer:
        etag = transfer.headers.get("ETag", "")
        last_modified = transfer.headers.get("Last-Modified", "")
        cache_control = transfer.headers.get("Cache-Control", "")
        if transfer.status == 304 and if_none_match:
            return Downloaded(None, True, etag or if_none_match, last_modified, cache_control,
                              url=transfer.url)
        if transfer.start < 0:
            if transfer.offset and transfer.status in (206, 416):
                f.truncate(0)  # not the rest of what the file holds: start over
                _remove(meta_path)
                return None
            raise HttpError(f"{what}: {url}: bad HTTP status code: {transfer.status}",
                            status=transfer.status)
        new_meta = {"url": url, "etag": etag, "last_modified": last_modified}
        if _validator(new_meta):
            _write_meta(meta_path, new_meta)
        else:
            _remove(meta_path)
        size = transfer.copy(limit, progress)
    os.fsync(f.fileno())
    f.seek(0)
    return Downloaded(f, False, etag, last_modified, cache_control, size, transfer.start,
                      transfer.url)
