"""Helpers and fixtures for networking tests as root: the ``rkt`` command (with the test-only
``nettest`` flavors) on a data directory of the test's own, and a leak check around every test.

The leak check looks for what belongs to the test's pods, found by their UUIDs: network
namespaces (``rkt-<uuid>``), links whose peer is in one of them, iptables rules and chains
that name them (CNI's masquerading rules carry the container id, rkt's port forwarding chains
its first eight characters), host-local leases held for them, and processes that still hold
something under the test's directory. Looking only for the test's own objects keeps the check
exact while other pods (other tests, other users of the host) come and go.

Leaks are checked right after the pods ended, before any ``rkt gc`` (releasing everything at
exit is what is tested), and again after the cleanup's gc; whatever is left is then removed by
force, so that one failure does not spill into the next tests.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rkt_net_cni import portfwd

HERE = Path(__file__).resolve().parent
LEASES = Path("/var/lib/cni/networks")  # host-local's default dataDir
NETNS_DIR = Path("/run/netns")
# host-local's own files in a network's lease directory, which hold no address
NOT_LEASES = ("lock",)


def _lines(argv: list[str]) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.stdout.splitlines() if done.returncode == 0 else []


def _lease_files(directories) -> dict[Path, str]:
    """Lease files (one per address) and the container id each is held for."""
    found = {}
    for top in directories:
        for network in top.iterdir() if top.is_dir() else ():
            for lease in network.iterdir() if network.is_dir() else ():
                if lease.name in NOT_LEASES or lease.name.startswith("last_reserved_ip"):
                    continue
                try:
                    found[lease] = lease.read_text().split()[0]
                except (OSError, IndexError):
                    found[lease] = ""
    return found


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


def _iptables_rules(marks: set[str]) -> list[tuple[str, str]]:
    """(table, rule) of the nat and filter tables mentioning one of ``marks``."""
    found = []
    for table in ("nat", "filter"):
        for line in _lines(["iptables-save", "-t", table]):
            if line.startswith(("-A", ":")) and any(mark in line for mark in marks):
                found.append((table, line))
    return found


def leaks(uuids: set[str], lease_dirs=(LEASES,)) -> dict[str, list]:
    """What is left of the pods ``uuids`` on the host (empty lists: nothing)."""
    netns = [n for n in (os.listdir(NETNS_DIR) if NETNS_DIR.is_dir() else ())
             if n.removeprefix("rkt-") in uuids]
    links = [line.split(":")[1].strip() for line in _lines(["ip", "-o", "link"])
             if any(f"rkt-{u}" in line for u in uuids)]
    marks = set(uuids) | {c for u in uuids for c in portfwd.chains(u)}
    rules = [line for _, line in _iptables_rules(marks)] if uuids else []
    leases = sorted(str(p) for p, owner in _lease_files(lease_dirs).items() if owner in uuids)
    return {"netns": netns, "links": links, "iptables": rules, "leases": leases}


def scrub(uuids: set[str], lease_dirs=(LEASES,)) -> None:
    """Remove by force whatever :func:`leaks` finds."""
    for u in uuids:
        portfwd.teardown(u)
    chains = set()  # CNI's per-container chains: their rules name the container
    for table, line in _iptables_rules(set(uuids)):
        words = shlex.split(line)
        if words[0] == "-A":
            subprocess.run(["iptables", "-w", "-t", table, "-D", *words[1:]], capture_output=True)
            chains.update((table, w) for w in (words[1], words[-1]) if w.startswith("CNI-"))
    for table, chain in chains:
        subprocess.run(["iptables", "-w", "-t", table, "-F", chain], capture_output=True)
        subprocess.run(["iptables", "-w", "-t", table, "-X", chain], capture_output=True)
    for name in leaks(uuids, lease_dirs)["netns"]:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    for lease, owner in _lease_files(lease_dirs).items():
        if owner in uuids:
            lease.unlink()


def wait_until(predicate, timeout: float = 30, what: str = "condition"):
    """Poll ``predicate`` until it returns something true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


class Started:
    """A ``rkt`` command running in the background; its output goes to files (never pipes:
    a pod's processes inherit them and would keep a reader waiting)."""

    def __init__(self, argv: list[str], directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.out, self.err = directory / "stdout", directory / "stderr"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)

    def wait(self, timeout: float = 60) -> tuple[int, str, str]:
        """Exit status, stdout and stderr (killed after ``timeout``)."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.process.args} did not finish within {timeout} s")
        return code, self.out.read_text(), self.err.read_text()


class Rkt:
    """``rkt`` (with the nettest flavor available) on its own data directory; remembers every
    pod it saw, for the leak check."""

    def __init__(self, data: Path, local_config: Path):
        self.data, self.local_config = data, local_config
        self.started: list[Started] = []
        self.seen: set[str] = set()
        self.lease_dirs: list[Path] = [LEASES]  # tests add the dataDir of their own networks
        # bridges the tests' networks create: CNI's bridge plugin never deletes one (other pods
        # may join it any time), so the test removes it once its pods are gone
        self.bridges: list[str] = []

    def argv(self, *args) -> list[str]:
        return [sys.executable, str(HERE / "rkt_with_nettest.py"), f"--dir={self.data}",
                f"--local-config={self.local_config}", "--insecure-options=image",
                *map(str, args)]

    def __call__(self, *args, check=None, timeout=120):
        done = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        self.note_pods()
        if check is not None:
            assert done.returncode == check, (done.stdout, done.stderr)
        return done

    def start(self, *args) -> Started:
        started = Started(self.argv(*args), self.data.parent / f"started-{len(self.started)}")
        self.started.append(started)
        return started

    def note_pods(self) -> list[str]:
        """The UUIDs of the pods now in the data directory (remembered in ``seen``)."""
        pods = self.data / "pods"
        uuids = [p.name for d in (pods.iterdir() if pods.is_dir() else ()) if d.is_dir()
                 for p in d.iterdir()]
        self.seen.update(uuids)
        return uuids

    def status(self, uuid: str) -> dict[str, str]:
        out = self("status", uuid).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def running_pods(self) -> list[str]:
        run_dir = self.data / "pods" / "run"
        return sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []

    def only_pod(self) -> str:
        """The UUID of the (one) pod in ``run/``, once there is one."""
        uuid = wait_until(self.running_pods, what="a pod in run/")[0]
        self.seen.add(uuid)
        return uuid

    def leaks(self) -> dict[str, list]:
        self.note_pods()
        return leaks(self.seen, self.lease_dirs)

    def finish(self, tmp_path: Path) -> list[str]:
        """Stop every pod, wait for every process, check for leaks at exit and after gc, then
        remove whatever is left; return the problems found."""
        problems = []
        for uuid in self.running_pods():
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
            wait_until(lambda: not _holders(tmp_path), 20)
        except AssertionError:
            holders = _holders(tmp_path)
            problems.append(f"processes left: {[_cmdline(p) for p in holders]}")
            for pid in holders:
                os.kill(pid, signal.SIGKILL)
        empty = {"netns": [], "links": [], "iptables": [], "leases": []}
        try:
            wait_until(lambda: self.leaks() == empty, 10)
        except AssertionError:
            problems.append(f"left after the pods exited: {self.leaks()}")
        self("gc", "--grace-period=0s")
        left = self.leaks()
        if left != empty:
            problems.append(f"left after rkt gc: {left}")
            scrub(self.seen, self.lease_dirs)
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
    """The test flavor and every installed flavor with contained networking."""
    code = ("from rkt_core.plugins import Plugins\n"
            "for n, f in sorted(Plugins().stage1_flavors().items()):\n"
            "    s = f.factory()\n"
            "    print(n) if s.features.contained_network else None\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return ["nettest"] + [n for n in done.stdout.split() if n != "nettest"]


@pytest.fixture(scope="session", autouse=True)
def lease_directories():
    """host-local leaves a directory per network under /var/lib/cni/networks (its lock and
    last address, no lease); remove those this session created, under host-local's lock."""
    before = set(os.listdir(LEASES)) if LEASES.is_dir() else set()
    yield
    for name in set(os.listdir(LEASES)) - before if LEASES.is_dir() else ():
        directory = LEASES / name
        try:
            lock = os.open(directory / "lock", os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            names = os.listdir(directory)
            if all(n in NOT_LEASES or n.startswith("last_reserved_ip") for n in names):
                for n in names:
                    os.unlink(directory / n)
                os.rmdir(directory)
        finally:
            os.close(lock)


@pytest.fixture
def rkt(tmp_path):
    local = tmp_path / "etc"
    (local / "net.d").mkdir(parents=True)
    rkt = Rkt(tmp_path / "data", local)
    yield rkt
    problems = rkt.finish(tmp_path)
    assert problems == []
