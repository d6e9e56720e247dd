"""Built-in plugin: fetch images from ``http://`` and ``https://`` URLs.

The image comes with its signature from the URL with ``.aci`` replaced by ``.aci.asc`` (or
``--signature``), through :func:`rkt_core.remote.fetch.fetch_remote` (resumable downloads, the
store's cached copy reused while it is fresh).
"""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..types import FetchedImage, Fetcher, FetchRequest

RKT_PLUGIN_API = 1


@hookimpl
def rkt_fetchers():
    """Declare the ``http`` fetcher (http and https URLs)."""
    return [Fetcher("http", ("http", "https"), fetch_http, "images from http:// and https:// URLs")]


def signature_url(url: str) -> str:
    """``.../x.aci`` -> ``.../x.aci.asc`` (the path's ``.aci`` suffix replaced; query kept)."""
    from urllib.parse import urlsplit, urlunsplit  # here: a run of a stored image needs neither

    parts = urlsplit(url)
    path = parts.path.removesuffix(".aci") + ".aci.asc"
    return urlunsplit(parts._replace(path=path))


def fetch_http(request: FetchRequest) -> FetchedImage:
    """Fetch the image at an http(s) URL with its signature."""
    from ..remote.fetch import fetch_remote

    return fetch_remote(request.context, request.ref, signature_url(request.ref),
                        signature_file=request.signature)
