"""The trusted-keys store: rkt's layout, which keys apply to a name, masking, path safety."""

import os
import shutil
import stat

import pytest

from rkt_core.errors import RktError
from rkt_core.trust.keystore import Keystore, key_info
from rkt_core.testing.gpg import GpgSigner


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    with GpgSigner(tmp_path_factory.mktemp("alice"), uid="Alice <alice@example.com>") as signer:
        yield signer


@pytest.fixture(scope="module")
def bob(tmp_path_factory):
    with GpgSigner(tmp_path_factory.mktemp("bob"), uid="Bob <bob@example.com>") as signer:
        yield signer


@pytest.fixture
def warnings():
    return []


@pytest.fixture
def ks(tmp_path, warnings):
    return Keystore(str(tmp_path / "system"), str(tmp_path / "local"), warn=warnings.append)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def test_key_info_gives_lowercase_fingerprint_and_uids(alice):
    fingerprint, uids = key_info(alice.export_public())
    assert fingerprint == alice.fingerprint.lower()
    assert uids == ["Alice <alice@example.com>"]


@pytest.mark.parametrize("data", [b"", b"not a key", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n"])
def test_key_info_refuses_what_is_not_a_public_key(data):
    with pytest.raises(RktError):
        key_info(data)


def test_key_info_refuses_secret_keys_and_several_keys(alice, bob):
    with pytest.raises(RktError, match="secret key"):
        key_info(alice.export_secret())
    with pytest.raises(RktError, match="exactly one public key, found 2"):
        key_info(alice.export_public() + bob.export_public())


def test_add_key_writes_rkt_layout_in_the_local_dir_with_modes(tmp_path, ks, alice):
    old = os.umask(0o077)
    try:
        path = ks.add_key(alice.export_public(), prefix="example.com/hello")
    finally:
        os.umask(old)
    fingerprint = alice.fingerprint.lower()
    assert path == str(tmp_path / "local/trustedkeys/prefix.d/example.com/hello" / fingerprint)
    assert open(path, "rb").read() == alice.export_public()
    assert _mode(path) == 0o644
    for d in ("trustedkeys", "trustedkeys/prefix.d", "trustedkeys/prefix.d/example.com",
              "trustedkeys/prefix.d/example.com/hello"):
        assert _mode(tmp_path / "local" / d) == 0o755, d
    assert not (tmp_path / "system").exists()
    root = ks.add_key(alice.export_public(), root=True)
    assert root == str(tmp_path / "local/trustedkeys/root.d" / fingerprint)


def test_add_key_takes_exactly_one_of_prefix_and_root(ks, alice):
    with pytest.raises(ValueError):
        ks.add_key(alice.export_public())
    with pytest.raises(ValueError):
        ks.add_key(alice.export_public(), prefix="example.com", root=True)


@pytest.mark.parametrize("prefix", [
    "evil.com/../coreos.com/etcd", "a/../../../../tmp/x", "../x", "example.com/..", "./x",
    "example.com/./x", "example.com//x", "/etc/rkt", "example.com/", "", ".", "..",
])
def test_add_key_refuses_prefixes_that_are_not_safe_names(tmp_path, ks, alice, prefix):
    with pytest.raises(RktError):
        ks.add_key(alice.export_public(), prefix=prefix)
    written = [os.path.join(d, f) for d, _, files in os.walk(tmp_path) for f in files]
    assert written == []


def test_keys_for_refuses_names_that_climb_out(ks, alice):
    ks.add_key(alice.export_public(), prefix="coreos.com/etcd")
    assert ks.keys_for("coreos.com/etcd")
    with pytest.raises(RktError):
        ks.keys_for("evil.com/../coreos.com/etcd")


def test_prefix_matches_whole_path_segments(ks, alice):
    path = ks.add_key(alice.export_public(), prefix="example.com/hello")
    assert ks.keys_for("example.com/hello") == [path]
    assert ks.keys_for("example.com/hello/world") == [path]
    for name in ("example.com", "example.com/hellooo", "example.com/hel", "other.com/hello"):
        assert ks.keys_for(name) == [], name


def test_shorter_prefix_does_not_cover_a_sibling_that_starts_the_same(ks, alice):
    ks.add_key(alice.export_public(), prefix="example.com/hel")
    assert ks.keys_for("example.com/hello") == []
    assert ks.keys_for("example.com/hel/lo")


def test_root_keys_apply_to_every_name_and_keys_add_up(ks, alice, bob):
    root = ks.add_key(alice.export_public(), root=True)
    prefix = ks.add_key(bob.export_public(), prefix="example.com")
    assert ks.keys_for("other.org/app") == [root]
    assert sorted(ks.keys_for("example.com/app")) == sorted([root, prefix])


def test_system_keys_apply_and_local_copy_overrides(tmp_path, ks, alice):
    fingerprint = alice.fingerprint.lower()
    system = _put(tmp_path / "system/trustedkeys/prefix.d/example.com" / fingerprint,
                  alice.export_public())
    assert ks.keys_for("example.com/app") == [system]
    local = ks.add_key(alice.export_public(), prefix="example.com/app")
    assert ks.keys_for("example.com/app") == [local]


@pytest.mark.parametrize("system, local", [
    ("root.d", "root.d"),
    ("prefix.d/example.com", "prefix.d/example.com"),
    ("prefix.d/example.com", "root.d"),
    ("root.d", "prefix.d/example.com/app"),
])
def test_empty_local_file_masks_a_system_key(tmp_path, ks, alice, bob, system, local):
    fingerprint = alice.fingerprint.lower()
    _put(tmp_path / "system/trustedkeys" / system / fingerprint, alice.export_public())
    kept = _put(tmp_path / "system/trustedkeys/root.d" / bob.fingerprint.lower(), bob.export_public())
    assert len(ks.keys_for("example.com/app")) == 2
    _put(tmp_path / "local/trustedkeys" / local / fingerprint, b"")
    assert ks.keys_for("example.com/app") == [kept]


def test_file_named_unlike_its_fingerprint_is_ignored_with_a_warning(tmp_path, ks, alice, bob,
                                                                   warnings):
    d = tmp_path / "local/trustedkeys/prefix.d/example.com"
    _put(d / bob.fingerprint.lower(), alice.export_public())
    _put(d / "notes.txt", b"hello")
    good = ks.add_key(bob.export_public(), prefix="example.com/app")
    assert ks.keys_for("example.com/app") == [good]
    assert any("fingerprint mismatch" in w for w in warnings)
    assert any("notes.txt" in w for w in warnings)


def test_directories_and_missing_dirs_are_fine(tmp_path, ks, alice):
    assert ks.keys_for("example.com/app") == []
    os.makedirs(tmp_path / "local/trustedkeys/root.d/sub")
    path = ks.add_key(alice.export_public(), prefix="example.com/app/sub")
    assert ks.keys_for("example.com/app") == []
    assert ks.keys_for("example.com/app/sub") == [path]
    shutil.rmtree(tmp_path / "local")
    assert ks.keys_for("example.com/app/sub") == []
