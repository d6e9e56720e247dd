"""Built-in plugin: fetch images from ``http://`` and ``https://`` URLs.

The image is downloaded with :func:`rkt_core.download.download` (resumable, into ``cas/tmp``),
then its signature from the URL with ``.aci`` replaced by ``.aci.asc`` (or ``--signature``). A
server may answer 202 for the signature while it makes one: it is asked again a few times,
waiting as its ``Retry-After`` says (at most 5 s). With ``--insecure-options=image`` no signature
is fetched. What the store learned from an earlier download is reused: within the
``Cache-Control: max-age`` nothing is asked at all, later a ``304 Not Modified`` to the saved
ETag keeps the stored image. :func:`fetch_remote` is also what the appc name fetcher uses once
discovery found the URLs.
"""

from __future__ import annotations

import io
import os
import time
from urllib.parse import urlsplit, urlunsplit

from ..errors import NotFoundError, RktError
from ..hookspecs import hookimpl
from ..insecure import Insecure
from ..types import FetchedImage, Fetcher, FetchRequest, RemoteInfo

RKT_PLUGIN_API = 1

MAX_SIGNATURE_BYTES = 1 << 20
MAX_IMAGE_BYTES = 64 << 30
SIGNATURE_RETRIES = 5
MAX_RETRY_WAIT = 5.0


@hookimpl
def rkt_fetchers():
    """Declare the ``http`` fetcher (http and https URLs)."""
    return [Fetcher("http", ("http", "https"), fetch_http, "images from http:// and https:// URLs")]


def signature_url(url: str) -> str:
    """``.../x.aci`` -> ``.../x.aci.asc`` (the path's ``.aci`` suffix replaced; query kept)."""
    parts = urlsplit(url)
    path = parts.path.removesuffix(".aci") + ".aci.asc"
    return urlunsplit(parts._replace(path=path))


def fetch_http(request: FetchRequest) -> FetchedImage:
    """Fetch the image at an http(s) URL with its signature."""
    return fetch_remote(request.context, request.ref, signature_url(request.ref),
                        signature_file=request.signature)


def _open_signature(path: str):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise NotFoundError(f"open {path}: no such file or directory") from None
    except OSError as e:
        raise RktError(f"open {path}: {e.strerror}") from None


def _progress(label: str):
    from ..progress import Progress

    return lambda total, done: Progress(label, total, done)


def _get_signature(ctx, client, url: str) -> tuple[bytes | None, float]:
    """The signature at ``url``, or None and the time to wait when the server answered 202
    (not ready yet)."""
    from ..httpclient import HttpError

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
    from ..download import download, max_age, partial_name
    from ..httpclient import HttpClient, options_for

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
    from ..httpclient import HttpError

    for _ in range(SIGNATURE_RETRIES):
        time.sleep(wait)
        body, wait = _get_signature(ctx, client, url)
        if body is not None:
            return body
    raise HttpError(f"error downloading the signature file {url}: the server asked to defer "
                    f"the download {SIGNATURE_RETRIES + 1} times")
