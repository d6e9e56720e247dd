"""Which proxy a request goes through, from the environment as curl and requests read it.

``https_proxy`` for https URLs and ``http_proxy`` for http ones, else ``all_proxy``; a
lower-case variable wins over its upper-case form (an empty lower-case one turns the proxy
off). ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set (under CGI it could come from a
request's ``Proxy:`` header). ``no_proxy`` lists the hosts reached directly, separated by
commas: a name covers itself and its subdomains (a leading dot is optional), ``name:port`` only
that port, an IP address itself, ``a.b.c.d/n`` a network, and ``*`` every host.

Only plain-http proxies are supported (``http://[user:password@]host[:port]``, the scheme
optional): https goes through them in a ``CONNECT`` tunnel, plain http as absolute-URI
requests.
"""

from __future__ import annotations

import base64
import os
from urllib.parse import unquote, urlsplit

from ..records import dataclass


@dataclass
class Proxy:
    """A proxy to connect to, and the headers that go to it (``Proxy-Authorization``)."""

    host: str
    port: int
    headers: dict[str, str]


def _variable(name: str) -> str:
    """The value of ``name`` (lower-case) or of its upper-case form, '' when unset."""
    lower = os.environ.get(name)
    if lower is not None:
        return lower
    if name == "http_proxy" and "REQUEST_METHOD" in os.environ:
        return ""
    return os.environ.get(name.upper(), "")


def _bypassed(host: str, port: int) -> bool:
    """Whether ``no_proxy`` says to reach ``host`` directly."""
    entries = [e.strip().lower() for e in _variable("no_proxy").split(",") if e.strip()]
    if not entries:
        return False
    host = host.lower()
    for entry in entries:
        if entry == "*" or entry == f"{host}:{port}":
            return True
        if "/" in entry:
            if _in_network(host, entry):
                return True
            continue
        name = entry.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _in_network(host: str, network: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def proxy_for(scheme: str, host: str, port: int) -> Proxy | None:
    """The proxy for a request to ``scheme://host:port`` (None: connect directly). An
    unsupported proxy URL is a ``ValueError``."""
    url = _variable(f"{scheme}_proxy") or _variable("all_proxy")
    if not url or _bypassed(host, port):
        return None
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"unsupported proxy {url!r} (only http://host:port proxies are)")
    headers = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    return Proxy(parts.hostname, parts.port or 80, headers)
