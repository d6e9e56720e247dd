"""Built-in plugin: check detached OpenPGP signatures against rkt's trusted keys.

The keys that count for an image are those :class:`rkt_core.trust.keystore.Keystore` finds for its
manifest name; only they are imported into a throwaway keyring, so gpg's "always" trust model
trusts exactly them. A signature is accepted when gpg reports a good, valid signature whose primary
key is one of them; a bad signature, or one made by an expired or revoked key, is refused.
"""

from __future__ import annotations

import io
import os

from ..errors import SignatureError
from ..hookspecs import hookimpl
from ..types import Signer, Verifier, VerifyRequest

RKT_PLUGIN_API = 1

MAX_SIGNATURE_SIZE = 1 << 20  # a detached signature is a few hundred bytes
_ARMOR = b"-----BEGIN PGP SIGNATURE-----"
_VERIFY_ARGS = ["--trust-model", "always", "--no-auto-key-retrieve"]
_NO_PUBKEY = "9"  # gpg's ERRSIG return code for "no public key"


@hookimpl
def rkt_verifiers():
    """Declare the ``openpgp`` verifier."""
    return [Verifier("openpgp", verify, accepts, "detached OpenPGP signatures (armored or binary)")]


def accepts(head: bytes) -> bool:
    """An armored signature, or a binary OpenPGP packet stream starting with a signature packet."""
    if head.lstrip().startswith(_ARMOR):
        return True
    if not head or not head[0] & 0x80:
        return False
    tag = head[0] & 0x3F if head[0] & 0x40 else (head[0] >> 2) & 0x0F
    return tag == 2


def verify(request: VerifyRequest) -> Signer:
    """Check ``request.signature`` over ``request.image`` with the keys trusted for its name."""
    from ..trust.keystore import Keystore, scratch_gpg  # gnupg: only when a signature is checked

    ctx, name = request.context, request.image_name
    keys = Keystore(ctx.system_config, ctx.local_config, warn=ctx.warn).keys_for(name)
    request.signature.seek(0)
    signature = request.signature.read(MAX_SIGNATURE_SIZE + 1)
    if len(signature) > MAX_SIGNATURE_SIZE:
        raise _failed(name, f"the signature is larger than {MAX_SIGNATURE_SIZE} bytes")
    with scratch_gpg() as gpg:
        if keys:
            gpg.import_keys(b"\n".join(_read(path) for path in keys))
        trusted = {key["fingerprint"].upper(): list(key["uids"]) for key in gpg.list_keys()}
        # gpg reads the image itself, through our descriptor: opening /proc/<our pid>/fd/<n>
        # gives gpg its own open file (from offset 0) on the very inode behind request.image,
        # even if that path has since been renamed over or unlinked; no path is looked up again,
        # and gpg streams the data instead of us loading it into memory. The seek flushes bytes
        # a writer may still hold in the file object's buffer. gpg recognises armored and binary
        # signatures by itself, which is rkt's "armored, else binary" fallback.
        request.image.seek(0)
        result = gpg.verify_file(io.BytesIO(signature), extra_args=_VERIFY_ARGS,
                                 data_filename=f"/proc/{os.getpid()}/fd/{request.image.fileno()}")
    return _signer(name, _signatures(result.stderr), trusted)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _signatures(gpg_output: str) -> list[dict[str, str]]:
    """gpg's status lines grouped per signature (each starts with NEWSIG): keyword -> value."""
    signatures: list[dict[str, str]] = []
    for line in gpg_output.splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        keyword, _, value = line[9:].partition(" ")
        if keyword == "NEWSIG" or not signatures:
            signatures.append({})
        signatures[-1].setdefault(keyword, value)
    return signatures


def _signer(name: str, signatures: list[dict[str, str]], trusted: dict[str, list[str]]) -> Signer:
    """The signer of the first good signature by a trusted key; any trusted bad one fails.

    As in rkt, signatures by unknown keys are skipped.
    """
    good = None
    for sig in signatures:
        if "BADSIG" in sig:
            raise _failed(name, "openpgp: invalid signature: the image does not match its signature")
        if "REVKEYSIG" in sig:
            raise _failed(name, "openpgp: signature made by revoked key")
        if "EXPKEYSIG" in sig:
            raise _failed(name, "openpgp: signature made by expired key")
        if "EXPSIG" in sig:
            raise _failed(name, "openpgp: invalid signature: the signature has expired")
        errsig = sig.get("ERRSIG", "").split()
        if len(errsig) > 5 and errsig[5] != _NO_PUBKEY:
            raise _failed(name, f"openpgp: invalid signature: gpg cannot check it (error {errsig[5]})")
        if "GOODSIG" in sig and "VALIDSIG" in sig and good is None:
            fields = sig["VALIDSIG"].split()
            primary = fields[9] if len(fields) > 9 else fields[0]
            if primary.upper() in trusted:
                good = Signer(primary.lower(), tuple(trusted[primary.upper()]))
    if good is not None:
        return good
    if not any("NEWSIG" in sig for sig in signatures):
        raise _failed(name, "keystore: no valid signatures found in signature file")
    raise SignatureError(
        f'image "{name}" verification failed: openpgp: signature made by unknown entity',
        hint=("If you expected the signing key to change, try running:\n"
              f'    rkt trust --prefix "{name}"\n'
              "(--insecure-options=image skips signature verification altogether)"))


def _failed(name: str, reason: str) -> SignatureError:
    return SignatureError(f'image "{name}" verification failed: {reason}')
