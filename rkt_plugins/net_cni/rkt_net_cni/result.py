"""CNI results of every spec version, read into one shape.

0.1.0/0.2.0 results carry ``ip4``/``ip6`` objects; 0.3.x, 0.4.0 and 1.0.0 carry
``interfaces``, ``ips`` (``version`` is gone in 1.0.0), ``routes`` and ``dns``.
"""

from __future__ import annotations

import ipaddress

from rkt_core.plugin_api import dataclass, field


@dataclass(frozen=True)
class IPConfig:
    """An address a plugin gave (``address`` in CIDR form) on interface ``interface`` (an
    index into ``Result.interfaces``, or None)."""

    address: str
    gateway: str = ""
    interface: int | None = None

    @property
    def interface_address(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(self.address)


@dataclass
class Result:
    """What one network's plugins returned (the last plugin's result, as CNI defines it)."""

    raw: dict
    interfaces: list[dict] = field(default_factory=list)
    ips: list[IPConfig] = field(default_factory=list)
    dns: dict = field(default_factory=dict)

    def ipv4(self, sandbox: str = "") -> IPConfig | None:
        """The pod's IPv4 address: the first one on an interface inside ``sandbox`` (the pod's
        namespace), else the first one at all."""
        v4 = [ip for ip in self.ips if ip.interface_address.version == 4]
        for ip in v4:
            if ip.interface is not None and 0 <= ip.interface < len(self.interfaces) and \
                    self.interfaces[ip.interface].get("sandbox") == sandbox:
                return ip
        return v4[0] if v4 else None

    def host_interfaces(self) -> list[str]:
        """The host-side interfaces the plugins reported (no ``sandbox``): a veth, a bridge."""
        return [i["name"] for i in self.interfaces
                if isinstance(i.get("name"), str) and not i.get("sandbox")]


def _ip_config(data: object) -> IPConfig | None:
    if not isinstance(data, dict) or not isinstance(data.get("address", data.get("ip")), str):
        return None
    address = data.get("address", data.get("ip"))
    try:
        ipaddress.ip_interface(address)
    except ValueError:
        return None
    interface = data.get("interface")
    return IPConfig(address, data.get("gateway") or "",
                    interface if isinstance(interface, int) else None)


def parse(raw: object) -> Result:
    """Read a result of any CNI version (anything unusable is left out)."""
    if not isinstance(raw, dict):
        return Result({})
    result = Result(raw)
    if isinstance(raw.get("interfaces"), list):
        result.interfaces = [i for i in raw["interfaces"] if isinstance(i, dict)]
    if isinstance(raw.get("ips"), list):
        result.ips = [ip for ip in map(_ip_config, raw["ips"]) if ip]
    else:  # 0.1.0 / 0.2.0
        result.ips = [ip for ip in (_ip_config(raw.get("ip4")), _ip_config(raw.get("ip6"))) if ip]
    if isinstance(raw.get("dns"), dict):
        result.dns = raw["dns"]
    return result


def dns_fields(dns: dict) -> tuple[list[str], list[str], list[str], str]:
    """(nameservers, search, options, domain) of a CNI ``dns`` object; what could not go into
    resolv.conf as one field (not a string, blanks, control characters; name servers that are
    not addresses) is left out."""
    from rkt_core.plugin_api.network import is_word

    def strings(key):
        value = dns.get(key)
        return [v for v in value if isinstance(v, str) and is_word(v)] \
            if isinstance(value, list) else []

    def address(text):
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return False
        return True

    domain = dns.get("domain")
    return [n for n in strings("nameservers") if address(n)], strings("search"), \
        strings("options"), domain if isinstance(domain, str) and is_word(domain) else ""
