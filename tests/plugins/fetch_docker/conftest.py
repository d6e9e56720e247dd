"""Fixtures for the docker fetcher's tests: the test images (built once, as root), registries
serving copies of them, and the ``rkt`` command on a fresh data directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rkt_core.testing import runner
from rkt_core.testing.registry import Registry, build_test_image


@pytest.fixture(scope="session")
def test_layout(tmp_path_factory) -> Path:
    """The OCI layout of :func:`build_test_image` (needs root)."""
    base = tmp_path_factory.mktemp("docker-images")
    yield build_test_image(base / "oci")
    shutil.rmtree(base)


@pytest.fixture(scope="session")
def images(test_layout) -> Registry:
    """A registry (no auth) holding the test images, for the whole session; read-only: tests
    that change a registry use :func:`start_registry`."""
    with Registry() as registry:
        registry.push_test_images(test_layout)
        yield registry


@pytest.fixture
def start_registry(images):
    """``start_registry(mode="noauth", tls=False, **token_options)``: a registry of its own
    (:class:`Registry`) with a copy of the test images, stopped at the end of the test."""
    started = []

    def start(mode: str = "noauth", **options) -> Registry:
        registry = Registry(mode, content=images.storage, **options)
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.close()


class Rkt(runner.Rkt):
    """The kit's runner with plain http allowed, and what the docker tests ask of it."""

    def __init__(self, base: Path):
        super().__init__(base, insecure="image,http")

    def docker_auth(self, registry: str, user: str, password: str) -> None:
        """Write a dockerAuth file with these credentials for ``registry``."""
        auth_d = self.local_config / "auth.d"
        auth_d.mkdir(parents=True, exist_ok=True)
        (auth_d / "docker.json").write_text(json.dumps({
            "rktKind": "dockerAuth", "rktVersion": "v1", "registries": [registry],
            "credentials": {"user": user, "password": password}}))

    def fetch(self, ref: str, *args: str, **kwargs) -> str:
        """``rkt fetch --full REF``; the image key (asserts success)."""
        return self("fetch", "--full", *args, ref, check=0, **kwargs).stdout.strip()

    def manifest(self, image: str) -> dict:
        """``rkt image cat-manifest`` as a dict."""
        return json.loads(self("image", "cat-manifest", image, check=0).stdout)

    def extract(self, key: str, dest: Path) -> Path:
        """``rkt image extract --rootfs-only``."""
        self("image", "extract", "--rootfs-only", key, str(dest), check=0)
        return dest

    @property
    def blob_cache(self) -> Path:
        return self.data_dir / "cas/tmp/docker-blobs"

    def tmp_leftovers(self) -> list[str]:
        """What ``cas/tmp`` holds besides the blob cache's complete blobs."""
        return [name for name in super().tmp_leftovers()
                if not name.startswith("docker-blobs/") or name.endswith(".partial")]


@pytest.fixture(scope="session")
def rkt_in():
    """``rkt_in(base)``: a :class:`Rkt` on ``base`` (for fixtures wider than one test; test
    modules never import this conftest, whose module name is ambiguous across the suite)."""
    return Rkt


@pytest.fixture
def rkt(tmp_path) -> Rkt:
    """``rkt`` on a fresh data directory."""
    rkt = Rkt(tmp_path)
    yield rkt
    rkt.cleanup()
