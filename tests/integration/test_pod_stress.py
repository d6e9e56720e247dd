"""Concurrency of pods and gc with the fly flavor: nothing corrupted, nothing leaked.

RKT_STRESS_SECONDS sets how long the run/gc loop lasts (default 120, as issue #3 asks).
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rkt_core.sys import mount
from rkt_core.testing.aci import busybox_aci

pytestmark = pytest.mark.root
SECONDS = float(os.environ.get("RKT_STRESS_SECONDS", "120"))


def mounts_under(path: Path) -> list[str]:
    return [m.mount_point for m in mount.mounts_under(str(path))]


def leftover_pods(data: Path) -> list[str]:
    return [f"{d.name}/{p.name}" for d in (data / "pods").iterdir() for p in d.iterdir()]


@pytest.fixture
def image(tmp_path):
    return busybox_aci(tmp_path / "busybox.aci", exec=["/bin/true"])


def test_two_gc_at_once_remove_each_pod_once(rkt, image):
    data = rkt.data_dir
    for _ in range(12):
        assert rkt("run", "--stage1-name=fly", image).returncode == 0
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: rkt("gc", "--grace-period=0s"), range(2)))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    collected = "".join(r.stdout for r in results).splitlines()
    assert len(collected) == 12 and len(set(collected)) == 12
    assert leftover_pods(data) == []
    assert mounts_under(data) == []


def test_run_and_gc_loops_on_two_cores(rkt, image):
    data = rkt.data_dir
    deadline = time.monotonic() + SECONDS

    def loop(_):
        failures, rounds = [], 0
        while time.monotonic() < deadline:
            run = rkt("run", "--stage1-name=fly", image, "--exec", "/bin/sh", "--", "-c",
                      "echo ok")
            if run.returncode != 0 or run.stdout != "ok\n":
                failures.append(("run", run.returncode, run.stderr))
            gc = rkt("gc", "--grace-period=0s")
            if gc.returncode != 0:
                failures.append(("gc", gc.returncode, gc.stderr))
            rounds += 1
        return rounds, failures

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(loop, range(2)))
    assert all(rounds > 0 for rounds, _ in results)
    failures = [f for _, failures in results for f in failures]
    assert not failures, "\n".join(map(repr, failures))
    final = rkt("gc", "--grace-period=0s")
    assert final.returncode == 0
    assert leftover_pods(data) == []
    assert mounts_under(data) == []
    assert rkt("list", "--no-legend").stdout == ""
