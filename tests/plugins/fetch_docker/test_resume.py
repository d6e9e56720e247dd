"""Resumable blob downloads: a download cut off half-way is resumed with a Range request; a
partial file that does not belong to the blob is replaced by a full download."""

import json
import re
import socket
import threading

import pytest

from rkt_core.testing.registry import OCI_MANIFEST, TEST_REPO

pytestmark = pytest.mark.root


class CuttingProxy:
    """A TCP proxy to ``upstream`` (host:port) on 127.0.0.1 that closes each connection once it
    has passed ``limit`` bytes of responses: a registry whose transfers break off."""

    def __init__(self, upstream: str, limit: int):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.limit = limit
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.sockets: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self.sockets += [client, upstream]
            for target in (self._requests, self._responses):
                thread = threading.Thread(target=target, args=(client, upstream), daemon=True)
                self.threads.append(thread)
                thread.start()

    @staticmethod
    def _requests(client, upstream):
        try:
            while data := client.recv(65536):
                upstream.sendall(data)
        except OSError:
            pass

    def _responses(self, client, upstream):
        sent = 0
        try:
            while sent < self.limit and (data := upstream.recv(65536)):
                data = data[:self.limit - sent]
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (client, upstream):
            self._shut(s)

    @staticmethod
    def _shut(s):
        """Shut down (which wakes a thread blocked on it and sends FIN), then close."""
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def close(self):
        self._shut(self.server)
        for s in self.sockets:
            self._shut(s)
        for thread in self.threads:
            thread.join(timeout=10)


def base_layer(registry):
    layer = json.loads(registry.manifest("latest", OCI_MANIFEST)[0])["layers"][0]
    return layer["digest"], registry.blob_path(layer["digest"]).read_bytes()


def test_an_interrupted_download_is_resumed(rkt, images):
    digest, blob = base_layer(images)
    proxy = CuttingProxy(images.address, limit=len(blob) // 2)
    try:
        result = rkt("fetch", f"docker://{proxy.address}/{TEST_REPO}")
    finally:
        proxy.close()
    assert result.returncode == 254
    assert re.search(rf"blob {digest}: the download of \S+/blobs/{digest} broke off at byte \d+",
                     result.stderr)
    assert "run the command again to resume it" in result.stderr
    partial = rkt.blob_cache / (digest.replace(":", "-") + ".partial")
    kept = partial.stat().st_size
    assert 0 < kept < len(blob) and partial.read_bytes() == blob[:kept]
    assert rkt.image_keys() == []
    result = rkt("--debug", "fetch", f"docker://{images.address}/{TEST_REPO}")
    assert result.returncode == 0, result.stderr
    assert f"resuming blob {digest} at byte {kept}" in result.stderr
    assert (rkt.blob_cache / digest.replace(":", "-")).read_bytes() == blob
    assert rkt.tmp_leftovers() == []


def test_a_partial_file_of_something_else_is_downloaded_again(rkt, images):
    digest, blob = base_layer(images)
    rkt.blob_cache.mkdir(parents=True)
    (rkt.blob_cache / (digest.replace(":", "-") + ".partial")).write_bytes(b"x" * 1000)
    result = rkt("--debug", "fetch", f"docker://{images.address}/{TEST_REPO}")
    assert result.returncode == 0, result.stderr
    assert f"resuming blob {digest} at byte 1000" in result.stderr
    assert f"blob {digest} did not match after resuming at byte 1000; downloading it again" \
        in result.stderr
    assert (rkt.blob_cache / digest.replace(":", "-")).read_bytes() == blob


def test_a_partial_file_larger_than_the_blob_is_dropped(rkt, images):
    digest, blob = base_layer(images)
    rkt.blob_cache.mkdir(parents=True)
    (rkt.blob_cache / (digest.replace(":", "-") + ".partial")).write_bytes(blob + b"extra")
    result = rkt("--debug", "fetch", f"docker://{images.address}/{TEST_REPO}")
    assert result.returncode == 0, result.stderr
    assert "resuming" not in result.stderr
    assert (rkt.blob_cache / digest.replace(":", "-")).read_bytes() == blob
