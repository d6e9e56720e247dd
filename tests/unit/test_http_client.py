"""The HTTP client on its own, against servers on loopback: proxies from the environment (a
CONNECT tunnel for https, absolute URIs for http, no_proxy), chunked bodies, bodies cut short,
connections kept alive, and the headers it sends and keeps."""

import base64
import gzip
import socket
import socketserver
import threading

import pytest

from rkt_core.remote.httpclient import HttpClient, HttpError, HttpOptions, read_body
from rkt_core.remote.proxies import proxy_for
from rkt_core.testing.httpserver import TestCA, TestServer

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


class Proxy:
    """An HTTP proxy on 127.0.0.1 recording (method, target, Proxy-Authorization) of each
    request. A CONNECT is tunnelled to 127.0.0.1 at the port asked for, whatever the host name;
    any other request is answered by the proxy itself ("from the proxy")."""

    def __init__(self):
        self.seen: list[tuple[str, str, str | None]] = []
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data:
                return
            head += data
        lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        method, target, _ = lines[0].split(" ")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        self.seen.append((method, target, fields.get("Proxy-Authorization")))
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nfrom the proxy")
            return
        upstream = socket.create_connection(("127.0.0.1", int(target.rsplit(":", 1)[1])))
        self._sockets.append(upstream)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=_relay, args=(upstream, client), daemon=True).start()
        _relay(client, upstream)

    def close(self):
        self._listener.close()
        for sock in self._sockets:
            sock.close()


def _relay(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@pytest.fixture
def proxy():
    p = Proxy()
    yield p
    p.close()


@pytest.fixture
def ca(tmp_path, monkeypatch):
    ca = TestCA(tmp_path / "ca")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.ca_path))
    return ca


def test_https_goes_through_a_connect_tunnel_checked_against_the_host_asked_for(
        proxy, ca, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://me:p%40ss@"))
    with TestServer(ca=ca, names=["registry.test"]) as server, HttpClient(HttpOptions()) as client:
        server.add("/x", b"through the tunnel")
        # registry.test resolves nowhere: only the proxy's tunnel reaches the server
        status, body, _ = client.get_small(f"https://registry.test:{server.port}/x", 100, "x")
        assert (status, body) == (200, b"through the tunnel")
        with pytest.raises(HttpError, match="certificate verify failed: Hostname mismatch"):
            client.get_small(f"https://other.test:{server.port}/x", 100, "x")
    assert proxy.seen == [("CONNECT", f"registry.test:{server.port}",
                           "Basic " + base64.b64encode(b"me:p@ss").decode()),
                          ("CONNECT", f"other.test:{server.port}",
                           "Basic " + base64.b64encode(b"me:p@ss").decode())]


def test_plain_http_goes_to_the_proxy_as_an_absolute_uri(proxy, monkeypatch):
    monkeypatch.setenv("http_proxy", proxy.url)
    with HttpClient(HttpOptions(allow_http=True)) as client:
        status, body, _ = client.get_small("http://example.test:8080/a?b=c", 100, "x")
    assert (status, body) == (200, b"from the proxy")
    assert proxy.seen == [("GET", "http://example.test:8080/a?b=c", None)]


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "127.0.0.0/8", "*", "localhost,127.0.0.1"])
def test_no_proxy_hosts_are_reached_directly(proxy, monkeypatch, no_proxy):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    with TestServer() as server, HttpClient(HttpOptions(allow_http=True)) as client:
        server.add("/x", b"direct")
        assert client.get_small(server.url("/x"), 100, "x")[1] == b"direct"
    assert proxy.seen == []


@pytest.mark.parametrize("env, url, expected", [
    ({"https_proxy": "http://p:3128"}, "https://a.test", ("p", 3128)),
    ({"https_proxy": "p:3128"}, "https://a.test", ("p", 3128)),
    ({"HTTPS_PROXY": "http://p"}, "https://a.test", ("p", 80)),
    ({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}, "https://a.test",
     ("lower", 1)),
    ({"https_proxy": "", "HTTPS_PROXY": "http://upper:2"}, "https://a.test", None),
    ({"http_proxy": "http://p:1"}, "https://a.test", None),
    ({"all_proxy": "http://all:1"}, "https://a.test", ("all", 1)),
    ({"HTTP_PROXY": "http://p:1", "REQUEST_METHOD": "GET"}, "http://a.test", None),
    ({"https_proxy": "http://p:1", "no_proxy": "a.test"}, "https://x.a.test", None),
    ({"https_proxy": "http://p:1", "no_proxy": ".a.test"}, "https://a.test", None),
    ({"https_proxy": "http://p:1", "no_proxy": "a.test"}, "https://xa.test", ("p", 1)),
    ({"https_proxy": "http://p:1", "no_proxy": "a.test:8443"}, "https://a.test:8443", None),
    ({"https_proxy": "http://p:1", "no_proxy": "a.test:8443"}, "https://a.test", ("p", 1)),
    ({"https_proxy": "http://p:1", "no_proxy": "10.0.0.0/8"}, "https://10.1.2.3", None),
    ({"https_proxy": "http://p:1", "no_proxy": "10.0.0.0/8"}, "https://11.1.2.3", ("p", 1)),
])
def test_the_proxy_of_a_url(monkeypatch, env, url, expected):
    from urllib.parse import urlsplit

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    parts = urlsplit(url)
    found = proxy_for(parts.scheme, parts.hostname, parts.port or 443)
    assert ((found.host, found.port) if found else None) == expected


def test_an_unsupported_proxy_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("https_proxy", "socks5://127.0.0.1:1080")
    with HttpClient(HttpOptions()) as client:
        with pytest.raises(HttpError, match="unsupported proxy"):
            client.request("GET", "https://a.test/")


class Scripted:
    """A server on 127.0.0.1 answering requests for a path with fixed bytes (then closing the
    connection when told), recording (connection number, request head) of each request."""

    def __init__(self, answers: dict[str, tuple[bytes, bool]]):
        self.seen: list[tuple[int, str]] = []
        connections = iter(range(1_000_000))
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                number = next(connections)
                while True:
                    head = b""
                    while (line := self.rfile.readline()) not in (b"\r\n", b""):
                        head += line
                    if not head:
                        return
                    owner.seen.append((number, head.decode()))
                    answer, close = answers[head.split(b" ")[1].decode()]
                    self.wfile.write(answer)
                    if close:
                        return

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def connections(self) -> list[int]:
        return [number for number, _ in self.seen]

    def close(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def ok(body: bytes, *headers: str) -> bytes:
    lines = [f"Content-Length: {len(body)}", *headers]
    return ("HTTP/1.1 200 OK\r\n" + "".join(f"{h}\r\n" for h in lines) + "\r\n").encode() + body


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.fixture
def scripted():
    made = []

    def make(answers):
        made.append(Scripted(answers))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def client():
    with HttpClient(HttpOptions(allow_http=True)) as c:
        yield c


def test_a_chunked_body_is_read_whole_and_its_connection_kept(scripted, client):
    server = scripted({"/c": (CHUNKED + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", False)})
    for _ in range(2):
        assert client.get_small(server.base + "/c", 100, "c")[1] == b"hello world"
    assert server.connections() == [0, 0]


def test_a_chunked_body_cut_short_gives_what_arrived_then_an_error(scripted, client):
    server = scripted({"/c": (CHUNKED + b"5\r\nhello\r\n10\r\nabc", True)})
    received = b""
    with client.request("GET", server.base + "/c") as response:
        with pytest.raises(Exception):
            while chunk := response.read(1024):
                received += chunk
    assert received == b"helloabc"
    with pytest.raises(HttpError, match="reading"):
        client.get_small(server.base + "/c", 100, "c")


def test_a_body_cut_short_of_its_length_gives_what_arrived_then_an_error(scripted, client):
    server = scripted({"/x": (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 400,
                              True)})
    received = b""
    with client.request("GET", server.base + "/x") as response:
        with pytest.raises(Exception, match="IncompleteRead"):
            while chunk := response.read(64):
                received += chunk
    assert received == b"x" * 400


def test_a_connection_is_kept_only_after_its_body_was_read_to_the_end(scripted, client):
    server = scripted({"/small": (ok(b"small"), False), "/big": (ok(b"b" * 100_000), False)})
    client.get_small(server.base + "/small", 100, "small")
    client.get_small(server.base + "/small", 100, "small")
    with client.request("GET", server.base + "/big") as response:
        assert response.status_code == 200  # body left unread: the connection is closed
    client.get_small(server.base + "/small", 100, "small")
    assert server.connections() == [0, 0, 0, 1]


def test_a_kept_connection_the_server_closed_is_replaced(scripted, client):
    server = scripted({"/bye": (ok(b"bye"), True), "/small": (ok(b"small"), False)})
    assert client.get_small(server.base + "/bye", 100, "bye")[1] == b"bye"
    assert client.get_small(server.base + "/small", 100, "small")[1] == b"small"
    assert server.connections() == [0, 1]


def test_connection_close_is_honoured(scripted, client):
    server = scripted({"/x": (ok(b"x", "Connection: close"), True)})
    for _ in range(2):
        assert client.get_small(server.base + "/x", 100, "x")[1] == b"x"
    assert server.connections() == [0, 1]


def test_headers_sent_and_received(scripted, client):
    body = gzip.compress(b"as sent")
    server = scripted({"/h": (ok(body, "Content-Encoding: gzip", "WWW-Authenticate: Basic",
                                 "www-authenticate: Bearer realm=x"), False)})
    status, received, headers = client.get_small(server.base + "/h", 1000, "h", {"X-A": "b"})
    assert received == body  # taken as sent, never decoded
    assert headers["www-authenticate"] == headers.get("WWW-Authenticate") == \
        "Basic, Bearer realm=x"
    assert "content-encoding" in headers and "Location" not in headers
    head = server.seen[0][1]
    assert head.startswith("GET /h HTTP/1.1\r\n")
    assert "Accept-Encoding: identity\r\n" in head and "X-A: b\r\n" in head
    assert "User-Agent: rkt-python/" in head


def test_a_refused_connection_and_a_bad_answer_are_http_errors(scripted, client):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(HttpError, match="refused"):
        client.request("GET", f"http://127.0.0.1:{port}/")
    server = scripted({"/junk": (b"SPDY/9 what\r\n\r\n", True)})
    with pytest.raises(HttpError, match="junk"):
        client.request("GET", server.base + "/junk", what="junk")
    with pytest.raises(HttpError, match="no host"):
        client.request("GET", "http:///x")


def test_a_missing_ca_bundle_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with HttpClient(HttpOptions()) as client:
        with pytest.raises(HttpError, match="cannot read the CA certificates .*missing.pem") as e:
            client.request("GET", "https://127.0.0.1:1/")
    assert "REQUESTS_CA_BUNDLE" in e.value.hint
