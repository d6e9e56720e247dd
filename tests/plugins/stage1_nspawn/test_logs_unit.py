"""Following the logs of a pod whose journald has made the journal directory but no journal
file yet: journalctl gives up at once, the follower must not."""

import os
import uuid

from rkt_stage1_nspawn import logs, rootfs


class RunningPod:
    """A pod that reads as running (locked) for the first ``checks`` looks, then as exited."""

    def __init__(self, path: str, checks: int):
        self.path, self.uuid, self.checks = path, str(uuid.uuid4()), checks

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def is_locked(self) -> bool:
        self.checks -= 1
        return self.checks >= 0


def test_a_follower_keeps_following_while_the_journal_has_no_file_yet(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "POLL_SECONDS", 0.01)
    pod = RunningPod(str(tmp_path), checks=6)
    os.makedirs(rootfs.journal_dir(pod))  # journald made it; no journal file in it yet
    keepalives = 0
    for line in logs.read_logs(pod, "app", 0, True, None, None):
        assert line is None  # nothing was ever logged
        keepalives += 1
    assert pod.checks < 0 and keepalives >= 2  # followed until the pod no longer ran
