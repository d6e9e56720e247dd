"""Fixtures for networking tests as root: a leak check around every test (network namespaces,
links, iptables rules, host-local leases, processes holding the test's data directory), the
``rkt`` command with the test-only ``nettest`` flavor, and the flavors to run pods with."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
LEASES = Path("/var/lib/cni/networks")
NOT_LEASES = ("lock",)


def _lines(argv: list[str]) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.stdout.splitlines() if done.returncode == 0 else []


def _iptables() -> list[str]:
    """Rules and user chains of the nat and filter tables (counters left out)."""
    rules = []
    for table in ("nat", "filter"):
        for line in _lines(["iptables-save", "-t", table]):
            if line.startswith("-A"):
                rules.append(f"{table} {line}")
            elif line.startswith(":") and line.split()[1] == "-":
                rules.append(f"{table} {line.split()[0]}")
    return sorted(rules)


def _leases() -> dict[str, list[str]]:
    if not LEASES.is_dir():
        return {}
    return {d.name: sorted(f.name for f in d.iterdir()
                           if f.name not in NOT_LEASES and not f.name.startswith("last_reserved_ip"))
            for d in LEASES.iterdir() if d.is_dir()}


def _holders(path: Path) -> list[int]:
    """Processes with a descriptor or working directory under ``path``."""
    prefix = str(path)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/cwd")]
            links += [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if int(pid) != os.getpid() and any(link.startswith(prefix) for link in links):
            found.append(int(pid))
    return found


def snapshot() -> dict:
    """What networking tests must leave as they found it."""
    netns = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
    links = sorted(line.split(":")[1].strip().split("@")[0] for line in _lines(["ip", "-o", "link"]))
    return {"netns": netns, "links": links, "iptables": _iptables(), "leases": _leases()}


@pytest.fixture
def no_leaks(tmp_path):
    """Fail a test that leaves a namespace, link, rule, lease or process behind (the teardown
    of a killed ``rkt run`` happens in the background: it gets a few seconds)."""
    before = snapshot()
    lease_dirs = set(os.listdir(LEASES)) if LEASES.is_dir() else set()
    yield
    deadline = time.monotonic() + 15
    while (snapshot() != before or _holders(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    after = snapshot()
    holders = _holders(tmp_path)
    for pid in holders:  # don't let one failure spill into the next tests
        subprocess.run(["kill", "-9", str(pid)])
    for name in set(os.listdir(LEASES)) - lease_dirs if LEASES.is_dir() else ():
        if not _leases().get(name):  # only lock/last_reserved_ip: the test's own directory
            shutil.rmtree(LEASES / name)
    assert after == before
    assert holders == []


class Rkt:
    """``rkt`` (with the nettest flavor available) on its own data directory."""

    def __init__(self, data: Path, local_config: Path):
        self.data, self.local_config = data, local_config

    def argv(self, *args) -> list[str]:
        return [sys.executable, str(HERE / "rkt_with_nettest.py"), f"--dir={self.data}",
                f"--local-config={self.local_config}", "--insecure-options=image",
                *map(str, args)]

    def __call__(self, *args, check=None, timeout=120):
        done = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout)
        if check is not None:
            assert done.returncode == check, (done.stdout, done.stderr)
        return done

    def start(self, *args) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def status(self, uuid: str) -> dict[str, str]:
        out = self("status", uuid).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_for(self, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError("timed out")

    def only_pod(self) -> str:
        return self.wait_for(lambda: [p.name for p in (self.data / "pods" / "run").iterdir()]
                             if (self.data / "pods" / "run").is_dir() else None)[0]

    def cleanup(self):
        """Stop whatever pod still runs and remove every pod (networks included)."""
        run_dir = self.data / "pods" / "run"
        for pod in run_dir.iterdir() if run_dir.is_dir() else ():
            self("stop", "--force", pod.name)
        self("gc", "--grace-period=0s")


def contained_flavors() -> list[str]:
    """The test flavor and every installed flavor with contained networking."""
    code = ("from rkt_core.plugins import Plugins\n"
            "for n, f in sorted(Plugins().stage1_flavors().items()):\n"
            "    s = f.factory()\n"
            "    print(n) if s.features.contained_network else None\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return ["nettest"] + [n for n in done.stdout.split() if n != "nettest"]


@pytest.fixture
def rkt(tmp_path, no_leaks):
    local = tmp_path / "etc"
    (local / "net.d").mkdir(parents=True)
    rkt = Rkt(tmp_path / "data", local)
    yield rkt
    rkt.cleanup()
