"""OpenPGP keys and image signatures for tests, made with the machine's ``gpg``.

Public helper for rkt's own tests and for plugin authors::

    from rkt_core.testing.gpg import GpgSigner

    with GpgSigner(tmp_path) as signer:
        key = signer.export_public()          # armored, for `rkt trust`
        asc = signer.sign(tmp_path / "x.aci")  # tmp_path / "x.aci.asc"
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

# gpg-agent's sockets (S.gpg-agent.browser ...) live in GNUPGHOME; a socket path has < 108 bytes.
_MAX_PARENT = 60
_DAY = 86400


class GpgSigner:
    """A fresh key pair (no passphrase) in its own GNUPGHOME under ``directory``.

    ``algorithm`` is anything ``gpg --quick-gen-key`` takes (``ed25519``, ``rsa2048``).
    ``expired=True`` makes a key that was valid for one day, two days ago; its signatures are
    dated inside that day, so only the key's expiry makes them fail.
    If ``directory`` is too deep for gpg-agent's sockets, the home goes to the system temp dir.
    Call :meth:`close` (or use ``with``) to stop the agent.
    """

    def __init__(self, directory: str | Path, *, uid: str = "rkt test <rkt-test@example.com>",
                 algorithm: str = "ed25519", expired: bool = False):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        parent = directory if len(str(directory.resolve())) <= _MAX_PARENT else None
        self.home = Path(tempfile.mkdtemp(prefix="gpg-", dir=parent))
        self._owned_tmp = parent is None
        self.uid = uid
        # An expired key is made two days ago and used an hour later. gpg's faked clock runs on
        # from where each process sets it: using it at the very time the key was made failed
        # whenever the key generation itself took longer ("created in the future").
        self._faked_time = int(time.time()) - 2 * _DAY if expired else None
        self._gpg("--passphrase", "", "--quick-gen-key", uid, algorithm, "sign",
                  "1d" if expired else "never")
        if expired:
            self._faked_time += 3600
        listing = self._gpg("--with-colons", "--list-keys", uid).stdout.decode()
        self.fingerprint = next(line.split(":")[9] for line in listing.splitlines()
                                if line.startswith("fpr:"))

    def _gpg(self, *args: str) -> subprocess.CompletedProcess:
        cmd = ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--pinentry-mode", "loopback"]
        if self._faked_time is not None:
            cmd += ["--faked-system-time", str(self._faked_time)]
        return subprocess.run([*cmd, *args], check=True, capture_output=True)

    def export_public(self) -> bytes:
        """The public key, ASCII-armored."""
        return self._gpg("--armor", "--export", self.fingerprint).stdout

    def export_secret(self) -> bytes:
        """The secret key, ASCII-armored (to test that rkt refuses it)."""
        return self._gpg("--passphrase", "", "--armor", "--export-secret-keys",
                         self.fingerprint).stdout

    def sign(self, path: str | Path, *, armor: bool = True) -> Path:
        """Write the detached signature of ``path`` to ``<path>.asc`` (binary if not ``armor``)."""
        out = Path(f"{path}.asc")
        self._gpg(*(["--armor"] if armor else []), "--local-user", self.fingerprint,
                  "--output", str(out), "--detach-sign", str(path))
        return out

    def revoke(self) -> None:
        """Revoke the key with the revocation certificate gpg made with it."""
        cert = (self.home / "openpgp-revocs.d" / f"{self.fingerprint}.rev").read_text()
        cert = cert.replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----")
        subprocess.run(["gpg", "--homedir", str(self.home), "--batch", "--import"],
                       input=cert.encode(), check=True, capture_output=True)

    def close(self) -> None:
        """Stop this home's gpg-agent (and remove the home if it is in the system temp dir)."""
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
                       capture_output=True)
        if self._owned_tmp:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "GpgSigner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
