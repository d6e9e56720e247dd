"""Everything at once on one store, for a bounded time on the machine's two cores: pods run with
the fly flavor and with the nspawn flavor on the default network, ``gc``, ``prepare`` and ``rm``, ``image gc``,
``image rm``, two ``fetch`` of the same image and ``list``/``image list``, each in a loop.

Every failure must be rkt's clear error (``rkt: ...``, exit 254, no traceback) and one of the
known answers to a race (:data:`RACES`, which name what changed under the command); the suite
prints how many of each it saw. Meanwhile a pod keeps running on an image nobody asks to
remove: that image must stay listed throughout. Afterwards nothing is lost, corrupted or
leaked: every pod lists without a warning and goes with ``gc``, every image verifies, rows and
blobs match, nothing stays mounted, and no network namespace, link, iptables rule or
host-local lease of any pod is left.

``RKT_CONCURRENCY_SECONDS`` sets how long the loops last (default 75).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from hostile import store_state

from rkt_core.testing.aci import busybox_aci

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "net_cni"))
from netcheck import leaks, scrub, wait_until  # noqa: E402 - the networking tests' leak check

pytestmark = pytest.mark.root
SECONDS = float(os.environ.get("RKT_CONCURRENCY_SECONDS", "75"))
IMAGE = "example.com/busybox:1.0"

# The answers to a race a command may give, by what changed under it; anything else is a bug.
RACES = {
    "image removed while the pod was prepared":
        "was removed from the store while the pod was being prepared",
    "image removed before": r'no image named ".*" in the store',
    "image removed meanwhile": "was removed by another rkt command meanwhile",
    "pod removed before": r'no matches found for "|pod ".*" was not present',
    "pod removed meanwhile": r'pod ".*" is gone',
}


class Loops:
    """Commands run in loops by threads until a deadline; what each returned, classified."""

    def __init__(self, data: Path, deadline: float):
        self.data = data
        self.deadline = deadline
        self.uuids: set[str] = set()
        self.counts: Counter = Counter()  # (command, outcome) -> times
        self.examples: dict[str, str] = {}  # outcome -> the stderr of one
        self.unexplained: list[tuple[str, int, str]] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "rkt_core.cli.main", f"--dir={self.data}",
                "--insecure-options=image", *map(str, args)]

    def rkt(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300)

    def record(self, command: str, done: subprocess.CompletedProcess, ok: bool = True) -> None:
        """Count the outcome of ``done``; a failure must be a clear error about a race."""
        with self._lock:
            if done.returncode == 0 and ok:
                self.counts[command, "ok"] += 1
                return
            race = next((name for name, pattern in RACES.items()
                         if re.search(pattern, done.stderr)), None)
            clear = (done.returncode == 254 and "Traceback" not in done.stderr
                     and "unexpected error" not in done.stderr
                     and re.search(r"(^|\n)rkt: ", done.stderr))
            if clear and race:
                self.counts[command, race] += 1
                self.examples.setdefault(race, done.stderr)
            else:
                self.counts[command, "unexplained"] += 1
                self.unexplained.append((command, done.returncode, done.stdout + done.stderr))

    def loop(self, command: str, step) -> None:
        while time.monotonic() < self.deadline:
            step(command)

    # --- the steps -------------------------------------------------------------------------

    def run_pod(self, command: str, *flags: str) -> None:
        uuid_file = self.data.parent / f"uuid-{threading.get_ident()}"
        done = self.rkt("run", *flags, f"--uuid-file-save={uuid_file}", self.aci, "--exec",
                        "/bin/sh", "--", "-c", "echo ok")
        if uuid_file.exists():
            with self._lock:
                self.uuids.add(uuid_file.read_text().strip())
            uuid_file.unlink()
        self.record(command, done, ok=done.stdout.splitlines()[-1:] == ["ok"])

    def prepare_and_remove(self, command: str) -> None:
        """A prepared pod (which ``gc`` leaves for a day) removed with ``rkt rm``."""
        uuid_file = self.data.parent / f"uuid-{threading.get_ident()}"
        prepared = self.rkt("prepare", "--stage1-name=fly", f"--uuid-file-save={uuid_file}",
                            self.aci)
        self.record("prepare", prepared)
        if prepared.returncode == 0:
            uuid = uuid_file.read_text().strip()
            uuid_file.unlink()
            self.record(command, self.rkt("rm", uuid))

    def list_everything(self, command: str) -> None:
        for args in (["list"], ["list", "--format=json"], ["image", "list", "--no-legend"]):
            done = self.rkt(*args)
            self.record(command, done, ok="warning" not in done.stderr)
            if args[0] == "image" and done.returncode == 0 and "example.com/keeper" not in done.stdout:
                with self._lock:
                    self.problems.append(f"the keeper image was not listed:\n{done.stdout}")


@pytest.fixture
def images(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    return (busybox_aci(images / "bb.aci", exec=["/bin/true"]),
            busybox_aci(images / "keeper.aci", name="example.com/keeper",
                        exec=["/bin/sh", "-c", "sleep 3600"]))


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]


def test_everything_at_once_loses_corrupts_and_leaks_nothing(tmp_path, images, figures):
    data = tmp_path / "data"
    loops = Loops(data, 0)
    loops.aci, keeper_aci = images
    keeper_uuid = tmp_path / "keeper-uuid"
    keeper = subprocess.Popen(loops.argv("run", "--stage1-name=fly",
                                         f"--uuid-file-save={keeper_uuid}", keeper_aci),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: keeper_uuid.exists() and loops.rkt(
            "status", keeper_uuid.read_text().strip()).stdout.count("state=running"),
            120, "the keeper pod to run")
        loops.uuids.add(keeper_uuid.read_text().strip())
        loops.deadline = time.monotonic() + SECONDS
        steps = {
            "run fly": lambda c: loops.run_pod(c, "--stage1-name=fly"),
            "run nspawn --net=default": lambda c: loops.run_pod(c, "--stage1-name=nspawn",
                                                                 "--net=default"),
            "fetch (1)": lambda c: loops.record(c, loops.rkt("fetch", loops.aci)),
            "fetch (2)": lambda c: loops.record(c, loops.rkt("fetch", loops.aci)),
            "gc": lambda c: loops.record(c, loops.rkt("gc", "--grace-period=0s")),
            "rm": loops.prepare_and_remove,
            "image gc": lambda c: loops.record(c, loops.rkt("image", "gc",
                                                            "--grace-period=0s")),
            "image rm": lambda c: loops.record(c, loops.rkt("image", "rm", IMAGE)),
            "list": loops.list_everything,
        }
        threads = [threading.Thread(target=loops.loop, args=(name, step), name=name)
                   for name, step in steps.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop = loops.rkt("stop", "--force", keeper_uuid.read_text().strip()) \
            if keeper_uuid.exists() else None
        try:
            keeper.wait(60)
        except subprocess.TimeoutExpired:
            keeper.kill()
            keeper.wait()
    print_outcomes(loops.counts, loops.examples)
    trials = sum(loops.counts.values())
    figures.add("concurrency", trials, trials - sum(n for (_, outcome), n in loops.counts.items()
                                                    if outcome == "ok"))
    problems = [f"{c}: exit {code}\n{out}" for c, code, out in loops.unexplained]
    problems += loops.problems
    assert stop is not None and stop.returncode == 0, stop and stop.stderr
    problems += check_afterwards(loops)
    assert not problems, "\n\n".join(problems[:20])
    assert all(loops.counts[name, "ok"] > 0 for name in [*steps, "prepare"]), loops.counts


def check_afterwards(loops: Loops) -> list[str]:
    """What is wrong with the store and the host once the loops ended."""
    data, problems = loops.data, []
    listed = loops.rkt("list", "--format=json")
    if listed.returncode != 0 or listed.stderr:
        problems.append(f"list afterwards: {listed.stderr}")
    for key in store_state(data)["rows"]:
        verify = loops.rkt("image", "verify", key)
        if verify.returncode != 0:
            problems.append(f"image verify {key}: {verify.stderr}")
    gc = loops.rkt("gc", "--grace-period=0s")
    left = [f"{d.name}/{p.name}" for d in (data / "pods").iterdir() for p in d.iterdir()]
    if gc.returncode != 0 or left:
        problems.append(f"gc afterwards: {gc.stderr} left {left}")
    image_gc = loops.rkt("image", "gc", "--grace-period=0s")
    state = store_state(data)
    if image_gc.returncode != 0 or state["rows"] or state["blob"] or state["tmp"] \
            or state["trees"]:
        problems.append(f"image gc afterwards: {image_gc.stderr} left {state}")
    if mounts_under(data):
        problems.append(f"mounts left: {mounts_under(data)}")
    empty = {"netns": [], "links": [], "iptables": [], "leases": []}
    try:
        wait_until(lambda: leaks(loops.uuids) == empty, 30, "the pods' networks to go")
    except AssertionError:
        problems.append(f"network leaks: {leaks(loops.uuids)}")
        scrub(loops.uuids)
    return problems


def print_outcomes(counts: Counter, examples: dict[str, str]) -> None:
    print("\noutcomes of the concurrent commands:")
    for (command, outcome), n in sorted(counts.items()):
        print(f"  {command:<28}{outcome:<44}{n:>6}")
    for outcome, stderr in sorted(examples.items()):
        print(f"{outcome}, for example:\n  " + stderr.strip().replace("\n", "\n  "))
