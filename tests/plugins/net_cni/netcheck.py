"""Helpers and fixtures for networking tests as root: the kit's ``rkt`` runner with the
test-only ``nettest`` flavors installed, on directories of the test's own, and a leak check
around every test.

The leak check (:mod:`rkt_core.testing.netleaks`) looks for what belongs to the test's pods,
found by their UUIDs: network namespaces, links whose peer is in one of them, iptables rules
and chains that name them (CNI's masquerading rules carry the container id, rkt's port
forwarding chains its first eight characters), host-local leases held for them, and processes
that still hold something under the test's directory.

Leaks are checked right after the pods ended, before any ``rkt gc`` (releasing everything at
exit is what is tested), and again after the cleanup's gc; whatever is left is then removed by
force, so that one failure does not spill into the next tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rkt_core.testing import netleaks, runner
from rkt_core.testing.netleaks import LEASES, NOTHING
from rkt_core.testing.plugins import plugin_site
from rkt_core.testing.wait import wait_for
from rkt_net_cni import portfwd

HERE = Path(__file__).resolve().parent


def nettest_site(directory: Path) -> str:
    """The test-only flavors (:mod:`nettest_flavor`) installed in ``directory``."""
    return plugin_site(str(directory), "rkt-test-nettest", {"stage1-nettest": "nettest_flavor"},
                       {"nettest_flavor": (HERE / "nettest_flavor.py").read_text()})


def _holders(path: Path) -> list[int]:
    """Processes with a descriptor or working directory under ``path``."""
    prefix = str(path) + "/"
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = [f"fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue  # gone, or a kernel thread
        links = []
        for name in ["cwd", *fds]:
            try:
                links.append(os.readlink(f"/proc/{pid}/{name}"))
            except OSError:
                pass  # closed meanwhile
        if int(pid) != os.getpid() and any((link + "/").startswith(prefix) for link in links):
            found.append(int(pid))
    return found


def _marks(uuids: set[str]) -> set[str]:
    """Port forwarding chains of the pods (their rules do not name the pods)."""
    return {c for u in uuids for c in portfwd.chains(u)}


class Rkt(runner.Rkt):
    """The kit's runner with the nettest flavors installed; remembers every pod it saw, for
    the leak check."""

    def __init__(self, base: Path):
        super().__init__(base)
        (self.local_config / "net.d").mkdir(parents=True)
        self.add_plugin_path(nettest_site(base / "nettest-site"))
        self.seen: set[str] = set()
        self.lease_dirs: list[Path] = [LEASES]  # tests add the dataDir of their own networks
        # bridges the tests' networks create: CNI's bridge plugin never deletes one (other pods
        # may join it any time), so the test removes it once its pods are gone
        self.bridges: list[str] = []

    def __call__(self, *args, **kwargs) -> subprocess.CompletedProcess:
        done = super().__call__(*args, **kwargs)
        self.note_pods()
        return done

    def note_pods(self) -> list[str]:
        """The UUIDs of the pods now in the data directory (remembered in ``seen``)."""
        uuids = self.pods()
        self.seen.update(uuids)
        return uuids

    def leaks(self) -> dict[str, list]:
        self.note_pods()
        return netleaks.leaks(self.seen, self.lease_dirs, _marks(self.seen))

    def finish(self, tmp_path: Path) -> list[str]:
        """Stop every pod, wait for every process, check for leaks at exit and after gc, then
        remove whatever is left; return the problems found."""
        problems = []
        for uuid in self.pods("run"):
            if self.status(uuid).get("state") == "running":
                self("stop", "--force", uuid)
        for started in self.started:
            try:
                started.process.wait(30)
            except subprocess.TimeoutExpired:
                problems.append(f"{started.process.args} still ran after its pod was stopped")
                started.process.kill()
                started.process.wait()
        try:  # the guardian of a killed rkt run releases the networks in the background
            wait_for(lambda: not _holders(tmp_path), 20, "processes to let go of the test's files")
        except AssertionError:
            holders = _holders(tmp_path)
            problems.append(f"processes left: {[_cmdline(p) for p in holders]}")
            for pid in holders:
                os.kill(pid, signal.SIGKILL)
        try:
            wait_for(lambda: self.leaks() == NOTHING, 10, "the pods' networks to be released")
        except AssertionError:
            problems.append(f"left after the pods exited: {self.leaks()}")
        self("gc", "--grace-period=0s")
        left = self.leaks()
        if left != NOTHING:
            problems.append(f"left after rkt gc: {left}")
            for uuid in self.seen:
                portfwd.teardown(uuid)
            netleaks.scrub(self.seen, self.lease_dirs, _marks(self.seen))
        for bridge in self.bridges:
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
        return problems


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return str(pid)


def contained_flavors() -> list[str]:
    """The test flavor and every installed flavor with contained networking that runs pods by
    its name (not the flavors of stage1 images: they need an image)."""
    code = ("from rkt_core.plugins import Plugins\n"
            "for n, f in sorted(Plugins().stage1_flavors().items()):\n"
            "    if f.check_image is None and f.factory().features.contained_network:\n"
            "        print(n)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return ["nettest"] + done.stdout.split()


@pytest.fixture(scope="session", autouse=True)
def lease_directories():
    """Remove the lease directories host-local made for the networks of this session."""
    before = set(os.listdir(LEASES)) if LEASES.is_dir() else set()
    yield
    netleaks.remove_empty_lease_dirs(before)


@pytest.fixture
def rkt(tmp_path):
    rkt = Rkt(tmp_path)
    yield rkt
    problems = rkt.finish(tmp_path)
    assert problems == []
