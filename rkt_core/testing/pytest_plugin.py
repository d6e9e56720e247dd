"""rkt's pytest kit, loaded by pytest wherever rkt-core is installed (entry point ``pytest11``).

Fixtures:

- ``rkt``: the real ``rkt`` command on fresh directories of the test
  (:class:`~rkt_core.testing.runner.Rkt`: ``rkt(...)``, ``rkt.run``, ``rkt.start``,
  ``rkt.status``, ``rkt.pods``, ``rkt.images``, ``rkt.data_dir``, ``rkt.local_config``...);
  pods it leaves running are force-stopped when the test ends;
- ``rkt_plugin``: ``rkt_plugin(distribution, entry_points, modules)`` installs a test plugin
  (module sources, no pip) that the ``rkt`` fixture's commands discover like an installed one;
- ``busybox_image``: a runnable busybox ACI (:func:`~rkt_core.testing.aci.app_image`), built
  once per session;
- ``gpg_signer`` and ``signed_image``: an OpenPGP key (:class:`~rkt_core.testing.gpg.GpgSigner`)
  and ``busybox_image`` signed with it (with the key file to ``rkt trust``);
- ``wait_for``: :func:`~rkt_core.testing.wait.wait_for` (poll a condition, fail naming it);
- ``fake_libc``: the recording fake of the C library behind ``rkt_core.sys``.

Tests marked ``root`` need root and the real components; they are skipped for other users.
The contract suites every plugin of a kind passes are classes to subclass:
:class:`~rkt_core.testing.stage1_contract.Stage1Contract`,
:class:`~rkt_core.testing.fetcher_contract.FetcherContract`,
:class:`~rkt_core.testing.verifier_contract.VerifierContract`,
:class:`~rkt_core.testing.network_contract.NetworkContract`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest


def pytest_configure(config) -> None:
    """Register the ``root`` marker."""
    config.addinivalue_line("markers", "root: needs root and real system components")


def pytest_collection_modifyitems(config, items) -> None:
    """Skip the tests marked ``root`` when not running as root."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root")
    for item in items:
        if item.get_closest_marker("root"):
            item.add_marker(skip)


@pytest.fixture
def rkt(tmp_path):
    """The ``rkt`` command on fresh directories under ``tmp_path``."""
    from .runner import Rkt

    runner = Rkt(tmp_path)
    yield runner
    runner.cleanup()


@pytest.fixture
def rkt_plugin(rkt, tmp_path):
    """``rkt_plugin(distribution, entry_points, modules, version="0.0.1")``: install a test
    plugin (see :func:`~rkt_core.testing.plugins.plugin_site`) for the ``rkt`` fixture's
    commands; returns the directory it is installed in."""
    from .plugins import plugin_site

    def install(distribution: str, entry_points: dict[str, str], modules: dict[str, str],
                version: str = "0.0.1") -> str:
        site = plugin_site(str(tmp_path / f"site-{distribution}"), distribution, entry_points,
                           modules, version)
        rkt.add_plugin_path(site)
        return site

    return install


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory) -> str:
    """A runnable busybox ACI named ``example.com/busybox`` (``echo hi``), built once."""
    from .aci import app_image

    return str(app_image(tmp_path_factory.mktemp("busybox-image") / "busybox.aci"))


@pytest.fixture(scope="session")
def gpg_signer(tmp_path_factory):
    """An OpenPGP key pair of its own (:class:`~rkt_core.testing.gpg.GpgSigner`)."""
    from .gpg import GpgSigner

    with GpgSigner(tmp_path_factory.mktemp("gpg-signer")) as signer:
        yield signer


@dataclass(frozen=True)
class SignedImage:
    """An image with its detached signature and the public key that made it."""

    aci: Path
    signature: Path
    key: Path
    name: str = "example.com/busybox"


@pytest.fixture(scope="session")
def signed_image(busybox_image, gpg_signer, tmp_path_factory) -> SignedImage:
    """``busybox_image`` signed by ``gpg_signer``, as ``x.aci`` next to ``x.aci.asc`` and
    ``key.asc`` (``rkt trust --prefix example.com/busybox key.asc`` trusts it)."""
    base = tmp_path_factory.mktemp("signed-image")
    aci = Path(shutil.copy(busybox_image, base / "busybox.aci"))
    key = base / "key.asc"
    key.write_bytes(gpg_signer.export_public())
    return SignedImage(aci, gpg_signer.sign(aci), key)


@pytest.fixture
def wait_for():
    """:func:`rkt_core.testing.wait.wait_for`: ``wait_for(predicate, timeout, what)``."""
    from .wait import wait_for

    return wait_for


@pytest.fixture
def fake_libc(monkeypatch):
    """The C library of ``rkt_core.sys`` replaced by a recording
    :class:`~rkt_core.testing.fakelibc.FakeLibc` for this test."""
    from .fakelibc import install

    return install(monkeypatch)
