"""For fetchers: the records, the core's HTTP client and resumable download, and archive reading
within limits.

A fetcher's ``fetch(FetchRequest)`` returns a :class:`~rkt_core.types.FetchedImage`: an open,
seekable file (rkt verifies the signature on that very file and imports it) or ``store_key``
when the stored copy is current. ``request.context`` is the command's context
(:class:`~rkt_core.plugin_api.cli.PluginContext`).

- :class:`HttpClient` with :func:`http_options` (system CAs or ``REQUESTS_CA_BUNDLE``/
  ``SSL_CERT_FILE``, ``--insecure-options``, ``auth.d`` credentials per host, every redirect
  checked, a caller's ``Authorization`` only to its own host) and :func:`read_body` (a whole
  body, capped);
- resumable downloads: :func:`download` (a URL, into ``cas/tmp``, an open file whose name is
  already gone), or, for content checked by the fetcher itself (a digest), the primitive under
  it: :func:`open_partial` and :class:`Transfer` (one request continuing a partial file;
  ``HttpError.status`` is :data:`BROKEN` when it broke off, :data:`TOO_LARGE` when over the
  limit);
- :class:`Limits` (:func:`image_limits` gives the configured ones), :func:`decompressed_reader`,
  :func:`detect_compression`, :func:`open_tar`, :func:`clean_name`: reading archives from
  untrusted sources without unbounded memory, disk or names that climb out (``TAR_ERRORS`` are
  what a malformed tar raises).
"""

from ..insecure import Insecure
from ..remote.download import (BROKEN, TOO_LARGE, Downloaded, Transfer, download, open_partial,
                               partial_name)
from ..remote.httpclient import HttpClient, HttpError, HttpOptions, ca_bundle, read_body, reason
from ..remote.httpclient import options_for as http_options
from ..remote.progress import Progress
from ..store import aci as _aci
from ..store.aci import (CHUNK, TAR_ERRORS, Limits, clean_name, decompressed_reader,
                         detect_compression, open_tar)
from ..types import FetchedImage, Fetcher, FetchRequest, RemoteInfo


def image_limits(ctx) -> Limits:
    """The archive :class:`Limits` the user configured (``limits.d``), for the command's
    context: apply them to every archive a fetcher decompresses or converts."""
    return _aci.image_limits(ctx.config)


__all__ = [
    "BROKEN", "CHUNK", "Downloaded", "FetchRequest", "FetchedImage", "Fetcher", "HttpClient",
    "HttpError", "HttpOptions", "Insecure", "Limits", "Progress", "RemoteInfo", "TAR_ERRORS",
    "TOO_LARGE", "Transfer", "ca_bundle", "clean_name", "decompressed_reader",
    "detect_compression", "download", "http_options", "image_limits", "open_partial", "open_tar",
    "partial_name", "read_body", "reason",
]
