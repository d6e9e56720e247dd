"""Hostile registry answers for the docker fetcher, from a registry of the test's own on
127.0.0.1 that answers what no real registry would: HTML pages, redirect loops, manifests and
configs without end, blob sizes that lie, a manifest of thousands of layers. Each fetch is
refused with rkt's clear error and imports nothing (no row, blob or temporary file).

Tampered digests, hostile layers, oversized configs and redirects that are followed are tested
against the real docker-registry in tests/plugins/fetch_docker/test_integrity.py and
test_fetch.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hostile import assert_clear_error, store_state

from rkt_core.testing.registry import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, host_goarch
from rkt_core.testing.runner import Rkt

REPO = "hostile/app"
MiB = 1 << 20


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    return buf.getvalue()


LAYER = layer()
LAYER_GZ = gzip.compress(LAYER, mtime=0)


def image(layers: int = 1, layer_size: int | None = None, config_size: int | None = None,
          config: bytes | None = None) -> tuple[bytes, dict[str, bytes]]:
    """An OCI manifest of ``layers`` copies of one small layer, and the blobs it names;
    the sizes it declares can be set to lie."""
    config = config or json.dumps({"architecture": host_goarch(), "os": "linux",
                                   "config": {"Cmd": ["/hello"]},
                                   "rootfs": {"type": "layers",
                                              "diff_ids": [sha256(LAYER)] * layers}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha256(config),
                           "size": len(config) if config_size is None else config_size},
                "layers": [{"mediaType": OCI_LAYER, "digest": sha256(LAYER_GZ),
                            "size": len(LAYER_GZ) if layer_size is None else layer_size}]
                * layers}
    return json.dumps(manifest).encode(), {sha256(config): config, sha256(LAYER_GZ): LAYER_GZ}


class Answers:
    """What the registry answers, by path: a function of the request handler."""

    def __init__(self, manifest: bytes, blobs: dict[str, bytes]):
        self.manifest, self.blobs = manifest, blobs
        self.special: dict[str, object] = {}  # path -> handler(request)
        self.requests = 0


def send(request, status: int, body: bytes = b"", content_type: str = "application/json",
         headers: dict | None = None) -> None:
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        request.send_header(key, value)
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)


def endless(request, content_type: str, chunk: bytes = b" " * MiB, limit: int = 1 << 30):
    """A body that does not end (up to ``limit``), without a length: the client must stop."""
    request.send_response(200)
    request.send_header("Content-Type", content_type)
    request.end_headers()
    try:
        for _ in range(limit // len(chunk)):
            request.wfile.write(chunk)
    except OSError:
        pass  # the client hung up, as it should
    request.close_connection = True


class FakeRegistry:
    """A registry on 127.0.0.1 serving :class:`Answers`."""

    def __init__(self, answers: Answers):
        self.answers = answers

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                answers.requests += 1
                path = self.path.split("?")[0]
                for prefix, handler in answers.special.items():  # "...*" matches a prefix
                    if path == prefix or (prefix.endswith("*") and path.startswith(prefix[:-1])):
                        return handler(self)
                if path == "/v2/":
                    return send(self, 200, b"{}")
                if path.startswith(f"/v2/{REPO}/manifests/"):
                    return send(self, 200, answers.manifest, OCI_MANIFEST,
                                {"Docker-Content-Digest": sha256(answers.manifest)})
                digest = path.rsplit("/", 1)[-1]
                if path.startswith(f"/v2/{REPO}/blobs/") and digest in answers.blobs:
                    return send(self, 200, answers.blobs[digest], "application/octet-stream")
                return send(self, 404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')

            do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def manifest_path(tag: str = "latest") -> str:
    return f"/v2/{REPO}/manifests/{tag}"


def blob_path(digest: str) -> str:
    return f"/v2/{REPO}/blobs/{digest}"


HTML = b"<!DOCTYPE html><html><body><h1>Please log in</h1></body></html>"


def cases() -> dict[str, tuple[Answers, str]]:
    """case -> (the answers, what the error says)."""
    good_manifest, good_blobs = image()
    config_digest = json.loads(good_manifest)["config"]["digest"]
    found = {}

    def case(name, expected, manifest=good_manifest, blobs=good_blobs, **special):
        answers = Answers(manifest, blobs)
        answers.special.update({path.replace("@", "/"): handler
                                for path, handler in special.items()})
        found[name] = (answers, expected)

    case("an HTML page for the manifest", "manifest latest", **{
        manifest_path(): lambda r: send(r, 200, HTML, "text/html")})
    case("an HTML page for the API check", "manifest latest", **{
        "/v2/": lambda r: send(r, 200, HTML, "text/html"),
        manifest_path(): lambda r: send(r, 200, HTML, "text/html")})
    case("an HTML page for the config", "image config", **{
        blob_path(config_digest): lambda r: send(r, 200, HTML, "text/html")})
    case("a redirect to itself", "redirect", **{
        manifest_path(): lambda r: send(r, 302, headers={"Location": manifest_path()})})
    case("a redirect loop between two paths", "redirect", **{
        manifest_path(): lambda r: send(r, 302, headers={"Location": manifest_path("other")}),
        manifest_path("other"): lambda r: send(r, 302, headers={"Location": manifest_path()})})
    case("redirects without end", "too many redirects", **{
        manifest_path("*"): lambda r: send(r, 302, headers={
            "Location": manifest_path(f"hop-{r.path.count('-') + 1}" + "-" * r.path.count("-"))
        })})
    case("a manifest without end", "manifest latest", **{
        manifest_path(): lambda r: endless(r, OCI_MANIFEST)})
    case("a config without end", "image config", **{
        blob_path(config_digest): lambda r: endless(r, "application/octet-stream")})
    case("a layer without end", "sha256:", **{
        blob_path(sha256(LAYER_GZ)): lambda r: endless(r, "application/octet-stream")})
    manifest, blobs = image(layer_size=3)
    case("a layer larger than its declared size", "sha256:", manifest, blobs)
    manifest, blobs = image(layer_size=len(LAYER_GZ) + 1000)
    case("a layer smaller than its declared size", "sha256:", manifest, blobs)
    manifest, blobs = image(config_size=5)
    case("a config larger than its declared size", "image config", manifest, blobs)
    manifest, blobs = image(config_size=1 << 40)
    case("a config declared at a terabyte", "image config", manifest, blobs)
    manifest, blobs = image(layers=20_000)
    case("a manifest of 20,000 layers", "20000 layers, more than the 500 allowed", manifest,
         blobs)
    return found


@pytest.fixture(params=list(cases()))
def hostile_registry(request):
    answers, expected = cases()[request.param]
    registry = FakeRegistry(answers)
    yield registry, expected
    registry.close()


@pytest.fixture
def docker_rkt(tmp_path):
    """The kit's runner (no proxy: requests to 127.0.0.1 stay local), plain http allowed."""
    return Rkt(tmp_path, insecure="image,http")


def test_hostile_registry_answers_are_refused_and_import_nothing(docker_rkt, hostile_registry,
                                                                figures):
    registry, expected = hostile_registry
    done = docker_rkt("fetch", f"docker://{registry.address}/{REPO}:latest", timeout=300)
    figures.add("registry answers")
    assert_clear_error(done, expected)
    assert_nothing_imported(docker_rkt)


def assert_nothing_imported(rkt) -> None:
    """No row, no blob, nothing in ``cas/tmp`` but the docker fetcher's cache of complete,
    checked blobs (never a partial download of a blob that was refused)."""
    state = store_state(rkt.data_dir)
    assert state["rows"] == state["blob"] == [] and set(state["tmp"]) <= {"docker-blobs"}
    cache = rkt.data_dir / "cas" / "tmp" / "docker-blobs"
    assert not cache.exists() or [p.name for p in cache.iterdir()
                                  if p.name.endswith(".partial")] == []


def test_the_good_image_is_fetched(docker_rkt, figures):
    """The answers above fail for what they are, not because nothing could pass."""
    registry = FakeRegistry(Answers(*image()))
    try:
        done = docker_rkt("fetch", f"docker://{registry.address}/{REPO}:latest")
    finally:
        registry.close()
    figures.add("registry answers")
    assert done.returncode == 0, done.stderr
    assert len(store_state(docker_rkt.data_dir)["rows"]) == 1
