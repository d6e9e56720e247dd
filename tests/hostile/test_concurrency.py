"""Everything at once on one store, for a bounded time on the machine's two cores: pods run with
the fly flavor and with the nspawn flavor on the default network, ``gc``, ``prepare`` and
``rm``, ``image gc``, ``image rm``, two ``fetch`` of the same image and ``list``/``image list``,
each in a loop.

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
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from hostile import store_state

from rkt_core.sys.mount import mounts_under
from rkt_core.testing.aci import busybox_aci
from rkt_core.testing.netleaks import NOTHING, leaks, scrub
from rkt_core.testing.runner import Rkt
from rkt_core.testing.wait import wait_for
from rkt_net_cni import portfwd

pytestmark = pytest.mark.root
SECONDS = float(os.environ.get("RKT_CONCURRENCY_SECONDS", "75"))
SUCCEED_WITHIN = 600  # seconds after the deadline a command that never succeeded may go on
IMAGE = "example.com/busybox:1.0"

# The answers to a race a command may give, by what changed under it; anything else is a bug.
RACES = {
    "image removed while the pod was prepared":
        "was removed from the store while the pod was being prepared",
    "image removed before": r'no image named ".*" in the store',
    "image removed meanwhile": "was removed by another rkt command meanwhile",
    "image removed while read": r'was removed from the store \(by "rkt image rm" or "rkt image '
                                r'gc"\) meanwhile',
    "pod removed before": r'no matches found for "|pod ".*" was not present',
    "pod removed meanwhile": r'pod ".*" (is gone|was removed by another process)',
    "pod being removed": r'pod ".*" is (exited )?deleting',
}


class Loops:
    """Commands run in loops by threads until a deadline; what each returned, classified."""

    def __init__(self, runner: Rkt, aci: Path):
        self.runner = runner
        self.data = runner.data_dir
        self.aci = aci
        self.deadline = 0.0
        self.uuids: set[str] = set()
        self.counts: Counter = Counter()  # (command, outcome) -> times
        self.examples: dict[str, str] = {}  # outcome -> the stderr of one
        self.unexplained: list[tuple[str, int, str]] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def rkt(self, *args) -> subprocess.CompletedProcess:
        return self.runner(*args, timeout=300)

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
        """Run ``step`` until the deadline, then on until it succeeded once (on a slow machine
        the others may have kept it failing until they stopped)."""
        while time.monotonic() < self.deadline or (
                not self.counts[command, "ok"]
                and time.monotonic() < self.deadline + SUCCEED_WITHIN):
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


def test_everything_at_once_loses_corrupts_and_leaks_nothing(tmp_path, images, figures):
    runner = Rkt(tmp_path, flavor="fly", timeout=300)
    aci, keeper_aci = images
    loops = Loops(runner, aci)
    try:
        keeper = runner.start(keeper_aci)  # an image in use nobody asks to remove
        loops.uuids.add(keeper.uuid)
        loops.deadline = time.monotonic() + SECONDS
        steps = {
            "run fly": lambda c: loops.run_pod(c, "--stage1-name=fly"),
            "run nspawn --net=default": lambda c: loops.run_pod(c, "--stage1-name=nspawn",
                                                                 "--net=default"),
            "fetch (1)": lambda c: loops.record(c, loops.rkt("fetch", aci)),
            "fetch (2)": lambda c: loops.record(c, loops.rkt("fetch", aci)),
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
        stop = runner("stop", "--force", keeper.uuid)
        keeper.wait()
    finally:
        runner.cleanup()
    print_outcomes(loops.counts, loops.examples)
    trials = sum(loops.counts.values())
    figures.add("concurrency", trials, trials - sum(n for (_, outcome), n in loops.counts.items()
                                                    if outcome == "ok"))
    problems = [f"{c}: exit {code}\n{out}" for c, code, out in loops.unexplained]
    problems += loops.problems
    assert stop.returncode == 0, stop.stderr
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
    if mounts_under(str(data)):
        problems.append(f"mounts left: {mounts_under(str(data))}")
    marks = {chain for uuid in loops.uuids for chain in portfwd.chains(uuid)}
    try:
        wait_for(lambda: leaks(loops.uuids, marks=marks) == NOTHING, 30,
                 "the pods' networks to go")
    except AssertionError:
        problems.append(f"network leaks: {leaks(loops.uuids, marks=marks)}")
        scrub(loops.uuids, marks=marks)
    return problems


def print_outcomes(counts: Counter, examples: dict[str, str]) -> None:
    print("\noutcomes of the concurrent commands:")
    for (command, outcome), n in sorted(counts.items()):
        print(f"  {command:<28}{outcome:<44}{n:>6}")
    for outcome, stderr in sorted(examples.items()):
        print(f"{outcome}, for example:\n  " + stderr.strip().replace("\n", "\n  "))
