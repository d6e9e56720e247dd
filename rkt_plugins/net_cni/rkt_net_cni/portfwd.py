"""Port forwarding (``--port``) with iptables NAT rules in two chains of the pod's own, as rkt
did it: ``RKT-PFWD-DNAT-<id>`` (reached from PREROUTING and OUTPUT for packets to a local
address) rewrites the destination to the pod; ``RKT-PFWD-SNAT-<id>`` (reached from POSTROUTING
for packets from 127.0.0.1) masquerades connections made to the host's loopback, which the
kernel routes out of the host's interface towards the pod only with ``route_localnet`` set on
that interface. ``<id>`` is the first 14 hex digits of the pod's UUID (rkt used 8; 14 is what
fits iptables' 28-character chain names, and makes two pods' chains practically never collide).
The chain names derive from the pod's UUID, so teardown needs no record of the rules: it
removes the jumps and the chains, whatever is left of them.

Why these chains rather than CNI's ``portmap`` plugin: portmap only runs as a link of a
``.conflist`` chain with the ``portMappings`` capability, so it would forward nothing on rkt's
built-in networks, on ``.conf`` networks or on user chains that leave it out; these rules work
the same on every network type. The ports come from the pod manifest (they are known before any
plugin runs), the rules are visible under a name that says which pod they serve, and a pod's
teardown cannot touch another pod's rules. Both end up with the same kernel mechanism (DNAT
plus ``route_localnet`` for the host's loopback).
"""

from __future__ import annotations

import re
import subprocess

from rkt_core.errors import RktError

_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


def chains(pod_uuid: str) -> tuple[str, str]:
    """The pod's DNAT and SNAT chain names."""
    short = pod_uuid.replace("-", "")[:14]
    if not re.fullmatch(r"[0-9a-f]{14}", short):
        raise RktError(f'invalid pod UUID "{pod_uuid}"')
    return f"RKT-PFWD-DNAT-{short}", f"RKT-PFWD-SNAT-{short}"


def _jumps(dnat: str, snat: str) -> list[tuple[str, list[str]]]:
    to_dnat = ["-m", "addrtype", "--dst-type", "LOCAL", "-j", dnat]
    return [("POSTROUTING", ["-s", "127.0.0.1", "!", "-d", "127.0.0.1", "-j", snat]),
            ("PREROUTING", to_dnat), ("OUTPUT", to_dnat)]


def iptables(*args: str, check: bool = True) -> bool:
    """Run ``iptables -w -t nat ARGS``; with ``check`` a failure is an error, else it returns
    whether the command succeeded."""
    try:
        done = subprocess.run(["iptables", "-w", "-t", "nat", *args], capture_output=True,
                              text=True)
    except FileNotFoundError:
        raise RktError("port forwarding needs iptables, which is not installed") from None
    if check and done.returncode != 0:
        raise RktError(f"iptables -t nat {' '.join(args)}: {done.stderr.strip()}")
    return done.returncode == 0


def enable_route_localnet(interfaces: list[str]) -> None:
    """Let the host route packets from 127.0.0.1 out of these (host-side) interfaces."""
    for name in interfaces:
        if not _IFNAME.match(name) or name in (".", ".."):
            raise RktError(f'invalid interface name "{name}" in a CNI result')
        path = f"/proc/sys/net/ipv4/conf/{name}/route_localnet"
        with open(path) as f:
            if f.read().strip() == "1":
                continue
        with open(path, "w") as f:
            f.write("1")


def setup(pod_uuid: str, pod_ip: str, ports) -> None:
    """Forward each port (``rkt_core.stage0.network.ForwardedPort``) to ``pod_ip``."""
    dnat, snat = chains(pod_uuid)
    for chain in (dnat, snat):
        if not iptables("-N", chain, check=False):
            iptables("-F", chain)
    for chain, rule in _jumps(dnat, snat):
        if not iptables("-C", chain, *rule, check=False):
            iptables("-I", chain, "1", *rule)
    for port in ports:
        destination = f"{port.host_ip}/32" if port.host_ip else "0.0.0.0/0"
        iptables("-A", dnat, "-d", destination, "-p", port.protocol, "--dport",
                 str(port.host_port), "-j", "DNAT", "--to-destination",
                 f"{pod_ip}:{port.pod_port}")
        iptables("-A", snat, "-p", port.protocol, "-s", "127.0.0.1", "-d", pod_ip, "--dport",
                 str(port.pod_port), "-j", "MASQUERADE")


def teardown(pod_uuid: str) -> None:
    """Remove the pod's jumps and chains; whatever is already gone is fine."""
    dnat, snat = chains(pod_uuid)
    for chain, rule in _jumps(dnat, snat):
        while iptables("-D", chain, *rule, check=False):
            pass
    for chain in (dnat, snat):
        if iptables("-F", chain, check=False):
            iptables("-X", chain)
    if any(_chain_exists(c) for c in (dnat, snat)):
        raise RktError(f"iptables chains {dnat}/{snat} could not be removed")


def _chain_exists(chain: str) -> bool:
    return iptables("-n", "-L", chain, check=False)


def host_interfaces_with(address: str) -> list[str]:
    """Host interfaces holding ``address`` (for results that do not list host interfaces)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        indexes = {a["index"] for a in ipr.get_addr(address=address)}
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                if link["index"] in indexes]
