"""Content digests (``sha256:<hex>``, ``sha512:<hex>``): parsing and checking.

Every byte that comes from a registry is checked against a digest before it is used: manifests,
image configs, layer blobs and the uncompressed layers (``rootfs.diff_ids``).
"""

from __future__ import annotations

import hashlib
import re

from rkt_core.plugin_api import ImageError

_HEX_LEN = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"([a-z0-9]+):([0-9a-f]+)\Z")


class DigestMismatch(ImageError):
    """Content does not hash to the digest that names it."""


def parse_digest(text: object, what: str = "digest") -> str:
    """``text`` if it is a well-formed sha256 or sha512 digest, else ImageError."""
    match = _DIGEST.match(text) if isinstance(text, str) else None
    if not match or _HEX_LEN.get(match.group(1)) != len(match.group(2)):
        raise ImageError(f"invalid {what} {text!r}: expected sha256:<64 hex> or sha512:<128 hex>")
    return text


def hasher(digest: str):
    """A new hashlib object of the algorithm of ``digest``."""
    return hashlib.new(digest.split(":", 1)[0])


def digest_of(data: bytes, like: str = "sha256:") -> str:
    """The digest of ``data`` with the algorithm of ``like``."""
    algorithm = like.split(":", 1)[0]
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def check(digest: str, actual_hex: str, what: str) -> None:
    """Raise :class:`DigestMismatch` unless ``actual_hex`` is the hex part of ``digest``."""
    algorithm, expected = digest.split(":", 1)
    if actual_hex != expected:
        raise DigestMismatch(f"{what}: digest mismatch: expected {digest}, got "
                             f"{algorithm}:{actual_hex}")


def check_bytes(digest: str, data: bytes, what: str) -> None:
    """Raise :class:`DigestMismatch` unless ``data`` hashes to ``digest``."""
    check(digest, hashlib.new(digest.split(":", 1)[0], data).hexdigest(), what)
