"""What a killed command leaves is removed by the next one: the work directory of
``image render|extract`` beside its target, the embryo directory of a pod being created."""

from __future__ import annotations

import os
import signal

import pytest
from hostile import snapshot

from rkt_core.testing.aci import busybox_aci

KILLED = -signal.SIGKILL


@pytest.fixture
def image(rkt, tmp_path):
    aci = busybox_aci(tmp_path / "bb.aci", exec=["/bin/true"])
    assert rkt("fetch", aci).returncode == 0
    return "example.com/busybox:1.0"


@pytest.mark.parametrize("command", ["render", "extract"])
def test_a_killed_render_leaves_nothing_the_next_one_keeps(rkt, image, tmp_path, command,
                                                           victim, figures):
    out = tmp_path / "out"
    killed = rkt("image", command, image, out, env={"RKT_TEST_CRASH_AT": "extract.rendered"})
    assert killed.returncode == KILLED
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".rkt-extract-")]
    assert len(leftovers) == 1 and not out.exists()
    again = rkt("image", command, image, out)
    figures.add("crash leftovers", trials=2)
    assert again.returncode == 0, again.stderr
    assert [n for n in os.listdir(tmp_path) if n.startswith(".rkt-extract-")] == []
    assert (out / "rootfs" / "bin" / "busybox").is_file()
    assert victim.changes() == {}


def test_a_render_in_progress_keeps_its_work_directory(tmp_path):
    from rkt_core.cli.image import _new_work_dir, _remove_abandoned_work_dirs

    work, fd = _new_work_dir(str(tmp_path))
    (tmp_path / ".rkt-extract-crashed").mkdir()
    _remove_abandoned_work_dirs(str(tmp_path))
    assert os.listdir(tmp_path) == [os.path.basename(work)]
    os.close(fd)
    _remove_abandoned_work_dirs(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_gc_removes_the_embryo_of_a_killed_pod_creation(rkt, image, figures):
    killed = rkt("prepare", "--stage1-name=fly", image, env={"RKT_TEST_CRASH_AT": "pod.embryo"})
    assert killed.returncode == KILLED
    embryos = rkt.data_dir / "pods" / "embryo"
    assert len(os.listdir(embryos)) == 1
    gc = rkt("gc", "--grace-period=0s")
    figures.add("crash leftovers")
    assert gc.returncode == 0, gc.stderr
    assert snapshot(rkt.data_dir / "pods") == {d: "dir" for d in os.listdir(rkt.data_dir / "pods")}
