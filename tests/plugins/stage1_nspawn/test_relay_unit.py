"""The relay's loop without root: the descriptors it watches besides the apps' FIFOs (the apps'
exit statuses, for the early release of the pod's networks)."""

import os

from rkt_core.sys.watch import DirectoryWatch
from rkt_stage1_nspawn.relay import Relay


def test_pump_calls_what_it_watches_until_told_it_is_done(tmp_path):
    end_r, end_w = os.pipe()  # plays nspawn's pidfd: readable once nspawn exited
    calls = []

    def all_exited():
        calls.append(watch.has_all())
        if calls[-1]:
            (tmp_path / "c").write_text("0")  # another event, for a watch that is over
            os.write(end_w, b"x")  # the pod ends after its apps
        else:
            (tmp_path / "b").write_text("0")  # the second app exits
        return calls[-1]

    with DirectoryWatch(str(tmp_path), ["a", "b"]) as watch:
        (tmp_path / "a").write_text("0")  # the first app exits
        Relay({}, {}, lambda: None).pump(end_r, {watch.fileno(): all_exited})
    assert calls == [False, True]  # not called again once it said it was done
    os.close(end_r)
    os.close(end_w)


def test_without_a_status_watch_the_networks_wait_for_the_pod(tmp_path):
    """inotify refused (here: no such directory): no early release, and no error."""
    from types import SimpleNamespace

    from rkt_stage1_nspawn.stage1 import _watch_statuses

    pod = SimpleNamespace(file=lambda *parts: str(tmp_path.joinpath("missing", *parts)))
    assert _watch_statuses(pod, [SimpleNamespace(name="app")]) is None
    (tmp_path / "stage1" / "rootfs" / "rkt" / "status").mkdir(parents=True)
    pod = SimpleNamespace(file=lambda *parts: str(tmp_path.joinpath(*parts)))
    with _watch_statuses(pod, [SimpleNamespace(name="app")]) as watch:
        assert not watch.has_all()
