"""appc meta discovery: from an image name to the URLs of its ACI, signature and public keys.

For ``example.com/a/b`` the pages ``https://example.com/a/b?ac-discovery=1``,
``https://example.com/a?ac-discovery=1`` and ``https://example.com?ac-discovery=1`` are asked in
turn (plain http after https only with ``--insecure-options=http``); a page that fails, is not
200 or has no matching tag sends the walk to the next, shorter prefix. In a page, the tags

    <meta name="ac-discovery" content="PREFIX URL-TEMPLATE">
    <meta name="ac-discovery-pubkeys" content="PREFIX URL">

count when the image name starts with PREFIX. A template's ``{name}`` is the full image name,
``{ext}`` is ``aci`` or ``aci.asc``, and every label fills its ``{label}``; a template with a
placeholder left over is skipped. Without a version the version is ``latest``; os and arch
default to the host's.
"""

from __future__ import annotations

import html.parser
import platform
import re
from urllib.parse import urlsplit

from ..errors import RktError
from ..records import dataclass, field

MAX_PAGE_BYTES = 1 << 20
MAX_TAGS = 1000
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "i386": "386", "armv7l": "arm",
           "armv6l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


class DiscoveryError(RktError):
    """Discovery found no endpoint."""


@dataclass(frozen=True)
class Endpoint:
    """One discovered image: its ACI URL and signature URL."""

    aci: str
    asc: str


@dataclass
class Discovered:
    """What the walk found, and what failed on the way (for ``--debug`` and error messages)."""

    endpoints: list[Endpoint] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)


def host_labels() -> dict[str, str]:
    """The ``os`` and ``arch`` labels of this machine, as appc (Go) names them."""
    machine = platform.machine()
    return {"os": platform.system().lower(), "arch": _GOARCH.get(machine, machine)}


def app_labels(labels: dict[str, str]) -> dict[str, str]:
    """The labels discovery uses: the given ones, ``version=latest`` and the host's os/arch
    where missing."""
    return {"version": "latest", **host_labels(), **labels}


class _MetaParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag != "meta" or len(self.tags) >= MAX_TAGS:
            return
        values = dict(attrs)
        name, content = values.get("name") or "", values.get("content") or ""
        if not name.startswith("ac-"):
            return
        prefix, _, uri = content.strip().partition(" ")
        uri = uri.strip()
        if prefix and uri:
            self.tags.append((name, prefix, uri))

    handle_startendtag = handle_starttag


def parse_meta(page: bytes) -> list[tuple[str, str, str]]:
    """The ``ac-*`` meta tags of an HTML page: (name, prefix, uri). Malformed HTML is read as far
    as it goes."""
    parser = _MetaParser()
    try:
        parser.feed(page.decode("utf-8", errors="replace"))
        parser.close()
    except (AssertionError, ValueError):  # html.parser gives up on some garbage
        pass
    return parser.tags


def render(template: str, name: str, labels: dict[str, str], ext: str) -> str | None:
    """A template with ``{name}``, ``{ext}`` and the labels filled in, or None if a placeholder
    is left over."""
    values = {k: v for k, v in labels.items() if k != "name"}
    values["name"], values["ext"] = name, ext
    out = _PLACEHOLDER.sub(lambda m: values.get(m.group(0)[1:-1], m.group(0)), template)
    return None if _PLACEHOLDER.search(out) else out


def prefixes(name: str) -> list[str]:
    """``a.com/p/s`` -> ``a.com/p/s``, ``a.com/p``, ``a.com``."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _page(client, prefix: str, allow_http: bool, attempts: list[str]) -> bytes | None:
    from .httpclient import HttpError

    for scheme in ("https", "http") if allow_http else ("https",):
        url = f"{scheme}://{prefix}?ac-discovery=1"
        try:
            status, body, _ = client.get_small(url, MAX_PAGE_BYTES, "discovery")
        except HttpError as e:
            attempts.append(f"{url}: {e.message}")
            continue
        if status == 200:
            return body
        attempts.append(f"{url}: HTTP status {status}")
    return None


def discover(client, name: str, labels: dict[str, str], *, want_keys: bool = False,
             allow_http: bool = False) -> Discovered:
    """Walk the prefixes of ``name`` until a page gives an ACI endpoint (or, with
    ``want_keys``, a public key). ``labels`` are used as given (see :func:`app_labels`)."""
    found = Discovered()
    for prefix in prefixes(name):
        if urlsplit(f"https://{prefix}").hostname is None:
            continue
        page = _page(client, prefix, allow_http, found.attempts)
        if page is None:
            continue
        for tag, tag_prefix, uri in parse_meta(page):
            if not name.startswith(tag_prefix):
                continue
            if tag == "ac-discovery" and not want_keys:
                aci = render(uri, name, labels, "aci")
                asc = render(uri, name, labels, "aci.asc")
                if aci and asc:
                    found.endpoints.append(Endpoint(aci, asc))
            elif tag == "ac-discovery-pubkeys" and want_keys:
                found.keys.append(uri)
        if found.keys if want_keys else found.endpoints:
            return found
        found.attempts.append(f"{prefix}: no matching "
                              f"{'ac-discovery-pubkeys' if want_keys else 'ac-discovery'} meta tag")
    return found
