"""What kind of thing an image argument is: a store ID, a file, a URL or an appc name."""

from __future__ import annotations

import os
import re

from ..records import dataclass

HASH, PATH, URL, NAME = "hash", "path", "url", "name"
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


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
    match = _SCHEME.match(text)
    if match:
        return ImageRef(text, URL, match.group(1).lower())
    if (os.path.isabs(text) or "./" in text or text.endswith(".aci")
            or os.path.isfile(text)):
        return ImageRef(text, PATH, "file")
    return ImageRef(text, NAME, "appc")
