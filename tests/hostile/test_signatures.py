"""Hostile signatures through ``rkt fetch`` and ``rkt run``, with the machine's gpg: garbage,
truncated, a signature of another image, a key trusted for another prefix, an expired and a
revoked key, a signature file far larger than a signature. Each is refused with rkt's clear
error, and nothing is imported: the store holds no row, blob, tree or temporary file, no pod
is made. The verifier's own cases are unit-tested in tests/unit/test_openpgp.py.
"""

from __future__ import annotations

import os

import pytest
from hostile import assert_clear_error, store_state

from rkt_core.testing.aci import busybox_aci
from rkt_core.testing.gpg import GpgSigner
from rkt_core.testing.runner import Rkt

PREFIX = "example.com/busybox"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Signers: a good one, one whose key expired, one whose key is revoked."""
    base = tmp_path_factory.mktemp("keys")
    with GpgSigner(base / "good") as good, GpgSigner(base / "expired", expired=True) as expired, \
            GpgSigner(base / "revoked") as revoked:
        yield {"good": good, "expired": expired, "revoked": revoked}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    base = tmp_path_factory.mktemp("images")
    return (busybox_aci(base / "bb.aci", exec=["/bin/true"]),
            busybox_aci(base / "other.aci", name="example.com/other", exec=["/bin/false"]))


def trusted_rkt(tmp_path, signer: GpgSigner, prefix: str = PREFIX) -> Rkt:
    """``rkt`` whose local configuration trusts ``signer``'s key for ``prefix``."""
    rkt = Rkt(tmp_path, insecure="")  # signatures checked
    tmp_path.mkdir(exist_ok=True)
    key = tmp_path / "key.asc"
    key.write_bytes(signer.export_public())
    rkt("trust", f"--prefix={prefix}", "--skip-fingerprint-review", key, check=0)
    return rkt


@pytest.fixture(scope="module")
def cases(keys, images) -> dict[str, tuple[GpgSigner, str, bytes, str]]:
    """case -> (the key trusted, the prefix it is trusted for, the signature file, what the
    error says)."""
    aci, other = images
    good, expired, revoked = keys["good"], keys["expired"], keys["revoked"]
    sign = lambda signer, path: signer.sign(path).read_bytes()  # noqa: E731
    own = sign(good, aci)
    revoked_signature = sign(revoked, aci)
    revoked.revoke()
    return {
        "garbage": (good, PREFIX, b"-----BEGIN PGP SIGNATURE-----\n\ngarbage\n", "verification "
                    "failed"),
        "binary garbage": (good, PREFIX, bytes([0x88]) + os.urandom(300), "verification failed"),
        "truncated": (good, PREFIX, own[:len(own) // 2], "verification failed"),
        "of another image": (good, PREFIX, sign(good, other), "does not match its signature"),
        "by a key trusted for another prefix": (good, "example.com/other", own,
                                                "signature made by unknown entity"),
        "by an expired key": (expired, PREFIX, sign(expired, aci), "expired"),
        "by a revoked key": (revoked, PREFIX, revoked_signature, "revoked"),
        "of 64 MiB": (good, PREFIX, own + b"\n" * (64 << 20),
                      "the signature is larger than 1048576 bytes"),
    }


@pytest.mark.parametrize("command", ["fetch", "run"])
def test_hostile_signatures_are_refused_and_import_nothing(tmp_path, cases, images, command,
                                                           figures):
    aci, _ = images
    failures = []
    for n, (case, (signer, prefix, signature, expected)) in enumerate(cases.items()):
        base = tmp_path / f"case-{n}"
        rkt = trusted_rkt(base, signer, prefix)
        signature_file = base / "bb.aci.asc"
        signature_file.write_bytes(signature)
        if command == "run":  # rkt run's --signature follows the image it is for
            done = rkt("run", "--stage1-name=fly", aci, f"--signature={signature_file}")
        else:
            done = rkt("fetch", f"--signature={signature_file}", aci)
        try:
            assert_clear_error(done, expected)
            state = store_state(rkt.data_dir)
            assert state["rows"] == state["blob"] == state["tmp"] == state["trees"] == []
            pods = rkt.data_dir / "pods"
            assert not pods.exists() or [p for d in pods.iterdir() for p in d.iterdir()] == []
        except AssertionError as error:
            failures.append(f"{case}: {error}")
    figures.add("signatures", len(cases), len(failures))
    assert not failures, "\n".join(failures)


def test_the_good_signature_is_accepted(tmp_path, keys, images, figures):
    """The cases above fail for what they are, not because nothing could pass."""
    aci, _ = images
    rkt = trusted_rkt(tmp_path, keys["good"])
    signature = keys["good"].sign(aci)
    done = rkt("fetch", f"--signature={signature}", aci)
    figures.add("signatures")
    assert done.returncode == 0, done.stderr
    assert len(store_state(rkt.data_dir)["rows"]) == 1
