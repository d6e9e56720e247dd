"""The built-in OpenPGP verifier: the verifier contract, and what is OpenPGP's own (key prefixes,
root keys, masked system keys, expired and revoked keys, binary signatures, cosigners, hints)."""

import os

import pytest

from rkt_core.builtins import openpgp
from rkt_core.context import Context
from rkt_core.errors import SignatureError
from rkt_core.trust.keystore import Keystore
from rkt_core.plugins import Plugins
from rkt_core.testing.gpg import GpgSigner
from rkt_core.testing.verifier_contract import VerifierContract
from rkt_core.types import VerifyRequest

NAME = "example.com/hello"


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    with GpgSigner(tmp_path_factory.mktemp("alice"), uid="Alice <alice@example.com>") as signer:
        yield signer


@pytest.fixture(scope="module")
def mallory(tmp_path_factory):
    with GpgSigner(tmp_path_factory.mktemp("mallory")) as signer:
        yield signer


@pytest.fixture
def ctx(tmp_path):
    return Context(system_config=str(tmp_path / "system"), local_config=str(tmp_path / "local"))


@pytest.fixture
def keystore(ctx):
    return Keystore(ctx.system_config, ctx.local_config)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "hello.aci"
    path.write_bytes(os.urandom(200_000))
    return path


def verify(ctx, image, name=NAME, signature=None):
    with open(image, "rb") as aci, open(signature or f"{image}.asc", "rb") as sig:
        return openpgp.verify(VerifyRequest(aci, sig, name, ctx))


def test_good_signature_names_the_signer(ctx, keystore, image, alice):
    keystore.add_key(alice.export_public(), prefix=NAME)
    alice.sign(image)
    signer = verify(ctx, image)
    assert signer.fingerprint == alice.fingerprint.lower()
    assert signer.uids == ("Alice <alice@example.com>",)


def test_key_for_a_parent_prefix_covers_the_image(ctx, keystore, image, alice):
    keystore.add_key(alice.export_public(), prefix="example.com")
    alice.sign(image)
    assert verify(ctx, image).fingerprint == alice.fingerprint.lower()


def test_binary_signature_is_accepted_too(ctx, keystore, image, alice):
    keystore.add_key(alice.export_public(), prefix=NAME)
    sig = alice.sign(image, armor=False)
    head = sig.read_bytes()[:64]
    assert not head.startswith(b"-----") and openpgp.accepts(head)
    assert verify(ctx, image).fingerprint == alice.fingerprint.lower()


def test_accepts_armored_and_binary_signatures_only(image, alice):
    assert openpgp.accepts(alice.sign(image).read_bytes()[:64])
    assert not openpgp.accepts(b"hello")
    assert not openpgp.accepts(b"")
    assert not openpgp.accepts(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")


def test_key_trusted_for_another_prefix_fails_with_a_trust_hint(ctx, keystore, image, alice):
    keystore.add_key(alice.export_public(), prefix="example.com/other")
    keystore.add_key(alice.export_public(), prefix="example.com/hel")
    alice.sign(image)
    with pytest.raises(SignatureError, match="signature made by unknown entity") as err:
        verify(ctx, image)
    assert f'rkt trust --prefix "{NAME}"' in err.value.hint
    assert "--insecure-options=image" in err.value.hint


def test_untrusted_signer_fails_even_when_another_key_is_trusted(ctx, keystore, image, alice,
                                                                mallory):
    keystore.add_key(alice.export_public(), prefix=NAME)
    mallory.sign(image)
    with pytest.raises(SignatureError, match="unknown entity") as err:
        verify(ctx, image)
    assert 'rkt trust --prefix "example.com/hello"' in err.value.hint


def test_no_keys_at_all_fails_with_the_hint(ctx, image, mallory):
    mallory.sign(image)
    with pytest.raises(SignatureError) as err:
        verify(ctx, image)
    assert "rkt trust --prefix" in err.value.hint


def test_root_key_trusts_every_name(ctx, keystore, image, alice):
    keystore.add_key(alice.export_public(), root=True)
    alice.sign(image)
    assert verify(ctx, image, name="other.org/anything").fingerprint == alice.fingerprint.lower()


def test_masked_system_key_is_not_trusted(ctx, keystore, image, alice):
    fingerprint = alice.fingerprint.lower()
    system = os.path.join(ctx.system_config, "trustedkeys", "root.d")
    os.makedirs(system)
    with open(os.path.join(system, fingerprint), "wb") as f:
        f.write(alice.export_public())
    alice.sign(image)
    assert verify(ctx, image)
    local = os.path.join(ctx.local_config, "trustedkeys", "root.d")
    os.makedirs(local)
    open(os.path.join(local, fingerprint), "wb").close()
    with pytest.raises(SignatureError, match="unknown entity"):
        verify(ctx, image)


def test_expired_key_fails(ctx, keystore, image, tmp_path):
    with GpgSigner(tmp_path / "old", expired=True) as old:
        keystore.add_key(old.export_public(), prefix=NAME)
        old.sign(image)
    with pytest.raises(SignatureError, match="expired key"):
        verify(ctx, image)


def test_revoked_key_fails(ctx, keystore, image, tmp_path):
    with GpgSigner(tmp_path / "gone") as gone:
        gone.sign(image)
        gone.revoke()
        keystore.add_key(gone.export_public(), prefix=NAME)
    with pytest.raises(SignatureError, match="revoked key"):
        verify(ctx, image)


def test_unknown_cosigner_is_skipped_as_rkt_does(ctx, keystore, image, alice, mallory, tmp_path):
    keystore.add_key(alice.export_public(), prefix=NAME)
    both = tmp_path / "both.sig"
    both.write_bytes(mallory.sign(image, armor=False).read_bytes()
                     + alice.sign(image, armor=False).read_bytes())
    assert verify(ctx, image, signature=both).fingerprint == alice.fingerprint.lower()


def test_is_declared_as_a_plugin():
    pm = Plugins(discover=False)
    info = pm.register(openpgp, "verify-openpgp")
    assert info.status == "loaded"
    assert [v.name for v in pm.verifiers()] == ["openpgp"]


class TestOpenPgpContract(VerifierContract):
    verifier = "openpgp"

    @pytest.fixture(scope="class")
    @classmethod
    def signers(cls, alice, mallory):
        return alice, mallory

    def trust(self, rkt, signer, prefix):
        key = rkt.base / f"{signer.fingerprint}.asc"
        key.write_bytes(signer.export_public())
        rkt("trust", f"--prefix={prefix}", "--skip-fingerprint-review", key, check=0)
