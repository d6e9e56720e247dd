"""What kind of thing an image argument is: a store ID, a file, a URL or an appc name."""

from __future__ import annotations

import os

from ..records import dataclass

HASH, PATH, URL, NAME = "hash", "path", "url", "name"
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+.-")


@dataclass(frozen=True)
class ImageRef:
    """An image argument and its kind; ``scheme`` names the fetcher (``file`` for paths,
    ``appc`` for names)."""

    text: str
    kind: str
    scheme: str = ""


def classify(text: str) -> ImageRef:
    """Classify an image argument the way rkt does.

    ``sha512-...`` is a store ID; ``scheme://...`` a URL; an absolute path, an existing regular
    file, anything containing ``./`` or ending in ``.aci`` a path; everything else an appc name.
    """
    if text.startswith("sha512-"):
        return ImageRef(text, HASH)
    scheme = _scheme(text)
    if scheme:
        return ImageRef(text, URL, scheme)
    if (os.path.isabs(text) or "./" in text or text.endswith(".aci")
            or os.path.isfile(text)):
        return ImageRef(text, PATH, "file")
    return ImageRef(text, NAME, "appc")


def _scheme(text: str) -> str:
    """The scheme of ``text`` if it starts with ``scheme://`` (an ASCII letter, then letters,
    digits, ``+``, ``.`` or ``-``), lowercased; else "". (No regular expression: every ``rkt run``
    compiled it.)"""
    scheme, separator, _ = text.partition("://")
    scheme = scheme.lower()
    if separator and scheme.isascii() and scheme[:1].isalpha() and set(scheme) <= _SCHEME_CHARS:
        return scheme
    return ""
