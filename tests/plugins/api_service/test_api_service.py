"""``rkt api-service`` end to end, as root with real pods: a client generated from api.proto
lists pods of every state and images with each filter, streams events of pods run by other
processes, follows logs; bad requests get error statuses; socket activation."""

import base64
import json
import os
import select
import signal
import socket
import subprocess
import time

import pytest

from apitest import Api, ApiError, read_response
from rkt_core.testing.aci import app_image, busybox_aci
from rkt_core.testing.runner import Rkt
from rkt_core.testing.wait import WAIT_TIMEOUT

pytestmark = pytest.mark.root

WAIT_FOR_GATE = "while [ ! -e /gate/go ]; do sleep 0.1; done"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return str(app_image(tmp_path_factory.mktemp("images") / "busybox.aci"))


@pytest.fixture
def gate(tmp_path):
    path = tmp_path / "gate"
    path.mkdir()
    yield path
    (path / "go").touch()  # whatever failed, the pods waiting for it end


def gated(gate, *script):
    """Arguments of an app that runs ``script`` with the gate directory mounted."""
    return [f"--volume=gate,kind=host,source={gate}", "--mount=volume=gate,target=/gate",
            "--exec", "/bin/sh", "--", "-c", "; ".join(script)]


def ids(response: dict, kind: str = "pods") -> set[str]:
    return {item["id"] for item in response[kind]}


@pytest.fixture
def nspawn(tmp_path):
    rkt = Rkt(tmp_path, flavor="nspawn")
    yield rkt
    rkt.cleanup()


@pytest.fixture
def fly(tmp_path):
    rkt = Rkt(tmp_path, flavor="fly")
    yield rkt
    rkt.cleanup()


def test_pods_of_every_state_with_each_filter(nspawn, service, image, gate, tmp_path):
    exited_file = tmp_path / "exited"
    assert nspawn.run("--net=default", f"--uuid-file-save={exited_file}", image,
                      "--exec", "/bin/sh", "--", "-c", "exit 3").returncode == 3
    exited = exited_file.read_text().strip()
    started = nspawn.start("--net=default", image, *gated(gate, WAIT_FOR_GATE))
    running = started.uuid
    prepared = nspawn("prepare", "--stage1-name=nspawn", image).stdout.strip()
    api = service.start(nspawn)

    pods = {p["id"]: p for p in api("ListPods")["pods"]}
    assert set(pods) == {exited, running, prepared}
    run, ex, prep = pods[running], pods[exited], pods[prepared]
    assert (run["state"], ex["state"], prep["state"]) == (
        "POD_STATE_RUNNING", "POD_STATE_EXITED", "POD_STATE_PREPARED")
    assert [(a["name"], a["state"], a["exit_code"]) for p in (run, ex, prep) for a in p["apps"]] \
        == [("busybox", "APP_STATE_RUNNING", -1), ("busybox", "APP_STATE_EXITED", 3),
            ("busybox", "APP_STATE_UNDEFINED", -1)]
    image_id = run["apps"][0]["image"]["id"]
    assert image_id.startswith("sha512-") and len(image_id) == 7 + 64
    assert run["apps"][0]["image"]["name"] == "example.com/busybox"
    assert run["apps"][0]["image"]["base_format"] == {"type": "IMAGE_TYPE_APPC",
                                                      "version": "0.7.4"}
    for pod in (run, ex):
        (network,) = pod["networks"]
        assert network["name"] == "default" and network["ipv4"].startswith("172.16.28.")
        assert int(pod["created_at"]) > 0 and int(pod["started_at"]) > 0 and pod["pid"] > 0
    assert prep["networks"] == [] and prep["pid"] == -1 and prep["started_at"] == "0"
    assert run["cgroup"].endswith(f"rkt-{running}") and ex["cgroup"] == ""
    assert all(p["manifest"] == "" for p in pods.values())

    def listed(*filters):
        return ids(api("ListPods", {"filters": list(filters)}))

    for state, uuid in (("RUNNING", running), ("EXITED", exited), ("PREPARED", prepared)):
        assert listed({"states": [f"POD_STATE_{state}"]}) == {uuid}
    assert listed({"states": ["POD_STATE_GARBAGE"]}) == set()
    assert listed({"ids": [prepared, "nope"]}) == {prepared}
    assert listed({"app_names": ["busybox"]}) == set(pods)
    assert listed({"app_names": ["busybox", "other"]}) == set()
    assert listed({"image_ids": [image_id]}) == set(pods)
    assert listed({"network_names": ["default"]}) == {running, exited}
    assert listed({"annotations": [{"Key": "x", "value": "y"}]}) == set()
    assert listed({"cgroups": [run["cgroup"]]}) == {running}
    assert listed({"pod_sub_cgroups": [run["cgroup"] + "/system.slice/busybox.service"]}) \
        == {running}
    assert listed({"states": ["POD_STATE_RUNNING"], "app_names": ["other"]}) == set()
    assert listed({"ids": [prepared]}, {"states": ["POD_STATE_EXITED"]}) == {prepared, exited}

    detailed = api("ListPods", {"detail": True, "filters": [{"ids": [running]}]})["pods"][0]
    manifest = json.loads(base64.b64decode(detailed["manifest"]))
    assert manifest["apps"][0]["name"] == "busybox"
    inspected = api("InspectPod", {"id": running[:8]})["pod"]
    assert inspected["id"] == running and inspected["manifest"] == detailed["manifest"]
    with pytest.raises(ApiError) as missing:
        api("InspectPod", {"id": "ffffffff-0000"})
    assert missing.value.code == "NOT_FOUND"
    with pytest.raises(ApiError) as empty:
        api("InspectPod", {"id": ""})
    assert empty.value.code == "INVALID_ARGUMENT"

    (gate / "go").touch()
    assert started.wait() == 0
    assert ids(api("ListPods", {"filters": [{"states": ["POD_STATE_EXITED"]}]})) == {
        running, exited}


def test_images_with_each_filter(fly, service, tmp_path):
    keys = {}
    for name, version, extra in (
            ("example.com/etcd", "2.0.10", {"annotations": [{"name": "authors",
                                                              "value": "me"}]}),
            ("k8s.io/etcd", "1.0", {}),
            ("k8s.io/etcd-backup", "", {"labels": {"version": None}})):  # no version label
        path = busybox_aci(tmp_path / f"{len(keys)}.aci", name=name, version=version, **extra)
        result = fly("fetch", "--full", str(path))
        assert result.returncode == 0, result.stderr
        keys[name] = result.stdout.strip()
        if len(keys) < 3:
            time.sleep(1.1)  # distinct import seconds, for the time filters
    api = service.start(fly)
    images = {i["name"]: i for i in api("ListImages")["images"]}
    assert {n: i["id"] for n, i in images.items()} == keys
    etcd = images["example.com/etcd"]
    assert etcd["version"] == "2.0.10" and images["k8s.io/etcd-backup"]["version"] == "latest"
    assert {"Key": "version", "value": "2.0.10"} in etcd["labels"]
    assert etcd["annotations"] == [{"Key": "authors", "value": "me"}]
    assert int(etcd["size"]) > 0 and etcd["manifest"] == ""
    assert etcd["base_format"] == {"type": "IMAGE_TYPE_APPC", "version": "0.7.4"}

    def listed(*filters):
        return {i["name"] for i in api("ListImages", {"filters": list(filters)})["images"]}

    everything = set(keys)
    assert listed({"ids": [keys["k8s.io/etcd"]]}) == {"k8s.io/etcd"}
    assert listed({"prefixes": ["k8s.io/"]}) == {"k8s.io/etcd", "k8s.io/etcd-backup"}
    assert listed({"base_names": ["etcd"]}) == {"example.com/etcd", "k8s.io/etcd"}
    assert listed({"keywords": ["backup", "example"]}) == {"k8s.io/etcd-backup",
                                                           "example.com/etcd"}
    assert listed({"full_names": ["k8s.io/etcd"]}) == {"k8s.io/etcd"}
    assert listed({"labels": [{"Key": "version", "value": "1.0"}]}) == {"k8s.io/etcd"}
    assert listed({"annotations": [{"Key": "authors", "value": "me"}]}) == {"example.com/etcd"}
    first, last = (int(images[n]["import_timestamp"]) for n in ("example.com/etcd",
                                                                "k8s.io/etcd-backup"))
    assert listed({"imported_after": first}) == everything - {"example.com/etcd"}
    assert listed({"imported_before": last}) == everything - {"k8s.io/etcd-backup"}
    assert listed({"prefixes": ["k8s.io/"], "keywords": ["backup"]}) == {"k8s.io/etcd-backup"}
    assert listed({"full_names": ["k8s.io/etcd"]}, {"prefixes": ["example"]}) == {
        "k8s.io/etcd", "example.com/etcd"}
    detailed = api("ListImages", {"detail": True, "filters": [{"ids": [keys["k8s.io/etcd"]]}]})
    assert json.loads(base64.b64decode(detailed["images"][0]["manifest"]))["name"] == "k8s.io/etcd"
    inspected = api("InspectImage", {"id": keys["k8s.io/etcd"][:20]})["image"]
    assert inspected["id"] == keys["k8s.io/etcd"] and inspected["manifest"]
    for bad, code in (("sha512-" + "f" * 20, "NOT_FOUND"), ("k8s.io/etcd", "INVALID_ARGUMENT")):
        with pytest.raises(ApiError) as error:
            api("InspectImage", {"id": bad})
        assert error.value.code == code


def _events(listener, wanted, timeout=WAIT_TIMEOUT) -> list[dict]:
    """Events from a ListenEvents stream until ``wanted(events so far)`` holds."""
    found = []
    deadline = time.monotonic() + timeout
    while not wanted(found):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; events so far: {found}"
        ready, _, _ = select.select([listener.stdout], [], [], left)
        if ready:
            found += read_response(listener)["events"]
    return found


def _kinds(events, subject) -> list[str]:
    return [e["type"].removeprefix("EVENT_TYPE_") for e in events if e["id"] == subject]


def test_events_of_pods_run_by_other_processes(fly, service, image, gate, tmp_path):
    fly("fetch", image)  # the store exists before the service
    api = service.start(fly)
    listener = api.stream("ListenEvents", {})
    exits = api.stream("ListenEvents", {"filter": {"types": ["EVENT_TYPE_POD_EXITED"]}})
    try:
        assert read_response(listener) == {"events": []}  # subscribed
        assert read_response(exits) == {"events": []}
        started = time.time()
        uuid_file = tmp_path / "uuid"
        result = fly.run(f"--uuid-file-save={uuid_file}", image, "--exec", "/bin/sh", "--",
                         "-c", "exit 4")
        assert result.returncode == 4
        first = uuid_file.read_text().strip()
        events = _events(listener, lambda found: "POD_EXITED" in _kinds(found, first))
        assert _kinds(events, first) == ["POD_PREPARED", "POD_STARTED", "APP_STARTED",
                                         "APP_EXITED", "POD_EXITED"]
        *_, app_exited, exited = [e for e in events if e["id"] == first]
        assert {"Key": "exit-code", "value": "4"} in exited["data"]
        assert {"Key": "app-busybox", "value": "4"} in exited["data"]
        assert started - 1 <= int(exited["time"]) <= time.time()
        assert app_exited["from"] == "busybox"  # an app event is from the app, of its pod
        assert app_exited["data"] == [{"Key": "exit-code", "value": "4"}]

        # rkt run killed: nobody but the service sees the pod exit
        pod = fly.start(image, *gated(gate, WAIT_FOR_GATE))
        second = pod.uuid
        _events(listener, lambda found: "APP_STARTED" in _kinds(found, second))
        pod.process.send_signal(signal.SIGKILL)
        pod.process.wait()
        assert fly.status(second)["state"] == "running"
        (gate / "go").touch()
        events = _events(listener, lambda found: "POD_EXITED" in _kinds(found, second))
        assert _kinds(events, second) == ["POD_EXITED"]

        only_exits = _events(exits, lambda found: {e["id"] for e in found} >= {first, second})
        assert _kinds(only_exits, first) == ["POD_EXITED"] and len(only_exits) == 2

        assert fly("gc", "--grace-period=0s").returncode == 0
        events = _events(listener, lambda found: {e["id"] for e in found
                                                  if e["type"].endswith("COLLECTED")}
                         >= {first, second})
        key = fly("fetch", "--full", str(busybox_aci(tmp_path / "other.aci",
                                                     name="example.com/other"))).stdout.strip()
        assert fly("image", "rm", key).returncode == 0
        events = _events(listener, lambda found: "IMAGE_REMOVED" in _kinds(found, key))
        assert [(e["type"], e["from"]) for e in events if e["id"] == key] == [
            ("EVENT_TYPE_IMAGE_IMPORTED", "example.com/other"),
            ("EVENT_TYPE_IMAGE_REMOVED", "example.com/other")]
    finally:
        for stream in (listener, exits):
            stream.kill()
            stream.wait()

    # a late listener asks for what happened since a time: the journal and what the service saw
    replay = api.stream("ListenEvents", {"filter": {"since_time": int(started) - 1,
                                                    "ids": [first, second]}})
    try:
        events = _events(replay, lambda found: len(found) >= 11)
        assert _kinds(events, first) == ["POD_PREPARED", "POD_STARTED", "APP_STARTED",
                                         "APP_EXITED", "POD_EXITED", "POD_GARBAGE_COLLECTED"]
        assert _kinds(events, second) == ["POD_PREPARED", "POD_STARTED", "APP_STARTED",
                                          "POD_EXITED", "POD_GARBAGE_COLLECTED"]
    finally:
        replay.kill()
        replay.wait()
    ended = api.stream("ListenEvents", {"filter": {"until_time": int(time.time()) - 1}})
    assert ended.wait(timeout=WAIT_TIMEOUT) == 0  # until_time has passed: the stream ends


def test_get_logs_follows_a_running_app(nspawn, service, image, gate):
    pod = nspawn.start(image, *gated(gate, "echo first", WAIT_FOR_GATE, "echo second"))
    uuid = pod.uuid
    api = service.start(nspawn)
    follower = api.stream("GetLogs", {"pod_id": uuid, "app_name": "busybox", "follow": True})
    try:
        lines = []
        while not any(line.endswith("busybox: first") for line in lines):
            lines += read_response(follower)["lines"]
        (gate / "go").touch()
        while not any(line.endswith("busybox: second") for line in lines):
            lines += read_response(follower)["lines"]
        assert pod.wait() == 0
        assert follower.wait(timeout=WAIT_TIMEOUT) == 0  # the pod exited: the stream ends
    finally:
        follower.kill()
        follower.wait()
    last = api.stream("GetLogs", {"pod_id": uuid, "lines": 1})
    assert read_response(last)["lines"][0].endswith("busybox: second")
    assert last.wait(timeout=WAIT_TIMEOUT) == 0
    failed = api.stream("GetLogs", {"pod_id": uuid, "app_name": "nope"})
    assert failed.stdout.read().decode().startswith("ERROR NOT_FOUND")
    failed.wait()


def test_bad_requests_get_error_statuses(fly, service, image):
    fly("fetch", image)
    api = service.start(fly)
    for request, code in (("ffffffff", "INTERNAL"),  # not a ListPodsRequest
                          ("oversized:2000000", "RESOURCE_EXHAUSTED")):
        with pytest.raises(ApiError) as error:
            api("raw:ListPods", request)
        assert error.value.code == code
    assert api("raw:ListPods", "")["bytes"] == 0  # an empty request is a valid one
    events = api.stream("ListenEvents", {"filter": {"types": [99]}})
    assert events.stdout.read().decode().startswith("ERROR INVALID_ARGUMENT")
    events.wait()
    with pytest.raises(ApiError) as negative:
        api("GetLogs", {"pod_id": "x", "lines": -1})
    assert negative.value.code == "INVALID_ARGUMENT"
    assert api("GetInfo")["info"]["api_version"] == "1.0.0-alpha"  # still serving


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_socket_activated_service(fly, service, generated, image, tmp_path):
    fly("fetch", image)
    port = _free_port()
    activator = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}",
                                  *fly.argv("api-service")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service.processes.append(activator)
    api = Api(generated, f"127.0.0.1:{port}")
    deadline = time.monotonic() + WAIT_TIMEOUT
    while True:  # until systemd-socket-activate listens
        try:
            info = api("GetInfo")["info"]
            break
        except (ApiError, AssertionError):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert info["global_flags"]["dir"] == str(fly.data_dir)
    assert api("ListImages")["images"][0]["name"] == "example.com/busybox"

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    os.set_inheritable(listening.fileno(), True)
    refused = subprocess.run(
        fly.argv("api-service", "--listen=127.0.0.1:0"), capture_output=True, text=True,
        env={**os.environ, "LISTEN_FDS": "1"}, timeout=WAIT_TIMEOUT, pass_fds=(3,),
        preexec_fn=lambda: os.dup2(listening.fileno(), 3))
    listening.close()
    assert refused.returncode == 254 and "--listen" in refused.stderr
