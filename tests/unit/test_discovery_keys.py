"""Which prefixes count as "already has a key" before discovered keys are offered."""

import pytest

from rkt_core.trust.keystore import Keystore
from rkt_core.testing.gpg import GpgSigner


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    with GpgSigner(tmp_path_factory.mktemp("k")) as signer:
        yield signer.export_public()


@pytest.fixture
def ks(tmp_path):
    return Keystore(str(tmp_path / "system"), str(tmp_path / "local"), warn=lambda m: None)


def test_a_key_for_the_prefix_or_a_parent_counts(ks, key):
    assert not ks.prefix_has_keys("example.com/hello")
    ks.add_key(key, prefix="example.com")
    assert ks.prefix_has_keys("example.com/hello")
    assert ks.prefix_has_keys("example.com")
    assert not ks.prefix_has_keys("example.org/hello")


def test_root_keys_siblings_and_empty_masks_do_not_count(tmp_path, ks, key):
    ks.add_key(key, root=True)
    ks.add_key(key, prefix="example.com/hello2")
    assert not ks.prefix_has_keys("example.com/hello")
    mask = tmp_path / "local/trustedkeys/prefix.d/example.com/hello/0123"
    mask.parent.mkdir(parents=True)
    mask.write_bytes(b"")
    assert not ks.prefix_has_keys("example.com/hello")


def test_system_keys_count(tmp_path, key):
    writer = Keystore(str(tmp_path / "unused"), str(tmp_path / "sysdir"))
    writer.add_key(key, prefix="example.com")  # written to its local dir...
    ks = Keystore(str(tmp_path / "sysdir"), str(tmp_path / "other"))  # ...read as system here
    assert ks.prefix_has_keys("example.com/hello")
