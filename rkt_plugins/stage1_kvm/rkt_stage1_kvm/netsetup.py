"""The VM on the pod's networks: a tap device per interface of the pod's network namespace,
joined to it by traffic-control redirects, and the guest's NIC given the interface's MAC,
addresses and routes.

The network backend (net_cni) set the namespace up before the flavor runs: ``eth0``...
with the pod's addresses (CNI ptp, bridge, macvlan...). For each, this adds
``rkt-<uuid[:4]>-tapN`` (rkt's name for it) and two ``tc`` rules: whatever arrives on ``ethN``
leaves through the tap into the VM, and whatever the VM sends leaves through ``ethN``. The
guest's NIC has ``ethN``'s MAC and addresses, so the host and CNI's port forwarding (DNAT to
the pod's address) reach the VM unchanged, whatever the plugin type (a bridge could not carry
macvlan's or ipvlan's traffic). The namespace keeps its addresses, which CNI's DEL reads; its
own stack sees no traffic any more. Everything here lives in the pod's namespace and goes with
it at teardown.
"""

from __future__ import annotations

import json
import os
import subprocess

from rkt_core.plugin_api import RktError
from rkt_core.plugin_api.network import netns_path

NETNS_DIR = "/run/netns"


def tap_name(pod_uuid: str, index: int) -> str:
    """The tap device of the pod's ``index``-th interface (rkt: ``rkt-<uuid[:4]>-tap<N>``)."""
    return f"rkt-{pod_uuid[:4]}-tap{index}"


def _netns_name(pod, netns: str) -> str:
    if os.path.dirname(netns) != NETNS_DIR or netns != netns_path(pod):
        raise RktError(f'unexpected network namespace "{netns}" for pod "{pod.uuid}"')
    return os.path.basename(netns)


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
    except FileNotFoundError:
        raise RktError(f"the kvm flavor needs {argv[0]} (Debian package iproute2)") from None
    if done.returncode != 0:
        raise RktError(f"{' '.join(argv)}: {done.stderr.strip() or 'failed'}")
    return done.stdout


def attach(pod, netns: str) -> list[dict]:
    """Add a tap per interface of the pod's namespace; return the guest's NICs (name, MAC,
    MTU, addresses, routes) in interface order."""
    name = _netns_name(pod, netns)
    ip, tc = ["ip", "-n", name], ["tc", "-n", name]
    interfaces = [i["ifName"] for i in pod.networks() if i.get("ifName")]
    links = {link["ifname"]: link for link in json.loads(_run(ip + ["-j", "link", "show"]))}
    nics = []
    for index, ifname in enumerate(interfaces):
        link = links.get(ifname)
        if link is None:
            raise RktError(f'the pod\'s network namespace has no interface "{ifname}"')
        tap = tap_name(pod.uuid, index)
        mtu = str(link.get("mtu", 1500))
        _run(ip + ["tuntap", "add", "dev", tap, "mode", "tap"])
        _run(ip + ["link", "set", "dev", tap, "mtu", mtu, "up"])
        for source, target in ((ifname, tap), (tap, ifname)):
            _run(tc + ["qdisc", "add", "dev", source, "ingress"])
            _run(tc + ["filter", "add", "dev", source, "parent", "ffff:", "protocol", "all",
                       "u32", "match", "u8", "0", "0", "action", "mirred", "egress",
                       "redirect", "dev", target])
        nics.append({"name": ifname, "tap": tap, "mac": link["address"], "mtu": int(mtu),
                     "addresses": _addresses(ip, ifname), "routes": _routes(ip, ifname)})
    return nics


def _addresses(ip: list[str], ifname: str) -> list[str]:
    result = []
    for entry in json.loads(_run(ip + ["-j", "addr", "show", "dev", ifname])):
        for info in entry.get("addr_info", []):
            if info.get("scope") == "link":
                continue  # the guest makes its own link-local address
            result.append(f"{info['local']}/{info['prefixlen']}")
    return result


def _routes(ip: list[str], ifname: str) -> list[dict]:
    result = []
    for family in ("-4", "-6"):
        for route in json.loads(_run(ip + [family, "-j", "route", "show", "dev", ifname])):
            if route.get("protocol") == "kernel" or route.get("dst", "").startswith("fe80:"):
                continue  # made by the guest's kernel with the address
            result.append({"dst": route["dst"], "via": route.get("gateway", ""),
                           "scope": route.get("scope", "") if route.get("scope") == "link"
                           else ""})
    return result
