"""The built-in plugins of rkt-core pass the contract suites of their kinds, as any plugin does.
(The appc name fetcher's, which needs DNS names of its own, is in test_remote_fetch.py.)"""

from pathlib import Path

import pytest

from rkt_core.testing.fetcher_contract import FetcherContract, Source, good_aci, hostile_aci
from rkt_core.testing.httpserver import TestCA, TestServer
from rkt_core.testing.network_contract import NetworkContract


class FileSource(Source):
    """Images as files in a directory."""

    def __init__(self, directory: Path):
        self.directory = directory

    def image(self) -> str:
        path = self.directory / "image.aci"
        path.write_bytes(good_aci(self.directory))
        return str(path)

    def hostile(self, kind: str) -> str:
        path = self.directory / f"{kind}.aci"
        if kind != "missing":
            path.write_bytes(hostile_aci(kind, self.directory))
        return str(path)


class HttpsSource(Source):
    """Images on a loopback HTTPS server (with an ETag), trusted through the test's CA."""

    def __init__(self, server: TestServer, ca: TestCA, directory: Path):
        self.server, self.directory = server, directory
        self.env = {"REQUESTS_CA_BUNDLE": str(ca.ca_path)}

    def image(self) -> str:
        self.server.add("/image.aci", good_aci(self.directory), etag='"v1"')
        return self.server.url("/image.aci")

    def hostile(self, kind: str) -> str:
        if kind == "html":
            self.server.add("/html.aci", hostile_aci(kind, self.directory),
                            content_type="text/html")
        elif kind != "missing":
            self.server.add(f"/{kind}.aci", hostile_aci(kind, self.directory))
        return self.server.url(f"/{kind}.aci")


class TestFileFetcherContract(FetcherContract):
    fetcher = "file"

    @pytest.fixture
    def source(self, tmp_path):
        return FileSource(tmp_path)


class TestHttpFetcherContract(FetcherContract):
    fetcher = "http"

    @pytest.fixture
    def source(self, tmp_path):
        ca = TestCA(tmp_path / "ca")
        with TestServer(ca=ca) as server:
            yield HttpsSource(server, ca, tmp_path)


class TestHostNetworkContract(NetworkContract):
    backend = "host"
    network = "host"
    contained = False
    interfaces = 0


class TestNoneNetworkContract(NetworkContract):
    backend = "none"
    network = "none"
    interfaces = 0
