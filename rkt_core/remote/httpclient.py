"""HTTP(S) for fetching, on ``http.client``: TLS checked against the system CAs, redirects
followed by hand, per-host credentials from ``auth.d``, connections kept alive.

Redirects are followed here, so that every hop is checked:

- at most :data:`MAX_REDIRECTS` hops, and a URL seen twice is a loop;
- a hop from https to plain http is refused unless ``--insecure-options=http``;
- credentials configured for a host go only to that host (``host`` or ``host:port``), only over
  https, and never again once the chain went through plain http;
- an ``Authorization`` header the caller gives (a registry's token) goes only to the scheme,
  host and port of the URL it was given for, never to a host a redirect leads to.

Bodies read whole are capped (:func:`read_body`); large ones are streamed into files by
:mod:`.download`. Bodies are taken as sent (``Accept-Encoding: identity``, nothing decoded).
A body that ends before its ``Content-Length`` or its last chunk is an error once the bytes
that arrived were read. A connection whose response was read to the end serves the next
request to the same scheme, host and port (a registry fetch makes many); one the server closed
meanwhile is replaced.

Certificates are checked against ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` when set (the
tests point these at the CA they made), else against the system's CAs: its hashed directory
(``/etc/ssl/certs``, or ``SSL_CERT_DIR``) when it has one, which OpenSSL reads on demand, else
its bundle file (``/etc/ssl/certs/ca-certificates.crt``). Host names are checked and sent
(SNI). ``--insecure-options=tls`` checks nothing. Proxies come from the environment
(:mod:`.proxies`); ``~/.netrc`` is never read.
"""

from __future__ import annotations

import http.client
import os
import select
import ssl
from collections.abc import Mapping
from typing import Any, Callable, Iterator
from urllib.parse import quote, urljoin, urlsplit

from .. import __version__
from ..errors import RktError
from ..records import dataclass, field
from ..sys.proc import prompt_signals
from .proxies import proxy_for

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


def reason(error: BaseException) -> str:
    """A short readable cause of a connection, TLS or protocol error."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    return str(error) or type(error).__name__


# What a failed request or body read raises: socket and TLS errors (OSError), broken HTTP
# (HTTPException), bad host names or header values (ValueError, UnicodeError included).
NETWORK_ERRORS = (OSError, http.client.HTTPException, ValueError)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def read_body(response: Any, limit: int, what: str) -> bytes:
    """The whole body of a streamed ``response``, refusing more than ``limit`` bytes."""
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
    except NETWORK_ERRORS as e:
        raise HttpError(f"{what}: reading {response.url}: {reason(e)}") from None
    return bytes(body)


class Headers(Mapping):
    """Response headers by name, any case; a header sent more than once has its values joined
    with ", "."""

    def __init__(self, message: http.client.HTTPMessage):
        self._fields: dict[str, tuple[str, str]] = {}  # lower-case name -> (name, value)
        for name, value in message.items():
            key = name.lower()
            if key in self._fields:
                name, value = self._fields[key][0], f"{self._fields[key][1]}, {value}"
            self._fields[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)


class Response:
    """A streamed response: ``status_code``, ``headers``, ``url`` (of the last hop); read its
    body with :meth:`read` or :meth:`iter_content`, then :meth:`close` it (or use it as a
    context manager), which hands its connection back for the next request when the body was
    read to the end (to ``keep``).

    Made once a request was sent on ``connection``: waits for the status line and headers.
    """

    def __init__(self, connection: http.client.HTTPConnection,
                 keep: Callable[[http.client.HTTPConnection], None], url: str):
        self._connection, self._keep = connection, keep
        self._response = response = connection.getresponse()
        self.status_code = response.status
        self.headers = Headers(response.msg)
        self.url = url

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the body as they arrive, b"" at its end; a body cut short
        raises ``http.client.IncompleteRead`` once what arrived was returned."""
        data = self._response.read1(size)
        if not data and size and self._response.length:
            raise http.client.IncompleteRead(b"", self._response.length)
        return data

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        """The body in pieces of at most ``chunk_size`` bytes."""
        while chunk := self.read(chunk_size):
            yield chunk

    def _complete(self) -> bool:
        """Whether the body was read to its end and the server keeps the connection open."""
        response = self._response
        if response.will_close:
            return False
        if response.chunked:
            return response.fp is None  # the last chunk was read
        return response.length == 0

    def close(self) -> None:
        """Release the connection: kept for the next request if the body was read to its end,
        else closed."""
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        complete = self._complete()
        self._response.close()
        if complete:
            self._keep(connection)
        else:
            connection.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle kept-alive connection was closed by the server (or has bytes no request
    asked for)."""
    sock = connection.sock
    return sock is None or bool(select.select([sock], [], [], 0)[0])


def _target(parts) -> str:
    """The request target of a URL: its path and query, quoted where they must be."""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return quote(target, safe="!#$%&'()*+,/:;=?@[]~")


def _ascii_host(host: str) -> str:
    return host if host.isascii() else host.encode("idna").decode("ascii")


class HttpClient:
    """HTTP(S) requests with rkt's policy, connections kept per scheme, host and port; use as
    a context manager or call :meth:`close`."""

    def __init__(self, options: HttpOptions):
        self.options = options
        self.user_agent = f"rkt-python/{__version__}"
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[tuple, list[http.client.HTTPConnection]] = {}

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the idle connections (responses still open close theirs)."""
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _auth_headers(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        auth = self.options.auth.get(parts.netloc) or self.options.auth.get(parts.hostname or "")
        return auth.headers() if auth is not None else {}

    def _tls_context(self) -> ssl.SSLContext:
        """The TLS settings of every https connection, made on first use."""
        if self._tls is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.set_alpn_protocols(["http/1.1"])
            if not self.options.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                where = ca_bundle()
                try:
                    if where is True:
                        context.load_default_certs()
                    elif os.path.isdir(where):
                        context.load_verify_locations(capath=where)
                    else:
                        context.load_verify_locations(cafile=where)
                except (OSError, ssl.SSLError) as e:
                    raise HttpError(f"cannot read the CA certificates {where}: {reason(e)}",
                                    hint="check REQUESTS_CA_BUNDLE or SSL_CERT_FILE") from None
            self._tls = context
        return self._tls

    def _connect(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        """A new connection to ``host``, through the proxy of the environment if any."""
        proxy = proxy_for(scheme, host, port)
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                proxy.host if proxy else host, proxy.port if proxy else port,
                timeout=CONNECT_TIMEOUT, context=self._tls_context())
            if proxy:
                connection.set_tunnel(host, port, headers=proxy.headers)
        else:
            connection = http.client.HTTPConnection(
                proxy.host if proxy else host, proxy.port if proxy else port,
                timeout=CONNECT_TIMEOUT)
        connection.connect()
        connection.sock.settimeout(READ_TIMEOUT)
        return connection

    def _send(self, method: str, url: str, headers: dict[str, str]) -> Response:
        """One request (no redirects), on a kept-alive connection when there is one: if that
        turns out closed by the server, once more on a new connection."""
        parts = urlsplit(url)
        if not parts.hostname:
            raise http.client.InvalidURL(f"no host in {url}")
        host = _ascii_host(parts.hostname)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, host, port)
        target = _target(parts)
        headers = {"User-Agent": self.user_agent, "Accept": "*/*", **headers}
        if parts.scheme == "http":
            proxy = proxy_for("http", host, port)
            if proxy:  # the proxy is told the whole URL
                target = f"http://{parts.netloc}{target}"
                headers.update(proxy.headers)
        idle = self._idle.setdefault(key, [])
        while True:
            reused = bool(idle)
            connection = idle.pop() if reused else self._connect(*key)
            if reused and _dropped(connection):
                connection.close()
                continue
            try:
                connection.request(method, target, headers=headers)
                return Response(connection, idle.append, url)
            except ConnectionError:
                connection.close()
                if not reused:
                    raise
            except BaseException:
                connection.close()
                raise

    def request(self, method: str, url: str, headers: dict[str, str] | None = None,
                what: str = "") -> Response:
        """Send a request, following redirects by the rules above; returns the streamed final
        response (the caller closes it). Connection and TLS failures raise :class:`HttpError`."""
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
                    response = self._send(method, current, hop_headers)
            except ssl.SSLError as e:
                untrusted = isinstance(e, ssl.SSLCertVerificationError)
                raise HttpError(f"{what}: TLS error talking to {urlsplit(current).netloc}: "
                                f"{reason(e)}",
                                hint=("if you trust this server, skip TLS verification with "
                                      "--insecure-options=tls") if untrusted else None) from None
            except NETWORK_ERRORS as e:
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
