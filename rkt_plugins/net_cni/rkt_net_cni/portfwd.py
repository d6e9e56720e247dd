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

from rkt_core.plugin_api import RktError

_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


def chains(pod_uuid: str) -> tuple[str, str]:
    """The pod's DNAT and SNAT chain names."""
    short = pod_uuid.replace("-", "")[:14]
    if not re.fullmatch(r"[0-9a-f]{14}", short):
        raise RktError(f'invalid pod UUID "{pod_uuid}"')
    return f"RKT-PFWD-DNAT-{short}", f"RKT-PFWD-SNAT-{short}"


def _jumps(dnat: str, snat: str) -> list[str]:
    """The rules that lead into the pod's chains, as ``iptables-save`` prints them."""
    to_dnat = f"-m addrtype --dst-type LOCAL -j {dnat}"
    return [f"-A POSTROUTING -s 127.0.0.1/32 ! -d 127.0.0.1/32 -j {snat}",
            f"-A PREROUTING {to_dnat}", f"-A OUTPUT {to_dnat}"]


def _run(argv: list[str], script: str = "", keep_fds: tuple[int, ...] = ()) -> str:
    """Run an iptables tool (``script`` on its stdin); its output, or RktError."""
    try:
        done = subprocess.run(argv, input=script, capture_output=True, text=True,
                              pass_fds=keep_fds)
    except FileNotFoundError:
        raise RktError(f"port forwarding needs {argv[0]} (Debian package iptables), which is "
                       "not installed") from None
    if done.returncode != 0:
        raise RktError(f"{argv[0]}: {done.stderr.strip() or 'failed'}")
    return done.stdout


def _restore(lines: list[str], keep_fds: tuple[int, ...] = ()) -> None:
    """Apply nat table commands in one transaction (all or nothing), leaving the rest alone:
    one ``iptables-restore`` instead of one ``iptables`` per rule (each costs milliseconds)."""
    _run(["iptables-restore", "-w", "--noflush"], "\n".join(["*nat", *lines, "COMMIT", ""]),
         keep_fds)


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


def setup(pod_uuid: str, pod_ip: str, ports, keep_fds: tuple[int, ...] = ()) -> None:
    """Forward each port (``rkt_core.plugin_api.network.ForwardedPort``) to ``pod_ip``: the chains,
    their rules and the jumps into them (first in their chains), all at once (``iptables-restore``
    inherits ``keep_fds``)."""
    dnat, snat = chains(pod_uuid)
    current = _run(["iptables-save", "-t", "nat"], keep_fds=keep_fds).splitlines()
    for port in ports:
        owner = _forwarded_by(current, port)
        if owner:
            raise RktError(f"host port {port.protocol}/{port.host_port} is already forwarded "
                           f"to another pod (iptables chain {owner})")
    lines = [f":{dnat} - [0:0]", f":{snat} - [0:0]"]
    lines += ["-I " + jump[3:].replace(" ", " 1 ", 1) for jump in _jumps(dnat, snat)]
    for port in ports:
        destination = f"{port.host_ip}/32" if port.host_ip else "0.0.0.0/0"
        lines.append(f"-A {dnat} -d {destination} -p {port.protocol} -m {port.protocol} "
                     f"--dport {port.host_port} -j DNAT --to-destination "
                     f"{pod_ip}:{port.pod_port}")
        lines.append(f"-A {snat} -s 127.0.0.1/32 -d {pod_ip}/32 -p {port.protocol} "
                     f"-m {port.protocol} --dport {port.pod_port} -j MASQUERADE")
    _restore(lines, keep_fds)


def _forwarded_by(current: list[str], port) -> str:
    """The DNAT chain of another pod that already forwards ``port``'s host port (on the same
    address, or on all of them), or "". Best effort: two pods set up at the same instant are
    not caught."""
    for line in current:
        words = line.split()
        if len(words) < 2 or words[0] != "-A" or not words[1].startswith("RKT-PFWD-DNAT-"):
            continue
        option = dict(zip(words[2:], words[3:]))
        destination = option.get("-d", "0.0.0.0/0")
        if option.get("-p") == port.protocol and option.get("--dport") == str(port.host_port) \
                and (not port.host_ip or destination in ("0.0.0.0/0", f"{port.host_ip}/32")):
            return words[1]
    return ""


def teardown(pod_uuid: str) -> None:
    """Remove the pod's jumps and chains (what is already gone is fine), at once."""
    dnat, snat = chains(pod_uuid)
    current = _run(["iptables-save", "-t", "nat"]).splitlines()
    jumps = set(_jumps(dnat, snat))
    lines = ["-D " + line[3:] for line in current if line in jumps]
    for chain in (dnat, snat):
        if any(line.startswith(f":{chain} ") for line in current):
            lines += [f"-F {chain}", f"-X {chain}"]
    if lines:
        _restore(lines)


def host_interfaces_with(address: str) -> list[str]:
    """Host interfaces holding ``address`` (for results that do not list host interfaces)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        indexes = {a["index"] for a in ipr.get_addr(address=address)}
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                if link["index"] in indexes]
