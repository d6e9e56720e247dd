"""The trusted-keys store, laid out as rkt lays it out.

Under each of the system and local config directories::

    trustedkeys/root.d/<fingerprint>                 trusted for every image
    trustedkeys/prefix.d/<prefix>/<fingerprint>      trusted for images named <prefix> or <prefix>/...

The fingerprint is the key's lowercase hex OpenPGP v4 fingerprint and the prefix is not escaped
(``example.com/hello`` is two nested directories), so a prefix becomes a path only after it has been
validated as an image name with no empty, ``.`` or ``..`` segment. ``rkt trust`` writes to the local
directory only. The local directory is read after the system one, so a local key replaces a system
key with the same fingerprint and an empty local file named like a system key disables that key
(as rkt's signing guide tells administrators to do).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Callable, Iterator

import gnupg

from ..appc.identifiers import check_path_safe, validate_ac_identifier
from ..errors import RktError
from ..sys.fs import fsync_dir, write_atomic

_ARMOR_HEADER = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"


@contextlib.contextmanager
def scratch_gpg() -> Iterator[gnupg.GPG]:
    """A gpg with an empty, private GNUPGHOME that is deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="rkt-gpg-") as home:  # mkdtemp: mode 0700
        yield gnupg.GPG(gnupghome=home)


def _scan(gpg: gnupg.GPG, data: bytes) -> tuple[str, list[str]]:
    if _ARMOR_HEADER not in data:
        if b"-----BEGIN PGP PRIVATE KEY BLOCK-----" in data:
            raise RktError("this is a secret key: give the public key (gpg --armor --export)")
        raise RktError("not an armored OpenPGP public key")
    keys = list(gpg.scan_keys_mem(data))
    if any(key["type"] == "sec" for key in keys):
        raise RktError("this is a secret key: give the public key (gpg --armor --export)")
    if len(keys) != 1:
        raise RktError(f"expected exactly one public key, found {len(keys)}")
    return keys[0]["fingerprint"].lower(), list(keys[0]["uids"])


def key_info(armored: bytes) -> tuple[str, list[str]]:
    """The fingerprint (lowercase hex) and user ids of the one public key in ``armored``.

    Raises :class:`RktError` for anything else: no key, several keys, a secret key.
    """
    with scratch_gpg() as gpg:
        return _scan(gpg, armored)


def check_prefix(prefix: str, what: str = "prefix") -> str:
    """``prefix`` if it is a valid image name that is safe as a relative path, else an RktError."""
    return check_path_safe(validate_ac_identifier(prefix, what=what), what)


class Keystore:
    """The trusted keys of the system and local config directories."""

    def __init__(self, system_config: str, local_config: str, *,
                 warn: Callable[[str], None] | None = None):
        self.local_config = local_config
        self.system_dir = os.path.join(system_config, "trustedkeys")
        self.local_dir = os.path.join(local_config, "trustedkeys")
        self._warn = warn or (lambda message: print(f"rkt: {message}", file=sys.stderr))

    def _key_dirs(self, name: str) -> list[str]:
        """The directories whose keys apply to ``name``: system then local, each root.d then
        the prefixes from the shortest; later ones win."""
        parts = check_prefix(name, "image name").split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return [os.path.join(base, sub)
                for base in (self.system_dir, self.local_dir)
                for sub in ["root.d", *(os.path.join("prefix.d", p) for p in prefixes)]]

    def keys_for(self, name: str) -> list[str]:
        """Paths of the keys trusted for images named ``name``.

        root.d keys and the keys of every prefix that is ``name`` or one of its parents (whole path
        segments: ``example.com/hel`` does not cover ``example.com/hello``); a key found later
        replaces an earlier one with the same fingerprint, and an empty file removes it. A file
        whose name is not the fingerprint of the single public key it holds is skipped with a
        warning.
        """
        found: dict[str, str] = {}
        with scratch_gpg() as gpg:
            for directory in self._key_dirs(name):
                try:
                    entries = sorted(os.scandir(directory), key=lambda e: e.name)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                for entry in entries:
                    if not entry.is_file():
                        continue
                    with open(entry.path, "rb") as f:
                        data = f.read()
                    if not data:
                        found.pop(entry.name, None)
                        continue
                    try:
                        fingerprint, _ = _scan(gpg, data)
                    except RktError as e:
                        self._warn(f'ignoring trusted key "{entry.path}": {e}')
                        continue
                    if fingerprint != entry.name:
                        self._warn(f'ignoring trusted key "{entry.path}": fingerprint mismatch: '
                                   f'"{entry.name}":"{fingerprint}"')
                        continue
                    found[fingerprint] = entry.path
        return list(found.values())

    def prefix_has_keys(self, name: str) -> bool:
        """Whether a key is trusted for ``name`` or one of its parent prefixes (root.d keys do
        not count): then discovered keys are not offered silently."""
        for directory in self._key_dirs(name):
            if os.path.basename(os.path.dirname(directory)) == "trustedkeys":
                continue  # root.d
            try:
                if any(e.is_file() and e.stat().st_size for e in os.scandir(directory)):
                    return True
            except (FileNotFoundError, NotADirectoryError):
                continue
        return False

    def add_key(self, armored: bytes, *, prefix: str | None = None, root: bool = False) -> str:
        """Trust the public key ``armored`` for ``prefix`` (or for every image with ``root``).

        Writes ``<local>/trustedkeys/{root.d,prefix.d/<prefix>}/<fingerprint>`` durably (dirs
        0755, file 0644) and returns its path.
        """
        if root == (prefix is not None):
            raise ValueError("add_key takes either a prefix or root=True")
        parts = ["root.d"] if root else ["prefix.d", *check_prefix(prefix).split("/")]
        fingerprint, _ = key_info(armored)
        directory = self.local_config
        os.makedirs(directory, mode=0o755, exist_ok=True)
        for part in ["trustedkeys", *parts]:
            directory = _mkdir(directory, part)
        path = os.path.join(directory, fingerprint)
        write_atomic(path, armored, 0o644)
        return path


def _mkdir(parent: str, name: str) -> str:
    """``parent/name``, created with mode 0755 (whatever the umask) if it is missing."""
    path = os.path.join(parent, name)
    if not os.path.isdir(path):
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            pass
        else:
            os.chmod(path, 0o755)
            fsync_dir(parent)
    return path
