"""rkt killed (SIGKILL) at each crash point of fetch, render, prepare, run and gc, repeatedly:
afterwards ``rkt image verify`` passes, nothing stays mounted, ``gc`` and ``image gc`` repair
the rest (no pod stuck, every database row with its blob and every blob with its row, nothing
left in ``cas/tmp``), and the command works when run again."""

from __future__ import annotations

import signal

import pytest
from hostile import store_state

from rkt_core.testing.aci import busybox_aci

pytestmark = pytest.mark.root
KILLED = -signal.SIGKILL
REPEAT = 2

# crash point -> what to set up first, the command that reaches it
POINTS = {
    "fetch.staged": ([], ["fetch", "{aci}"]),
    "fetch.blob": ([], ["fetch", "{aci}"]),
    "fetch.files": ([], ["fetch", "{aci}"]),
    "render.tree": ([["fetch", "{aci}"]], ["prepare", "--stage1-name=fly", "{aci}"]),
    "render.marker": ([["fetch", "{aci}"]], ["prepare", "--stage1-name=fly", "{aci}"]),
    "pod.embryo": ([["fetch", "{aci}"]], ["prepare", "--stage1-name=fly", "{aci}"]),
    "prepare.apps": ([["fetch", "{aci}"]], ["prepare", "--stage1-name=fly", "{aci}"]),
    "run.moved": ([["fetch", "{aci}"]], ["run", "--stage1-name=fly", "{aci}"]),
    "gc.deleting": ([["run", "--stage1-name=fly", "{aci}"]], ["gc", "--grace-period=0s"]),
    "image-rm.row": ([["fetch", "{aci}"]], ["image", "rm", "example.com/busybox:1.0"]),
    "image-gc.tree": ([["run", "--stage1-name=fly", "{aci}"], ["gc", "--grace-period=0s"]],
                      ["image", "gc", "--grace-period=0s"]),
}


@pytest.fixture(scope="module")
def aci(tmp_path_factory):
    return busybox_aci(tmp_path_factory.mktemp("img") / "bb.aci", exec=["/bin/true"])


def mounts_under(path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]


def check_after_crash(rkt) -> None:
    assert mounts_under(rkt.data_dir) == []
    for key in store_state(rkt.data_dir)["rows"]:
        verify = rkt("image", "verify", key)
        assert verify.returncode == 0, verify.stderr
    gc = rkt("gc", "--grace-period=0s", "--expire-prepared=0s")
    assert gc.returncode == 0, gc.stderr
    pods = rkt.data_dir / "pods"
    assert [p for d in pods.iterdir() for p in d.iterdir()] == [], "a pod is stuck"
    image_gc = rkt("image", "gc", "--grace-period=0s")
    assert image_gc.returncode == 0, image_gc.stderr
    state = store_state(rkt.data_dir)
    assert state["blob"] == state["imageManifest"] == state["rows"] == []
    assert state["tmp"] == [] and state["trees"] == []
    assert mounts_under(rkt.data_dir) == []


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_each_point_loses_and_leaks_nothing(rkt, aci, point, figures):
    setup, command = POINTS[point]
    fill = lambda args: [a.format(aci=aci) for a in args]  # noqa: E731
    def set_up():
        for args in setup:
            done = rkt(*fill(args))
            assert done.returncode == 0, (args, done.stderr)

    for _ in range(REPEAT):
        set_up()
        crashed = rkt(*fill(command), env={"RKT_TEST_CRASH_AT": point})
        assert crashed.returncode == KILLED, (crashed.returncode, crashed.stderr)
        # The same steps, run again, work; then everything is repaired.
        set_up()
        again = rkt(*fill(command))
        assert again.returncode == 0, again.stderr
        check_after_crash(rkt)
        figures.add("crash points")
