"""Docker image references: ``docker://[host[:port]/]name[:tag][@digest]``, normalised as Docker
does and named as docker2aci named the converted images.

The first path component is a registry host if it has a ``.`` or a ``:`` or is ``localhost``;
otherwise the image is on Docker Hub (``registry-1.docker.io``), where a one-component name gets
``library/``. A digest wins over a tag; with neither, the tag is ``latest``. Repository components
follow Docker's grammar (lowercase, ``.``/``_``/``-`` only between alphanumerics), so no ``..`` or
empty segment ever reaches a registry URL or a file name.
"""

from __future__ import annotations

import re

from rkt_core.plugin_api import ImageError, UsageError, dataclass

from .digest import parse_digest

DEFAULT_REGISTRY = "registry-1.docker.io"
HUB_NAMES = ("registry-1.docker.io", "index.docker.io", "docker.io")
MAX_NAME = 255

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"[\w][\w.-]{0,127}\Z", re.ASCII)
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?\Z")
_AC_BAD_CHAR = re.compile(r"[^a-z0-9\-._~/]")


@dataclass(frozen=True)
class DockerRef:
    """A parsed reference. ``original`` is the text after ``docker://``; ``tag`` is empty when
    the image is pulled by ``digest``, and ``digest`` empty when pulled by tag."""

    original: str
    registry: str
    repository: str
    tag: str = "latest"
    digest: str = ""

    @property
    def reference(self) -> str:
        """What the manifest URL names: the digest, else the tag."""
        return self.digest or self.tag

    @property
    def aci_name(self) -> str:
        """The converted image's name, docker2aci's: ``127.0.0.1_5000/test/busybox``."""
        return sanitize_ac_identifier(f"{self.registry}/{self.repository}")

    def __str__(self) -> str:
        suffix = f"@{self.digest}" if self.digest else f":{self.tag}"
        return f"{self.registry}/{self.repository}{suffix}"


def sanitize_ac_identifier(text: str) -> str:
    """docker2aci's rule: lowercase, characters outside ``[a-z0-9-._~/]`` become ``_``, and
    ``-._~/`` trimmed from both ends."""
    return _AC_BAD_CHAR.sub("_", text.lower()).strip("-._~/")


def parse(text: str) -> DockerRef:
    """Parse ``docker://...`` (the scheme is optional) into a :class:`DockerRef`."""
    original = text[9:] if text[:9].lower() == "docker://" else text
    try:
        return _parse(original)
    except ImageError as e:
        raise UsageError(f'invalid docker image reference "{text}": {e}') from None


def _parse(original: str) -> DockerRef:
    rest, _, digest = original.partition("@")
    if digest:
        parse_digest(digest)
    tag = ""
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise ImageError(f'invalid tag "{tag}"')
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
        if not _HOST.match(registry):
            raise ImageError(f'invalid registry host "{registry}"')
        if registry in HUB_NAMES:
            registry = DEFAULT_REGISTRY
    else:
        registry, path = DEFAULT_REGISTRY, rest
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = "library/" + path
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            raise ImageError(f'invalid repository name component "{component}" (lowercase '
                             "letters, digits and single separators . _ - only)")
    if len(registry) + 1 + len(path) > MAX_NAME:
        raise ImageError(f"the repository name is longer than {MAX_NAME} characters")
    if digest:
        tag = ""
    return DockerRef(original, registry, path, tag or ("" if digest else "latest"), digest)
