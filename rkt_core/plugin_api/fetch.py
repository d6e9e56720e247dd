"""For fetchers: the records, the core's HTTP client and resumable download, and archive reading
within limits.

A fetcher's ``fetch(FetchRequest)`` returns a :class:`~rkt_core.types.FetchedImage`: an open,
seekable file (rkt verifies the signature on that very file and imports it) or ``store_key``
when the stored copy is current. ``request.context`` is the command's context
(:class:`~rkt_core.plugin_api.cli.PluginContext`).

- :class:`HttpClient` with :func:`http_options` (system CAs or ``REQUESTS_CA_BUNDLE``,
  ``--insecure-options``, ``auth.d`` credentials per host, every redirect checked) and
  :func:`download` (resumable, into ``cas/tmp``, an open file whose name is already gone);
- :class:`Limits` (:func:`image_limits` gives the configured ones), :func:`decompressed_reader`,
  :func:`detect_compression`, :func:`open_tar`, :func:`clean_name`: reading archives from
  untrusted sources without unbounded memory, disk or names that climb out (``TAR_ERRORS`` are
  what a malformed tar raises).
"""

from ..download import Downloaded, download, partial_name
from ..httpclient import HttpClient, HttpError, HttpOptions, ca_bundle, reason
from ..httpclient import options_for as http_options
from ..insecure import Insecure
from ..progress import Progress
from ..store import aci as _aci
from ..store.aci import (CHUNK, TAR_ERRORS, Limits, clean_name, decompressed_reader,
                         detect_compression, open_tar)
from ..types import FetchedImage, Fetcher, FetchRequest, RemoteInfo


def image_limits(ctx) -> Limits:
    """The archive :class:`Limits` the user configured (``limits.d``), for the command's
    context: apply them to every archive a fetcher decompresses or converts."""
    return _aci.image_limits(ctx.config)


__all__ = [
    "CHUNK", "Downloaded", "FetchRequest", "FetchedImage", "Fetcher", "HttpClient", "HttpError",
    "HttpOptions", "Insecure", "Limits", "Progress", "RemoteInfo", "TAR_ERRORS", "ca_bundle",
    "clean_name", "decompressed_reader", "detect_compression", "download", "http_options",
    "image_limits", "open_tar", "partial_name", "reason",
]
