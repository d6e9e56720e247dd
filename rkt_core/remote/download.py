"""Resumable downloads into a partial file, for any fetcher.

:func:`download` keeps what arrived in ``<partial>`` and the validators of the resource
(``ETag``, ``Last-Modified``) in ``<partial>.meta``. When a transfer breaks, the next call asks
only for the missing bytes (``Range: bytes=N-`` with ``If-Range``); if the resource changed
meanwhile the server answers with all of it and the download starts over from zero. A resource
without a strong ETag or a Last-Modified date is never resumed (its partial file is dropped).
The finished file is returned open and its names unlinked: the caller reads (verifies, imports)
those very bytes and nothing is left behind. Concurrent downloads of one partial file are
serialised with ``flock``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import dataclass
from typing import BinaryIO, Callable

from .httpclient import HttpClient, HttpError, reason

CHUNK = 64 * 1024
BROKEN = -1  # HttpError.status of a transfer that broke off (resumable)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)$")


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


def _open_locked(path: str) -> BinaryIO:
    """Open (creating) and lock the partial file, making sure the lock is on the file that is
    still at ``path`` (a concurrent download may have finished and unlinked it)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return os.fdopen(fd, "r+b")
        os.close(fd)


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
    f = _open_locked(partial)
    try:
        for _attempt in range(3):
            result = _transfer(client, url, f, meta_path, what, if_none_match, limit, progress)
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


def _transfer(client, url, f, meta_path, what, if_none_match, limit, progress):
    """One request; None means "start over" (the resource changed)."""
    meta = _read_meta(meta_path)
    offset = os.fstat(f.fileno()).st_size
    validator = _validator(meta)
    if offset and (meta.get("url") != url or not validator):
        f.truncate(0)
        offset = 0
    headers = {"Accept-Encoding": "identity"}
    if if_none_match:
        headers["If-None-Match"] = if_none_match
    if offset:
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = validator
    response = client.request("GET", url, headers, what)
    with response:
        status = response.status_code
        etag = response.headers.get("ETag", "")
        last_modified = response.headers.get("Last-Modified", "")
        if status == 304 and if_none_match:
            return Downloaded(None, True, etag or if_none_match, last_modified,
                              response.headers.get("Cache-Control", ""), url=response.url)
        if status == 416 and offset:
            f.truncate(0)
            _remove(meta_path)
            return None
        if status == 206 and offset:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            same = (not etag or etag == meta.get("etag")) and \
                   (not last_modified or not meta.get("last_modified")
                    or last_modified == meta.get("last_modified"))
            if not match or int(match.group(1)) != offset or not same:
                f.truncate(0)
                _remove(meta_path)
                return None
            total = int(match.group(3)) if match.group(3) != "*" else 0
            start = offset
        elif status == 200:
            f.truncate(0)
            start = 0
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else 0
        else:
            raise HttpError(f"{what}: {url}: bad HTTP status code: {status}", status=status)
        if total > limit:
            raise HttpError(f"{what}: {url} is larger than {limit} bytes ({total})")
        new_meta = {"url": url, "etag": etag, "last_modified": last_modified}
        if _validator(new_meta):
            _write_meta(meta_path, new_meta)
        else:
            _remove(meta_path)
        f.seek(start)
        bar = progress(total, start) if progress else None
        received = start
        try:
            for chunk in response.raw.stream(CHUNK, decode_content=False):
                received += len(chunk)
                if received > limit:
                    raise HttpError(f"{what}: {url} is larger than {limit} bytes")
                f.write(chunk)
                if bar:
                    bar.update(len(chunk))
        except HttpError:
            raise
        except Exception as e:  # urllib3 ProtocolError, timeouts, resets
            f.flush()
            raise HttpError(f"{what}: the download of {url} broke off at byte {received}: "
                            f"{reason(e)}", hint="run the command again to resume it",
                            status=BROKEN) from None
        finally:
            if bar:
                bar.finish()
        f.flush()
        if total and received != total:
            raise HttpError(f"{what}: the download of {url} broke off at byte {received} of "
                            f"{total}", hint="run the command again to resume it", status=BROKEN)
        os.fsync(f.fileno())
        f.seek(0)
        return Downloaded(f, False, etag, last_modified, response.headers.get("Cache-Control", ""),
                          received, start, response.url)
