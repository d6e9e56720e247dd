"""HTTP(S) for fetching: TLS checked against the system CAs, redirects followed by hand, per-host
credentials from ``auth.d``.

``requests`` is imported only when a client is made, so commands that never touch the network
never load it. Redirects are followed here rather than by requests, so that every hop is checked:

- at most :data:`MAX_REDIRECTS` hops, and a URL seen twice is a loop;
- a hop from https to plain http is refused unless ``--insecure-options=http``;
- credentials configured for a host go only to that host (``host`` or ``host:port``), only over
  https, and never again once the chain went through plain http;
- an ``Authorization`` header the caller gives (a registry's token) goes only to the scheme,
  host and port of the URL it was given for, never to a host a redirect leads to.

Bodies read whole are capped (:func:`read_body`); large ones are streamed into files by
:mod:`.download`.

Certificates are checked against ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` when set (the
tests point these at the CA they made), else against the system's CAs, not requests' own copy of
Mozilla's: its hashed directory (``/etc/ssl/certs``, or ``SSL_CERT_DIR``) when it has one, which
OpenSSL reads on demand, else its bundle file (``/etc/ssl/certs/ca-certificates.crt``).
``~/.netrc`` is never read. ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` are honoured.
"""

from __future__ import annotations

import os
import ssl
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit

from .. import __version__
from ..errors import RktError
from ..records import dataclass, field
from ..sys.proc import prompt_signals

MAX_REDIRECTS = 10
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
_REDIRECTS = (301, 302, 303, 307, 308)


class HttpError(RktError):
    """A request failed: connection, TLS, status, size or redirect policy."""

    def __init__(self, message: str, hint: str | None = None, status: int = 0):
        super().__init__(message, hint)
        self.status = status


@dataclass
class HttpOptions:
    """How a client may talk to servers.

    ``allow_http``: follow redirects to plain http and use http for discovery
    (``--insecure-options=http``). ``verify_tls``: False skips certificate checks
    (``--insecure-options=tls``). ``auth``: ``rkt_core.config.Auth`` per host.
    """

    allow_http: bool = False
    verify_tls: bool = True
    auth: dict[str, Any] = field(default_factory=dict)
    max_redirects: int = MAX_REDIRECTS
    log: Callable[[str], None] = lambda message: None


def options_for(ctx, *, allow_http: bool | None = None, verify_tls: bool | None = None) -> HttpOptions:
    """The client options of a command's context (its insecure flags and ``auth.d``)."""
    from ..insecure import Insecure

    return HttpOptions(
        allow_http=ctx.insecure_for(Insecure.HTTP) if allow_http is None else allow_http,
        verify_tls=not ctx.insecure_for(Insecure.TLS) if verify_tls is None else verify_tls,
        auth=dict(ctx.config.auth), log=ctx.log)


def ca_bundle() -> str | bool:
    """What to check server certificates against (see the module docstring)."""
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(var):
            return os.environ[var]
    paths = ssl.get_default_verify_paths()
    if paths.capath and _is_hashed_dir(paths.capath):
        return paths.capath
    if paths.cafile and os.path.exists(paths.cafile):
        return paths.cafile
    return True


def _is_hashed_dir(path: str) -> bool:
    """Whether ``path`` is a directory of CA certificates named by their subject hash
    (``5ad8a5d6.0``, made by ``update-ca-certificates``), where OpenSSL reads only the
    certificates a handshake needs: the bundle file is parsed whole for every connection, which
    cost a quarter of a ``docker://`` fetch (its https probe included)."""
    try:
        with os.scandir(path) as entries:
            return any(len(e.name) == 10 and e.name.endswith(".0") for e in entries)
    except OSError:
        return False


def _innermost(error: BaseException) -> BaseException:
    """The innermost cause of a requests/urllib3 exception."""
    seen = set()
    while True:
        inner = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
        inner = inner or getattr(error, "reason", None) or error.__cause__ or error.__context__
        if not isinstance(inner, BaseException) or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


def reason(error: BaseException) -> str:
    """The innermost readable cause of a requests/urllib3 exception."""
    error = _innermost(error)
    text = str(error)
    if isinstance(error, ssl.SSLCertVerificationError):
        text = f"certificate verify failed: {error.verify_message}"
    return text or type(error).__name__


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def read_body(response: Any, limit: int, what: str) -> bytes:
    """The whole body of a streamed ``response``, refusing more than ``limit`` bytes."""
    import requests

    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HttpError(f"{what}: {response.url} is larger than {limit} bytes")
    body = bytearray()
    try:
        with prompt_signals():
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise HttpError(f"{what}: {response.url} is larger than {limit} bytes")
    except requests.RequestException as e:
        raise HttpError(f"{what}: reading {response.url}: {reason(e)}") from None
    return bytes(body)


def _no_netrc(request):
    """A no-op requests auth: with one set, requests never reads ``~/.netrc``."""
    return request


class HttpClient:
    """A requests session with rkt's policy; use as a context manager or call :meth:`close`."""

    def __init__(self, options: HttpOptions):
        import requests

        self.options = options
        self.session = requests.Session()
        self.session.auth = _no_netrc
        self.session.headers["User-Agent"] = f"rkt-python/{__version__}"
        self.verify = ca_bundle() if options.verify_tls else False
        if not options.verify_tls:  # the user asked for it: no warning per request
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.session.close()

    def _auth_headers(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        auth = self.options.auth.get(parts.netloc) or self.options.auth.get(parts.hostname or "")
        return auth.headers() if auth is not None else {}

    def request(self, method: str, url: str, headers: dict[str, str] | None = None,
                what: str = "") -> Any:
        """Send a request, following redirects by the rules above; returns the streamed final
        response (the caller closes it). Connection and TLS failures raise :class:`HttpError`."""
        import requests

        what = what or url
        origin = _origin(url)
        seen: list[str] = []
        downgraded = False
        current = url
        while True:
            scheme = urlsplit(current).scheme
            if scheme not in ("http", "https"):
                raise HttpError(f"{what}: unsupported URL scheme in {current}")
            if seen and scheme == "http" and urlsplit(seen[-1]).scheme == "https":
                if not self.options.allow_http:
                    raise HttpError(f"{what}: refusing the redirect from https to plain http "
                                    f"({current})",
                                    hint="allow it with --insecure-options=http")
            downgraded = downgraded or scheme == "http"
            hop_headers = {k: v for k, v in (headers or {}).items()
                           if k.lower() != "authorization" or _origin(current) == origin}
            if scheme == "https" and not downgraded:
                hop_headers.update(self._auth_headers(current))
            self.options.log(f"http: {method} {current}")
            try:
                with prompt_signals():
                    response = self.session.request(
                        method, current, headers=hop_headers, stream=True,
                        allow_redirects=False, verify=self.verify,
                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            except requests.exceptions.SSLError as e:
                untrusted = isinstance(_innermost(e), ssl.SSLCertVerificationError)
                raise HttpError(f"{what}: TLS error talking to {urlsplit(current).netloc}: "
                                f"{reason(e)}",
                                hint=("if you trust this server, skip TLS verification with "
                                      "--insecure-options=tls") if untrusted else None) from None
            except requests.RequestException as e:
                raise HttpError(f"{what}: {reason(e)}") from None
            if response.status_code not in _REDIRECTS or "Location" not in response.headers:
                return response
            location = urljoin(current, response.headers["Location"])
            response.close()
            seen.append(current)
            if location in seen:
                raise HttpError(f"{what}: redirect loop at {location}")
            if len(seen) > self.options.max_redirects:
                raise HttpError(f"{what}: too many redirects (more than "
                                f"{self.options.max_redirects})")
            if response.status_code == 303 and method != "HEAD":
                method = "GET"
            current = location

    def get_small(self, url: str, limit: int, what: str,
                  headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
        """GET a small document (a discovery page, a key, a signature) whole, refusing more than
        ``limit`` bytes: (status, body, response headers)."""
        with self.request("GET", url, headers, what) as response:
            return response.status_code, read_body(response, limit, what), response.headers
