"""The contract every signature verifier passes: who signed, what is refused, and which bytes
count.

A verifier's test module subclasses :class:`VerifierContract`, names the verifier, supplies two
signers (a ``signers`` fixture: objects with ``fingerprint`` and ``sign(path)``, which writes a
detached signature and returns its path) and says how ``rkt`` comes to trust a signer's key::

    from rkt_core.testing.gpg import GpgSigner
    from rkt_core.testing.verifier_contract import VerifierContract

    class TestOpenPgpContract(VerifierContract):
        verifier = "openpgp"

        @pytest.fixture(scope="class")
        @classmethod
        def signers(cls, tmp_path_factory):
            with GpgSigner(tmp_path_factory.mktemp("a")) as a, \\
                    GpgSigner(tmp_path_factory.mktemp("b")) as b:
                yield a, b

        def trust(self, rkt, signer, prefix):
            key = rkt.base / f"{signer.fingerprint}.asc"
            key.write_bytes(signer.export_public())
            rkt("trust", f"--prefix={prefix}", "--skip-fingerprint-review", key, check=0)

The suite checks that a good signature by a key trusted for the image's name gives a ``Signer``
with that key's fingerprint; that a bad signature (tampered image), a key not trusted (or trusted
for another name) and garbage instead of a signature raise ``SignatureError`` and nothing else;
that the verifier checks the open file it is given, from offset 0, without reopening it by name;
that it accepts its own signatures; and that ``rkt fetch`` takes a signed image only once its key
is trusted. The installed verifier is called in the test's process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ..errors import SignatureError
from .aci import busybox_aci
from .runner import Rkt

IMAGE_NAME = "example.com/contract"
GARBAGE = {"empty": b"", "text": b"this is not a signature\n",
           "html": b"<!DOCTYPE html><html><body>signature</body></html>\n",
           "random": bytes(range(256)) * 8}


class VerifierContract:
    """What a verifier promises (see the module docstring). Subclasses set :attr:`verifier`,
    supply the ``signers`` fixture (two signers) and implement :meth:`trust`."""

    verifier: str = ""  # the Verifier record's name

    def trust(self, rkt: Rkt, signer, prefix: str) -> None:
        """Make ``rkt`` trust ``signer``'s key for images whose name starts with ``prefix``."""
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def image(cls, tmp_path_factory) -> Path:
        """A busybox ACI named :data:`IMAGE_NAME`."""
        return busybox_aci(tmp_path_factory.mktemp("verifier-image") / "image.aci",
                           name=IMAGE_NAME)

    @pytest.fixture
    def rkt(self, tmp_path) -> Rkt:
        """``rkt`` on fresh directories, with signature checks on."""
        assert self.verifier, "set verifier in the subclass"
        rkt = Rkt(tmp_path, insecure="")
        yield rkt
        rkt.cleanup()

    @pytest.fixture
    def signed(self, image, signers, tmp_path) -> tuple[Path, Path]:
        """A copy of the image and its signature by the first signer."""
        copy = Path(shutil.copy(image, tmp_path / "image.aci"))
        return copy, signers[0].sign(copy)

    def _context(self, rkt: Rkt):
        from ..context import Context

        return Context(dir=str(rkt.data_dir), local_config=str(rkt.local_config),
                       system_config=str(rkt.system_config))

    def record(self, ctx):
        """The installed verifier (its ``Verifier`` record)."""
        (found,) = [v for v in ctx.plugins.verifiers() if v.name == self.verifier]
        return found

    def verify(self, rkt: Rkt, image, signature: Path, name: str = IMAGE_NAME):
        """The installed verifier's ``verify`` of the open file ``image`` (or the file at that
        path) with ``rkt``'s trusted keys."""
        from ..types import VerifyRequest

        ctx = self._context(rkt)
        record = self.record(ctx)
        with open(signature, "rb") as sig:
            if isinstance(image, (str, Path)):
                with open(image, "rb") as aci:
                    return record.verify(VerifyRequest(aci, sig, name, ctx))
            return record.verify(VerifyRequest(image, sig, name, ctx))

    def test_a_good_signature_by_a_trusted_key_names_the_signer(self, rkt, signers, signed):
        self.trust(rkt, signers[0], IMAGE_NAME)
        signer = self.verify(rkt, *signed)
        assert signer.fingerprint.lower() == signers[0].fingerprint.lower()

    def test_it_accepts_its_own_signatures(self, rkt, signed):
        assert self.record(self._context(rkt)).accepts(signed[1].read_bytes()[:64])

    def test_a_tampered_image_is_refused(self, rkt, signers, signed):
        self.trust(rkt, signers[0], IMAGE_NAME)
        with open(signed[0], "r+b") as f:
            f.seek(-1000, os.SEEK_END)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 1]))
        with pytest.raises(SignatureError):
            self.verify(rkt, *signed)

    def test_a_key_not_trusted_is_refused(self, rkt, signers, signed):
        self.trust(rkt, signers[1], IMAGE_NAME)
        with pytest.raises(SignatureError):
            self.verify(rkt, *signed)

    def test_a_key_trusted_for_another_name_is_refused(self, rkt, signers, signed):
        self.trust(rkt, signers[0], "example.com/other")
        with pytest.raises(SignatureError):
            self.verify(rkt, *signed)

    @pytest.mark.parametrize("kind", [*GARBAGE, "cut"])
    def test_garbage_instead_of_a_signature_is_refused(self, rkt, signers, signed, tmp_path,
                                                       kind):
        self.trust(rkt, signers[0], IMAGE_NAME)
        bad = tmp_path / "bad.sig"
        if kind == "cut":
            good = signed[1].read_bytes()
            bad.write_bytes(good[:len(good) // 2])
        else:
            bad.write_bytes(GARBAGE[kind])
        with pytest.raises(SignatureError):
            self.verify(rkt, signed[0], bad)

    def test_it_reads_the_open_file_from_offset_0_not_the_path(self, rkt, signers, signed,
                                                             tmp_path):
        self.trust(rkt, signers[0], IMAGE_NAME)
        other = tmp_path / "other.aci"
        other.write_bytes(b"something else entirely")
        with open(signed[0], "rb") as aci:
            aci.read(10)  # the verifier rewinds
            os.rename(other, signed[0])  # the path now names a different, unsigned file
            signer = self.verify(rkt, aci, signed[1])
        assert signer.fingerprint.lower() == signers[0].fingerprint.lower()

    def test_a_bad_open_file_is_refused_even_if_the_path_is_then_good(self, rkt, signers,
                                                                      signed, tmp_path):
        self.trust(rkt, signers[0], IMAGE_NAME)
        evil = tmp_path / "evil.aci"
        evil.write_bytes(b"evil content")
        with open(evil, "rb") as aci:
            os.rename(signed[0], evil)  # the path now names the signed image
            with pytest.raises(SignatureError):
                self.verify(rkt, aci, signed[1])

    def test_an_unlinked_file_with_buffered_writes(self, rkt, signers, signed):
        self.trust(rkt, signers[0], IMAGE_NAME)
        data = signed[0].read_bytes()
        with tempfile.TemporaryFile(dir=signed[0].parent) as aci:
            for i in range(0, len(data), 1000):  # the last chunks are still in the buffer
                aci.write(data[i:i + 1000])
            signer = self.verify(rkt, aci, signed[1])
        assert signer.fingerprint.lower() == signers[0].fingerprint.lower()

    def test_rkt_fetch_takes_the_image_once_its_key_is_trusted(self, rkt, signers, signed):
        aci, signature = signed
        if signature != Path(f"{aci}.asc"):  # where rkt looks for it
            shutil.copy(signature, f"{aci}.asc")
        result = rkt("fetch", aci)
        assert result.returncode == 254 and result.stderr.startswith("rkt: "), result.stderr
        assert rkt.image_keys() == []
        self.trust(rkt, signers[0], IMAGE_NAME)
        key = rkt("fetch", "--full", aci, check=0).stdout.strip()
        assert rkt.image_keys() == [key]
