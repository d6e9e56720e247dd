"""What pods left of their networking on the host, found by their UUIDs, and removing it.

Looking only for the objects of the test's own pods keeps the check exact while other pods
(other tests, other users of the host) come and go: network namespaces (``rkt-<uuid>``), links
whose peer is in one of them, iptables rules and chains that name them (CNI's rules carry the
container id; ``marks`` adds other names, e.g. port forwarding chains), and host-local leases
held for them::

    from rkt_core.testing.netleaks import NOTHING, leaks

    assert leaks({uuid}) == NOTHING
"""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
from pathlib import Path
from typing import Iterable

LEASES = Path("/var/lib/cni/networks")  # host-local's default dataDir
NETNS_DIR = Path("/run/netns")
NOT_LEASES = ("lock",)  # host-local's own files in a network's lease directory
NOTHING = {"netns": [], "links": [], "iptables": [], "leases": []}


def _lines(argv: list[str]) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.stdout.splitlines() if done.returncode == 0 else []


def _is_lease(name: str) -> bool:
    return name not in NOT_LEASES and not name.startswith("last_reserved_ip")


def lease_files(directories: Iterable[Path]) -> dict[Path, str]:
    """host-local's lease files (one per address) and the container id each is held for."""
    found = {}
    for top in map(Path, directories):
        for network in top.iterdir() if top.is_dir() else ():
            for lease in network.iterdir() if network.is_dir() else ():
                if not _is_lease(lease.name):
                    continue
                try:
                    found[lease] = lease.read_text().split()[0]
                except (OSError, IndexError):
                    found[lease] = ""
    return found


def iptables_rules(marks: set[str]) -> list[tuple[str, str]]:
    """(table, rule) of the nat and filter tables mentioning one of ``marks``."""
    found = []
    for table in ("nat", "filter"):
        for line in _lines(["iptables-save", "-t", table]):
            if line.startswith(("-A", ":")) and any(mark in line for mark in marks):
                found.append((table, line))
    return found


def leaks(uuids: set[str], lease_dirs: Iterable[Path] = (LEASES,),
          marks: Iterable[str] = ()) -> dict[str, list]:
    """What is left of the pods ``uuids`` on the host (:data:`NOTHING` when nothing)."""
    uuids = set(uuids)
    netns = [n for n in (os.listdir(NETNS_DIR) if NETNS_DIR.is_dir() else ())
             if n.removeprefix("rkt-") in uuids]
    links = [line.split(":")[1].strip() for line in _lines(["ip", "-o", "link"])
             if any(f"rkt-{u}" in line for u in uuids)]
    rules = [line for _, line in iptables_rules(uuids | set(marks))] if uuids else []
    leases = sorted(str(p) for p, owner in lease_files(lease_dirs).items() if owner in uuids)
    return {"netns": netns, "links": links, "iptables": rules, "leases": leases}


def scrub(uuids: set[str], lease_dirs: Iterable[Path] = (LEASES,),
          marks: Iterable[str] = ()) -> None:
    """Remove by force whatever :func:`leaks` finds (after a test failed)."""
    marks = set(uuids) | set(marks)
    chains = set()  # CNI's per-container chains, and chains named by marks
    for table, line in iptables_rules(marks):
        words = shlex.split(line)
        if words[0] == "-A":
            subprocess.run(["iptables", "-w", "-t", table, "-D", *words[1:]], capture_output=True)
            chains.update((table, w) for w in (words[1], words[-1])
                          if w.startswith("CNI-") or w in marks)
        else:
            chains.add((table, words[0][1:]))
    for table, chain in chains:
        subprocess.run(["iptables", "-w", "-t", table, "-F", chain], capture_output=True)
        subprocess.run(["iptables", "-w", "-t", table, "-X", chain], capture_output=True)
    for name in leaks(uuids, lease_dirs)["netns"]:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    for lease, owner in lease_files(lease_dirs).items():
        if owner in uuids:
            lease.unlink()


def remove_empty_lease_dirs(before: set[str], top: Path = LEASES) -> None:
    """host-local leaves a directory per network under ``top`` (its lock and last address, no
    lease); remove those not in ``before`` that hold no lease, under host-local's lock."""
    for name in set(os.listdir(top)) - before if top.is_dir() else ():
        directory = top / name
        try:
            lock = os.open(directory / "lock", os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            names = os.listdir(directory)
            if not any(map(_is_lease, names)):
                for n in names:
                    os.unlink(directory / n)
                os.rmdir(directory)
        finally:
            os.close(lock)
