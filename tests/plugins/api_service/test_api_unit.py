"""The API service's parts without root: the event journal, events derived from pod
directories, the generated messages, filters, and a lean start-up for other commands."""

import json
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from rkt_api_service import events, journal
from rkt_api_service.journal import Event
from rkt_core.pod.pod import Pod

PLUGIN = Path(__file__).parents[3] / "rkt_plugins" / "api_service" / "rkt_api_service"


def test_journal_appends_and_follows_across_rotations(tmp_path, monkeypatch):
    reader = journal.Reader(str(tmp_path))
    assert reader.history() == [] and reader.new() == []
    first = Event("POD_STARTED", "u1", "u1", 1.5, (("flavor", "fly"),))
    journal.append(str(tmp_path), first)
    assert reader.new() == [first]
    directory = tmp_path / "api-service"
    assert oct(directory.stat().st_mode & 0o7777) == "0o2750"
    assert oct((directory / "events").stat().st_mode & 0o777) == "0o640"
    monkeypatch.setattr(journal, "MAX_BYTES", 300)
    written = [Event("IMAGE_IMPORTED", f"sha512-{i}", "example.com/x", float(i))
               for i in range(10)]
    seen = []
    for event in written:
        journal.append(str(tmp_path), event)
        seen += reader.new()
    assert seen == written  # read across rotations, none lost or repeated
    assert (directory / "events.1").exists()
    late = journal.Reader(str(tmp_path)).history()
    assert late[-1] == written[-1] and set(late) <= {first, *written}


def test_journal_skips_what_it_cannot_parse(tmp_path):
    good = Event("POD_EXITED", "u", "u", 2.0, (("exit-code", "3"),))
    journal.append(str(tmp_path), good)
    with open(tmp_path / "api-service" / "events", "ab") as f:
        f.write(b'not json\n{"type": 1}\n["x"]\n{"type":"POD_EXITED","id":"v","from":"v",'
                b'"time":"later"}\n')
    journal.append(str(tmp_path), good)
    with open(tmp_path / "api-service" / "events", "ab") as f:
        f.write(b'{"type":"POD_EXI')  # torn by a crash: waits for the rest
    assert journal.Reader(str(tmp_path)).history() == [good, good]


def test_huge_event_data_is_dropped_not_the_event(tmp_path):
    event = Event("POD_EXITED", "u", "u", 1.0, tuple((f"app-{i}", "x" * 100) for i in range(99)))
    journal.append(str(tmp_path), event)
    (read,) = journal.Reader(str(tmp_path)).history()
    assert (read.type, read.id, read.data) == ("POD_EXITED", "u", ())


def test_concurrent_writers_never_mix_lines(tmp_path):
    code = ("import sys; from rkt_api_service.journal import Event, append\n"
            "for i in range(200): append(sys.argv[1], Event('POD_PREPARED', sys.argv[2] + str(i),"
            " 'x' * 500, 1.0))")
    writers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"w{n}-"])
               for n in range(3)]
    assert [w.wait() for w in writers] == [0, 0, 0]
    found = journal.Reader(str(tmp_path)).history()
    assert len(found) == 600 and len({e.id for e in found}) == 600


@pytest.mark.parametrize("old,new,derived", [
    (None, "prepared", ["POD_PREPARED"]),
    ("preparing", "aborted prepare", ["POD_PREPARE_ABORTED"]),
    ("prepared", "running", ["POD_STARTED"]),
    ("running", "exited", ["POD_EXITED"]),
    ("prepared", "exited", ["POD_STARTED", "POD_EXITED"]),  # ran between two looks
    (None, "exited garbage", ["POD_STARTED", "POD_EXITED"]),
    ("exited", "exited garbage", []),
    ("exited garbage", None, ["POD_GARBAGE_COLLECTED"]),
    ("running", "running", []),
])
def test_events_derived_from_state_changes(old, new, derived):
    assert events.derived_events(old, new) == derived


def _event_log(tmp_path) -> events.EventLog:
    ctx = types.SimpleNamespace(data_dir=str(tmp_path), warn=print,
                                store=types.SimpleNamespace(list_images=lambda: []))
    log = events.EventLog(ctx, poll_seconds=3600)  # collected by hand below
    log.start()
    return log


def test_journal_and_pod_directories_give_each_pod_event_once(tmp_path):
    prepared = Pod.create(str(tmp_path))
    prepared.to_prepared()
    log = _event_log(tmp_path)
    seq = log.after(-1, 0)[1]
    pod = Pod.create(str(tmp_path))  # a run: prepare/ then run/, as rkt run does
    journal.append(str(tmp_path), Event("POD_PREPARED", pod.uuid, pod.uuid, 1.0))
    pod.to_run()
    log.collect()
    new, seq = log.after(seq, 0)
    assert [(e.type, e.id) for e in new] == [("POD_PREPARED", pod.uuid),
                                            ("POD_STARTED", pod.uuid)]
    journal.append(str(tmp_path), Event("POD_STARTED", pod.uuid, pod.uuid, 2.0))  # late
    pod.close()  # its last process died: nobody wrote POD_EXITED
    log.collect()
    new, seq = log.after(seq, 0)
    assert [(e.type, e.id) for e in new] == [("POD_EXITED", pod.uuid)]
    prepared.close()
    log.collect()
    assert log.after(seq, 0)[0] == []  # prepared pods' locks mean nothing: not probed
    log.stop()


def _pod_of(data_dir, *apps: str) -> Pod:
    """A pod being run (in ``prepare/``, locked) with a manifest of ``apps``."""
    pod = Pod.create(str(data_dir))
    image = {"name": "example.com/x", "id": "sha512-" + "a" * 64}
    Path(pod.file("pod")).write_text(json.dumps({
        "acVersion": "0.7.4", "acKind": "PodManifest",
        "apps": [{"name": app, "image": image} for app in apps]}))
    return pod


def _exits(pod: Pod, app: str, code: int) -> None:
    status = Path(pod.file("stage1", "rootfs", "rkt", "status"))
    status.mkdir(parents=True, exist_ok=True)
    (status / app).write_text(str(code))


def _seen(log, seq):
    new, seq = log.after(seq, 0)
    return [(e.type, e.name, e.data) for e in new], seq


def test_app_events_from_pod_directories_each_once(tmp_path):
    log = _event_log(tmp_path)
    seq = log.after(-1, 0)[1]
    one, several = _pod_of(tmp_path, "web"), _pod_of(tmp_path, "db", "cache")
    one.to_run()
    several.to_run()
    log.collect()
    found, seq = _seen(log, seq)
    # started: the only app of a pod with its pod; of several apps, when each starts is unknown
    assert sorted(found) == sorted([("POD_STARTED", one.uuid, ()), ("APP_STARTED", "web", ()),
                                    ("POD_STARTED", several.uuid, ())])
    _exits(several, "cache", 3)  # one app exited, the pod runs on
    log.collect()
    assert _seen(log, seq)[0] == [("APP_EXITED", "cache", (("exit-code", "3"),))]
    seq = _seen(log, seq)[1]
    # the journal says an app exited before the pod directory shows it: once all the same
    journal.append(str(tmp_path), Event("APP_EXITED", one.uuid, "web", 5.0,
                                        (("exit-code", "0"),)))
    _exits(one, "web", 0)
    _exits(several, "db", 1)
    one.close()
    several.close()
    log.collect()
    found, seq = _seen(log, seq)
    web, db = ("APP_EXITED", "web", (("exit-code", "0"),)), ("APP_EXITED", "db",
                                                              (("exit-code", "1"),))
    one_exited, several_exited = ("POD_EXITED", one.uuid, ()), ("POD_EXITED", several.uuid, ())
    assert sorted(found) == sorted([web, db, one_exited, several_exited])
    assert found.index(web) < found.index(one_exited)  # a pod's apps exit before it does
    assert found.index(db) < found.index(several_exited)
    log.collect()
    assert _seen(log, seq)[0] == []
    log.stop()


def test_a_pod_run_between_two_looks_shows_its_app_events_before_its_exit(tmp_path):
    log = _event_log(tmp_path)
    seq = log.after(-1, 0)[1]
    pod = _pod_of(tmp_path, "web")
    pod.to_run()
    _exits(pod, "web", 7)
    pod.close()
    log.collect()
    assert _seen(log, seq)[0] == [("POD_STARTED", pod.uuid, ()), ("APP_STARTED", "web", ()),
                                  ("APP_EXITED", "web", (("exit-code", "7"),)),
                                  ("POD_EXITED", pod.uuid, ())]
    log.stop()


def test_apps_of_pods_running_when_the_service_starts_are_no_news(tmp_path):
    pod = _pod_of(tmp_path, "web")
    pod.to_run()
    log = _event_log(tmp_path)
    seq = log.after(-1, 0)[1]
    log.collect()
    assert _seen(log, seq)[0] == []
    _exits(pod, "web", 0)
    log.collect()
    assert _seen(log, seq)[0] == [("APP_EXITED", "web", (("exit-code", "0"),))]
    pod.close()
    log.stop()


def test_listeners_wake_up_on_new_events(tmp_path):
    log = _event_log(tmp_path)
    seq = log.after(-1, 0)[1]
    got = []
    waiter = threading.Thread(target=lambda: got.append(log.after(seq, 60)))
    waiter.start()
    journal.append(str(tmp_path), Event("IMAGE_REMOVED", "sha512-1", "", 3.0))
    log.collect()
    waiter.join(60)
    (([event], _),) = got
    assert event.type == "IMAGE_REMOVED"
    log.stop()


def test_event_filters():
    event = Event("POD_EXITED", "u", "u", 100.5)
    assert events.matches(event, set(), set(), set(), 0, 0)
    assert events.matches(event, {"POD_EXITED"}, {"u"}, {"u"}, 100, 100)
    assert not events.matches(event, {"POD_STARTED"}, set(), set(), 0, 0)
    assert not events.matches(event, set(), {"v"}, set(), 0, 0)
    assert not events.matches(event, set(), set(), set(), 101, 0)
    assert not events.matches(event, set(), set(), set(), 0, 99)


def test_generated_messages_match_the_proto(tmp_path):
    """api_pb2.py is committed; it must describe exactly what api.proto says."""
    from google.protobuf import descriptor_pb2

    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PLUGIN}",
                    f"--descriptor_set_out={tmp_path / 'set.pb'}", "api.proto"], check=True)
    expected = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "set.pb").read_bytes())
    for message in expected.file[0].message_type:  # protoc leaves json_name out of api_pb2
        for field in message.field:
            field.ClearField("json_name")
    code = ("import sys; from rkt_api_service import api_pb2; "
            "sys.stdout.buffer.write(api_pb2.DESCRIPTOR.serialized_pb)")
    committed = subprocess.run([sys.executable, "-c", code], capture_output=True,
                               check=True).stdout
    assert descriptor_pb2.FileDescriptorProto.FromString(committed) == expected.file[0]


def test_other_commands_do_not_import_grpc():
    code = ("import sys\nfrom rkt_core.cli.main import main\ntry:\n    main(['plugins'])\n"
            "finally:\n    print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('grpc', 'google', 'rkt_api_service')), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "api-service" in result.stdout
    loaded = json.loads(result.stderr.strip().splitlines()[-1].replace("'", '"'))
    assert "rkt_api_service.plugin" in loaded  # its commands were added, its observers known
    assert [m for m in loaded if not m.startswith("rkt_api_service")] == []  # no grpc, protobuf
    assert "rkt_api_service.server" not in loaded


def test_observers_record_events_in_the_journal(tmp_path):
    from rkt_api_service import plugin

    manifest = types.SimpleNamespace(apps=[types.SimpleNamespace(name="web")])
    pod = types.SimpleNamespace(data_dir=str(tmp_path), uuid="u", manifest=lambda: manifest,
                                app_exit_codes=lambda: {"web": 2})
    plugin.rkt_pod_prepared(pod)
    plugin.rkt_before_stage1(pod, "fly")
    plugin.rkt_pod_exited(pod, 2)
    plugin.rkt_pod_gc(pod)
    plugin.rkt_image_removed("sha512-1")  # outside a command: nowhere to record it
    found = [(e.type, e.name, e.data) for e in journal.Reader(str(tmp_path)).history()]
    assert found == [("POD_PREPARED", "u", ()), ("POD_STARTED", "u", (("flavor", "fly"),)),
                     ("APP_STARTED", "web", ()),
                     ("APP_EXITED", "web", (("exit-code", "2"),)),
                     ("POD_EXITED", "u", (("exit-code", "2"), ("app-web", "2"))),
                     ("POD_GARBAGE_COLLECTED", "u", ())]
