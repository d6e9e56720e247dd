"""Fixtures for the docker fetcher's tests: the test images (built once, as root), registries
serving copies of them, and the ``rkt`` command on a fresh data directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rkt_core.testing.registry import Registry, build_test_image, local_env

RKT_TIMEOUT = 120


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


class Rkt:
    """``rkt`` with a data directory and configuration directories of its own (the host's
    ``/etc/rkt`` and ``/usr/lib/rkt`` are never read)."""

    def __init__(self, base: Path):
        self.data_dir = base / "data"
        self.config_dir = base / "config"
        self.system_config = base / "system-config"
        self.user_config = base / "user-config"

    def __call__(self, *args: str, insecure: str = "image,http",
                 timeout: float = RKT_TIMEOUT) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args, insecure=insecure), capture_output=True,
                              text=True, timeout=timeout, env=self.env)

    @property
    def env(self) -> dict[str, str]:
        """The environment to run it in: no proxies, so traffic to 127.0.0.1 stays local."""
        return local_env()

    def command(self, *args: str, insecure: str = "image,http") -> list[str]:
        """The argv of ``rkt ARGS``."""
        return [sys.executable, "-m", "rkt_core.cli.main", f"--dir={self.data_dir}",
                f"--system-config={self.system_config}", f"--local-config={self.config_dir}",
                f"--user-config={self.user_config}", f"--insecure-options={insecure}", *args]

    def docker_auth(self, registry: str, user: str, password: str) -> None:
        """Write a dockerAuth file with these credentials for ``registry``."""
        auth_d = self.config_dir / "auth.d"
        auth_d.mkdir(parents=True, exist_ok=True)
        (auth_d / "docker.json").write_text(json.dumps({
            "rktKind": "dockerAuth", "rktVersion": "v1", "registries": [registry],
            "credentials": {"user": user, "password": password}}))

    def fetch(self, ref: str, *args: str, **kwargs) -> str:
        """``rkt fetch --full REF``; the image key (asserts success)."""
        result = self("fetch", "--full", *args, ref, **kwargs)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def image_keys(self) -> list[str]:
        """The keys of the images in the store."""
        result = self("image", "list", "--no-legend", "--full", "--fields=id")
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    def manifest(self, image: str) -> dict:
        """``rkt image cat-manifest`` as a dict."""
        result = self("image", "cat-manifest", image)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def extract(self, key: str, dest: Path) -> Path:
        """``rkt image extract --rootfs-only``."""
        result = self("image", "extract", "--rootfs-only", key, str(dest))
        assert result.returncode == 0, result.stderr
        return dest

    @property
    def blob_cache(self) -> Path:
        return self.data_dir / "cas/tmp/docker-blobs"

    def tmp_leftovers(self) -> list[str]:
        """What ``cas/tmp`` holds besides the blob cache's complete blobs."""
        tmp = self.data_dir / "cas/tmp"
        found = [p.name for p in tmp.iterdir() if p.name != "docker-blobs"] if tmp.exists() else []
        if self.blob_cache.exists():
            found += [p.name for p in self.blob_cache.iterdir() if p.name.endswith(".partial")]
        return found


@pytest.fixture(scope="session")
def rkt_in():
    """``rkt_in(base)``: a :class:`Rkt` on ``base`` (for fixtures wider than one test; test
    modules never import this conftest, whose module name is ambiguous across the suite)."""
    return Rkt


@pytest.fixture
def rkt(tmp_path) -> Rkt:
    """``rkt`` on a fresh data directory."""
    return Rkt(tmp_path)
