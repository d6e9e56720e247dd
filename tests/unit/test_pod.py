"""Pod directories: states from directory + lock, transitions, lookups by UUID prefix."""

import os
import subprocess
import sys

import pytest

from rkt_core.errors import NotFoundError, RktError
from rkt_core.pod.pod import Pod


def state_seen_by_another_process(data_dir, uuid):
    code = ("import sys; from rkt_core.pod.pod import Pod; "
            "print(Pod.open(sys.argv[1], sys.argv[2]).state)")
    return subprocess.run([sys.executable, "-c", code, str(data_dir), uuid],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_lifecycle_states(tmp_path):
    pod = Pod.create(str(tmp_path))
    assert pod.state_dir == "prepare" and pod.state == "preparing"
    assert state_seen_by_another_process(tmp_path, pod.uuid) == "preparing"
    pod.to_prepared()
    assert state_seen_by_another_process(tmp_path, pod.uuid) == "prepared"
    pod.to_run()
    assert state_seen_by_another_process(tmp_path, pod.uuid) == "running"
    pod.close()
    reopened = Pod.open(str(tmp_path), pod.uuid)
    assert reopened.state == "exited"
    reopened.to_exited_garbage()
    assert reopened.state == "exited garbage"
    assert reopened.gc_marked_at is not None


def test_a_pod_is_made_durable_before_it_becomes_prepared(tmp_path, monkeypatch):
    # Its files are written without fsync while it is prepared; one syncfs covers them, and it
    # must come before the rename that makes the pod prepared (a crash after the rename must
    # find every file whole).
    import rkt_core.pod.pod as pod_module

    synced = []

    def syncfs(path):
        synced.append((path, sorted(os.listdir(path))))

    monkeypatch.setattr(pod_module, "syncfs", syncfs)
    pod = Pod.create(str(tmp_path))
    with open(pod.file("pod"), "w") as f:
        f.write("{}")
    preparing = pod.path
    pod.to_prepared()
    assert synced == [(preparing, ["pod"])]
    assert pod.state == "prepared" and not os.path.exists(preparing)


def test_a_handle_reads_the_pod_after_another_process_moved_it(tmp_path):
    pod = Pod.create(str(tmp_path))
    with open(pod.file("pod"), "w") as f:
        f.write("{}")
    pod.to_run()
    pod.close()
    reader = Pod.open(str(tmp_path), pod.uuid)
    with Pod.open(str(tmp_path), pod.uuid) as gc:
        gc.to_exited_garbage()  # what a concurrent gc does while list reads
    assert reader.state_dir == "run"
    assert reader.manifest_json() == b"{}" and reader.created_at is None
    assert reader.read_text("pod") == "{}"
    reader.close()


def test_unlocked_prepare_is_an_aborted_prepare(tmp_path):
    pod = Pod.create(str(tmp_path))
    pod.close()
    with Pod.open(str(tmp_path), pod.uuid) as again:
        assert again.state == "aborted prepare"
        again.to_garbage()
        assert again.state == "garbage"


def test_a_prepared_pod_runs_only_once(tmp_path):
    pod = Pod.create(str(tmp_path))
    pod.to_prepared()
    first = Pod.open(str(tmp_path), pod.uuid)
    second = Pod.open(str(tmp_path), pod.uuid)
    first.to_run()
    with pytest.raises(RktError, match="already being run"):
        second.to_run()
    first.close()
    second.close()


def test_running_pod_cannot_be_marked(tmp_path):
    pod = Pod.create(str(tmp_path))
    pod.to_run()
    other = Pod.open(str(tmp_path), pod.uuid)
    with pytest.raises(RktError, match="running"):
        other.to_exited_garbage()
    pod.close()
    other.close()


def test_find_by_prefix(tmp_path):
    pods = [Pod.create(str(tmp_path)) for _ in range(2)]
    for pod in pods:
        pod.to_prepared()
    found = Pod.find(str(tmp_path), pods[0].uuid[:12].upper())
    assert found.uuid == pods[0].uuid
    with pytest.raises(NotFoundError, match="no matches found"):
        Pod.find(str(tmp_path), "ffffffff-0000")
    for uuid in ("aaaa1111-0000-4000-8000-000000000000", "aaaa2222-0000-4000-8000-000000000000"):
        os.mkdir(tmp_path / "pods" / "prepared" / uuid)
    with pytest.raises(RktError, match="ambiguous uuid, 2 matches"):
        Pod.find(str(tmp_path), "aaaa")
    with pytest.raises(RktError, match="empty"):
        Pod.find(str(tmp_path), " ")


def test_pod_files_and_times(tmp_path):
    pod = Pod.create(str(tmp_path))
    assert pod.created_at is None and pod.started_at is None and pod.pid is None
    open(pod.file("pod-created"), "w").close()
    with open(pod.file("pid"), "w") as f:
        f.write("1234")
    status = pod.file("stage1", "rootfs", "rkt", "status")
    os.makedirs(status)
    for name, text in (("web", "0"), ("db", "3"), ("web-started", "x")):
        with open(os.path.join(status, name), "w") as f:
            f.write(text)
    assert pod.created_at and pod.started_at and pod.pid == 1234
    assert pod.app_exit_codes() == {"db": 3, "web": 0}
    assert pod.networks() == []


def test_a_stage1_may_record_ppid_instead_of_pid(tmp_path):
    pod = Pod.create(str(tmp_path))
    with open(pod.file("ppid"), "w") as f:
        f.write("4321\n")
    assert pod.pid == 4321 and pod.started_at == os.stat(pod.file("ppid")).st_mtime
    with open(pod.file("pid"), "w") as f:
        f.write("1234")
    assert pod.pid == 1234 and pod.started_at == os.stat(pod.file("pid")).st_mtime


def test_cgroup_of_a_running_pod(tmp_path):
    pod = Pod.create(str(tmp_path))
    pod.to_run()
    with open(pod.file("pid"), "w") as f:
        f.write(str(os.getpid()))
    with open("/proc/self/cgroup") as f:
        lines = dict(line.split(":", 2)[1:] for line in f.read().splitlines())
    ours = lines.get("name=systemd", lines.get(""))
    assert pod.cgroup() == ours.removesuffix("/init.scope")
    with open(pod.file("subcgroup"), "w") as f:
        f.write("machine.slice/rkt-x.scope\n")
    assert pod.cgroup() == "/machine.slice/rkt-x.scope"
    pod.close()
    with Pod.open(str(tmp_path), pod.uuid) as exited:
        assert exited.state == "exited" and exited.cgroup() == ""


def test_entries_list_every_state_without_opening(tmp_path):
    prepared = Pod.create(str(tmp_path))
    prepared.to_prepared()
    running = Pod.create(str(tmp_path))
    running.to_run()
    from rkt_core.pod.pod import entries

    assert sorted(entries(str(tmp_path))) == sorted([("prepared", prepared.uuid),
                                                     ("run", running.uuid)])
    running.close()


def test_random_uuids_are_version_4_and_distinct():
    import uuid

    from rkt_core.pod.pod import random_uuid

    made = [random_uuid() for _ in range(200)]
    for text in made:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    assert len(set(made)) == len(made)
