"""A loopback HTTP(S) server for tests of remote fetching, with a CA made on the spot.

Public helper for rkt's own tests and for plugin authors::

    from rkt_core.testing.httpserver import TestCA, TestServer

    ca = TestCA(tmp_path)                       # ca.pem to trust (REQUESTS_CA_BUNDLE)
    with TestServer(ca=ca, names=["example.com"]) as srv:
        srv.add("/hello.aci", data, etag='"v1"')
        srv.url("/hello.aci")                   # https://127.0.0.1:<port>/hello.aci

Each route can require basic or bearer auth, redirect, answer 202 a few times first, drop the
connection after some bytes (once), stall after some bytes until the test lets it go on (once),
honour ``Range``/``If-Range``/``If-None-Match``. The server counts the body bytes it sent per
path and records every request's headers. It runs in a thread of the test process;
:meth:`TestServer.close` stops it and closes its socket.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path


class TestCA:
    """A throwaway certificate authority; ``ca_path`` is its PEM certificate."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: str | Path):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._x509, self._hashes, self._ser, self._ec = x509, hashes, serialization, ec
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rkt test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=7))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_path = self.directory / "ca.pem"
        self.ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._issued = 0

    def issue(self, names: list[str]) -> tuple[Path, Path]:
        """A server certificate for DNS names and IP addresses: (cert path, key path)."""
        x509, ser = self._x509, self._ser
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = self._ec.generate_private_key(self._ec.SECP256R1())
        alt = []
        for n in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=7))
                .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(self.key, self._hashes.SHA256()))
        self._issued += 1
        cert_path = self.directory / f"server{self._issued}.pem"
        key_path = self.directory / f"server{self._issued}.key"
        cert_path.write_bytes(cert.public_bytes(ser.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                               ser.NoEncryption()))
        return cert_path, key_path


@dataclass
class Route:
    """What the server answers for one path (see :meth:`TestServer.add`)."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    last_modified: str = ""
    basic: tuple[str, str] | None = None
    bearer: str = ""
    redirect: str = ""
    accepted: int = 0          # answer 202 this many times first
    drop_after: int = -1       # send this many body bytes, then cut the connection (once)
    ranges: bool = True        # honour Range requests
    if_range: bool = True      # honour If-Range (False: serve the range whatever the validator)
    stall_after: int = -1      # send this many body bytes, then wait for go_on() (once)
    _go_on: threading.Event = field(default_factory=threading.Event, repr=False)

    def go_on(self) -> None:
        """Let a response stalled by ``stall_after`` send the rest of its body."""
        self._go_on.set()

    def stalled(self) -> None:
        """Wait (in the server) until :meth:`go_on` is called."""
        self._go_on.wait()


@dataclass
class Seen:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"", head=False,
              route: Route | None = None) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head or not body:
            return
        if route is not None and 0 <= route.stall_after < len(body):
            cut, route.stall_after = route.stall_after, -1
            if not self._write(body[:cut]):
                return
            route.stalled()
            body = body[cut:]
        self._write(body)

    def _write(self, data: bytes) -> bool:
        """Send part of a body; False if the client went away."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return False
        self.server.owner._count(self.path, len(data))
        return True

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        path = self.path
        owner._record(Seen(self.command, path, dict(self.headers.items())))
        route = owner.routes.get(path) or owner.routes.get(path.split("?")[0])
        if route is None:
            self._send(404, {}, b"not found\n", head)
            return
        auth = self.headers.get("Authorization", "")
        if route.basic:
            expected = "Basic " + base64.b64encode(":".join(route.basic).encode()).decode()
            if auth != expected:
                self._send(401, {"WWW-Authenticate": 'Basic realm="rkt"'}, b"", head)
                return
        if route.bearer and auth != "Bearer " + route.bearer:
            self._send(401, {"WWW-Authenticate": "Bearer"}, b"", head)
            return
        if route.redirect:
            self._send(route.status if route.status in (301, 302, 303, 307, 308) else 302,
                       {"Location": route.redirect}, b"", head)
            return
        if route.accepted > 0:
            route.accepted -= 1
            self._send(202, {"Retry-After": "0"}, b"", head)
            return
        headers = {"Content-Type": route.content_type, **route.headers}
        if route.ranges:
            headers["Accept-Ranges"] = "bytes"
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.etag and self.headers.get("If-None-Match") == route.etag:
            self._send(304, {k: v for k, v in headers.items() if k != "Content-Type"}, b"", head)
            return
        body, status = route.body, route.status
        wanted = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range")
        if (route.ranges and wanted.startswith("bytes=") and wanted.endswith("-")
                and (if_range is None or not route.if_range
                     or if_range in (route.etag, route.last_modified))):
            start = int(wanted[6:-1])
            if start >= len(body):
                self._send(416, {"Content-Range": f"bytes */{len(body)}"}, b"", head)
                return
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            body, status = body[start:], 206
        if route.drop_after >= 0 and not head:
            cut = route.drop_after
            route.drop_after = -1
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:cut])
            self.wfile.flush()
            owner._count(path, min(cut, len(body)))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(status, headers, body, head, route)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: "TestServer"


class TestServer:
    """An HTTP server on a loopback address (HTTPS when given a :class:`TestCA`).

    ``names``: extra DNS names or addresses for the certificate. ``sock``: an already bound
    listening socket to serve on (e.g. one made in a test's network namespace).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, *, ca: TestCA | None = None, host: str = "127.0.0.1", port: int = 0,
                 names: list[str] | None = None, sock: socket.socket | None = None):
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.bytes_sent: dict[str, int] = {}
        self._lock = threading.Lock()
        if sock is not None:
            self._httpd = _Server(sock.getsockname()[:2], _Handler, bind_and_activate=False)
            self._httpd.socket.close()
            self._httpd.socket = sock
        else:
            self._httpd = _Server((host, port), _Handler)
        self._httpd.owner = self
        self.host, self.port = self._httpd.socket.getsockname()[:2]
        self.scheme = "http"
        if ca is not None:
            cert, key = ca.issue([*(names or []), self.host, "localhost"])
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        """``scheme://host:port`` of this server."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        """The URL of ``path`` on this server."""
        return self.base + path

    def add(self, path: str, body: bytes = b"", **kwargs) -> Route:
        """Serve ``body`` (or a status, redirect ...: see :class:`Route`) at ``path``."""
        route = Route(body=body, **kwargs)
        self.routes[path] = route
        return route

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self.bytes_sent[path] = self.bytes_sent.get(path, 0) + n

    def seen(self, path: str) -> list[Seen]:
        """The requests received for ``path`` (query string included in the match if given)."""
        with self._lock:
            return [r for r in self.requests if r.path == path or r.path.split("?")[0] == path]

    def close(self) -> None:
        """Stop serving (letting stalled responses go on) and close the socket."""
        for route in self.routes.values():
            route.go_on()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> "TestServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def listen_in_netns(netns_path: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket bound to ``host:port`` inside the network namespace pinned at
    ``netns_path`` (needs root). Only the calling thread visits the namespace; the socket stays
    in it, so a :class:`TestServer` given ``sock=`` serves there (e.g. on port 443)."""
    import os

    from ..sys import ns

    home = ns.open_ns("net")
    target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        ns.setns(target, "net")
        try:
            return socket.create_server((host, port))
        finally:
            ns.setns(home, "net")
    finally:
        os.close(target)
        os.close(home)
