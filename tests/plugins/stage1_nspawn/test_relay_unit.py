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
