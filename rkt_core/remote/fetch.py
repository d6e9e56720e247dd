"""Fetching an image and its signature from http(s) URLs: what the built-in ``http`` fetcher
does with a URL, and the ``appc`` fetcher once discovery found the URLs of a name.

The image is downloaded with :func:`.download.download` (resumable, into ``cas/tmp``), then its
signature (or the ``--signature`` file). A server may answer 202 for the signature while it
makes one: it is asked again a few times, waiting as its ``Retry-After`` says (at most 5 s).
With ``--insecure-options=image`` no signature is fetched. What the store learned from an
earlier download is reused: within the ``Cache-Control: max-age`` nothing is asked at all,
later a ``304 Not Modified`` to the saved ETag keeps the stored image.
"""

from __future__ import annotations

import io
import os
import time

from ..errors import NotFoundError, RktError
from ..insecure import Insecure
from ..types import FetchedImage, RemoteInfo
from .download import download, max_age, partial_name
from .httpclient import HttpClient, HttpError, options_for
from .progress import Progress

MAX_SIGNATURE_BYTES = 1 << 20
MAX_IMAGE_BYTES = 64 << 30
SIGNATURE_RETRIES = 5
MAX_RETRY_WAIT = 5.0


def _open_signature(path: str):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise NotFoundError(f"open {path}: no such file or directory") from None
    except OSError as e:
        raise RktError(f"open {path}: {e.strerror}") from None


def _progress(label: str):
    return lambda total, done: Progress(label, total, done)


def _get_signature(ctx, client, url: str) -> tuple[bytes | None, float]:
    """The signature at ``url``, or None and the time to wait when the server answered 202
    (not ready yet)."""
    ctx.log(f"image: downloading signature from {url}")
    status, body, headers = client.get_small(url, MAX_SIGNATURE_BYTES, "signature")
    if status == 202:
        return None, _retry_wait(headers.get("Retry-After", "1"))
    if status != 200:
        raise HttpError(f"error downloading the signature file {url}: bad HTTP status code: "
                        f"{status}", status=status,
                        hint="--insecure-options=image skips signature verification")
    return body, 0.0


def _retry_wait(value: str) -> float:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_WAIT)
    except ValueError:
        return 1.0


def fetch_remote(ctx, aci_url: str, asc_url: str, *, signature_file: str | None = None,
                 expected_name: str | None = None,
                 expected_labels: dict[str, str] | None = None) -> FetchedImage:
    """Download ``aci_url`` (and its signature) unless the store's copy is still good."""
    store = ctx.store
    stored = store.get_remote(aci_url)
    if stored is not None:
        info, key, downloaded_at = stored
        if info.cache_max_age and time.time() < downloaded_at + info.cache_max_age:
            ctx.log(f"image: {aci_url} is cached for {info.cache_max_age}s; not fetching it")
            return FetchedImage(store_key=key)
    if ctx.insecure_for(Insecure.TLS):
        ctx.warn_once("warning: TLS verification has been disabled")
    need_signature = not ctx.insecure_for(Insecure.IMAGE)
    signature = _open_signature(signature_file) if signature_file else None
    aci = None
    try:
        with HttpClient(options_for(ctx)) as client:
            ctx.log(f"image: downloading {aci_url}")
            result = download(client, aci_url,
                              os.path.join(store.tmp_dir, partial_name(aci_url)), what="image",
                              if_none_match=stored[0].etag if stored else "",
                              limit=MAX_IMAGE_BYTES, progress=_progress("Downloading ACI"))
            aci = result.file
            if result.resumed_at:
                ctx.log(f"image: resumed the download of {aci_url} at byte {result.resumed_at}")
            remote = RemoteInfo(aci_url, asc_url, result.etag, max_age(result.cache_control))
            if result.not_modified:
                ctx.log(f"image: {aci_url} is not modified; using the stored image")
                store.save_remote(remote, stored[1])
                if signature is not None:
                    signature.close()
                return FetchedImage(store_key=stored[1])
            if signature is None and need_signature:
                body, wait = _get_signature(ctx, client, asc_url)
                if body is None:
                    ctx.log("image: the server asked to defer the signature download")
                    body = _get_deferred_signature(ctx, client, asc_url, wait)
                signature = io.BytesIO(body)
    except BaseException:
        for f in (aci, signature):
            if f is not None:
                f.close()
        raise
    return FetchedImage(aci=aci, signature=signature, remote=remote,
                        expected_name=expected_name, expected_labels=dict(expected_labels or {}))


def _get_deferred_signature(ctx, client, url: str, wait: float) -> bytes:
    """Ask again for a signature the server deferred (202), a few times."""
    for _ in range(SIGNATURE_RETRIES):
        time.sleep(wait)
        body, wait = _get_signature(ctx, client, url)
        if body is not None:
            return body
    raise HttpError(f"error downloading the signature file {url}: the server asked to defer "
                    f"the download {SIGNATURE_RETRIES + 1} times")
