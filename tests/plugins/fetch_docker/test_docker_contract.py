"""rkt-fetch-docker passes the fetcher contract against a real registry on loopback."""

import pytest

from rkt_core.testing.fetcher_contract import HTML, FetcherContract, Source
from rkt_core.testing.registry import TEST_REPO, layer_tar

pytestmark = pytest.mark.root


class RegistrySource(Source):
    """The test images of a registry holding them, and hostile images pushed to another one."""

    def __init__(self, images, start_registry):
        self.images, self.start_registry = images, start_registry
        self.hostile_registry = None

    def image(self) -> str:
        return f"docker://{self.images.address}/{TEST_REPO}:latest"

    def hostile(self, kind: str) -> str:
        if self.hostile_registry is None:
            self.hostile_registry = self.start_registry()
        registry = self.hostile_registry
        if kind == "html":  # served as a plain tar layer
            registry.push_image(kind, [HTML], compress=False)
        elif kind == "truncated":
            layer = layer_tar([("big", bytes(range(256)) * 400)])
            registry.push_image(kind, [layer[:len(layer) // 2]], compress=False)
        elif kind == "huge":  # a config beyond what is read into memory
            registry.push_image(kind, [layer_tar([("f", b"f")])],
                                {"Env": ["X=" + "a" * (9 << 20)]})
        return f"docker://{registry.address}/{TEST_REPO}:{kind}"


class TestDockerFetcherContract(FetcherContract):
    fetcher = "docker"
    insecure = "image,http"

    @pytest.fixture
    def source(self, images, start_registry):
        return RegistrySource(images, start_registry)

    def leftovers(self, rkt):
        """Complete blobs stay in the blob cache (cas/tmp/docker-blobs) for later fetches."""
        return [name for name in rkt.tmp_leftovers()
                if not name.startswith("docker-blobs/") or name.endswith(".partial")]
