"""Pod manifests: the spec's examples, rkt's layout, volumes and mounts."""

import json
from pathlib import Path

import pytest

from rkt_core.appc import (App, AppcError, ExposedPort, Mount, PodManifest, RuntimeApp,
                           RuntimeImage, Volume)

DATA = Path(__file__).parent / "data"
RUNTIME = (DATA / "pod_runtime.json").read_text()
TEMPLATE = (DATA / "pod_template.json").read_text()
ID = "sha512-" + "ab" * 64


def pod(**fields) -> PodManifest:
    return PodManifest.from_json({"acKind": "PodManifest", "acVersion": "0.7.4", **fields})


def test_runtime_example_parses():
    pm = PodManifest.from_json(RUNTIME)
    assert (pm.ac_kind, pm.ac_version) == ("PodManifest", "0.7.4")
    assert [a.name for a in pm.apps] == ["reduce-worker", "backup", "register"]
    worker = pm.app("reduce-worker")
    assert worker.image.name == "example.com/reduce-worker"
    assert worker.image.id.startswith("sha512-8d3fffddf79e9a23")
    assert worker.app.exec[1] == "--debug=true"
    assert worker.app.isolators[0].limit.value == 10 ** 9
    assert worker.mounts == [Mount("dbvolume", "/var/lib/db")]
    backup = pm.app("backup")
    assert backup.app is None
    assert backup.image.labels.get("version") == "latest"
    assert backup.annotations.get("foo") == "baz"
    assert [m.volume for m in backup.mounts] == ["dbvolume", "buildoutput"]
    assert pm.volumes == [Volume("dbvolume", "host", "/opt/tenant1/database", True),
                          Volume("buildoutput", "empty", mode="0777", uid=0, gid=0)]
    assert pm.isolators[0].limit.value == 4 * 10 ** 9
    assert pm.annotations.get("ip-address") == "10.1.2.3"
    assert pm.ports == []
    assert pm.app("missing") is None


def test_runtime_example_round_trips_with_go_layout():
    pm = PodManifest.from_json(RUNTIME)
    data = pm.to_dict()
    assert list(data) == ["acVersion", "acKind", "apps", "volumes", "isolators", "annotations",
                          "ports"]
    assert data["ports"] == []
    assert list(data["apps"][0]) == ["name", "image", "app", "mounts"]
    assert list(data["apps"][1]) == ["name", "image", "mounts", "annotations"]
    assert list(data["apps"][1]["image"]) == ["name", "id", "labels"]
    assert data["volumes"] == [
        {"name": "dbvolume", "kind": "host", "source": "/opt/tenant1/database", "readOnly": True},
        {"name": "buildoutput", "kind": "empty", "mode": "0777", "uid": 0, "gid": 0}]
    assert PodManifest.from_json(pm.to_json()) == pm
    assert PodManifest.from_json(pm.to_json(pretty=True)).to_json() == pm.to_json()


def test_template_example_parses_without_image_ids():
    pm = PodManifest.from_json(TEMPLATE)
    assert pm.ac_version == "0.3.0"
    assert [a.image.id for a in pm.apps][1:] == [None, None]
    assert pm.volumes == [] and len(pm.annotations) == 0
    text = pm.to_json()
    assert '"volumes":null' in text and '"annotations":null' in text and '"ports":[]' in text
    # The unknown ID is left out (Go would refuse to write it at all).
    assert json.loads(text)["apps"][1]["image"] == {
        "name": "example.com/worker-backup", "labels": [{"name": "version", "value": "latest"}]}
    assert PodManifest.from_json(text) == pm


def test_rkt_style_manifest_built_in_python():
    pm = PodManifest(apps=[RuntimeApp("busybox", RuntimeImage("example.com/busybox", ID),
                                      App(["/bin/sh"], "0", "0"))])
    assert pm.to_json() == (
        '{"acVersion":"0.7.4","acKind":"PodManifest","apps":[{"name":"busybox","image":'
        '{"name":"example.com/busybox","id":"' + ID + '"},"app":{"exec":["/bin/sh"],'
        '"user":"0","group":"0"}}],"volumes":null,"isolators":null,"annotations":null,'
        '"ports":[]}')
    assert PodManifest().to_dict()["apps"] is None


def test_pretty_layout():
    pm = PodManifest(apps=[], ports=[ExposedPort("www", 8080)])
    assert pm.to_json(pretty=True) == (
        '{\n\t"acVersion": "0.7.4",\n\t"acKind": "PodManifest",\n\t"apps": null,\n'
        '\t"volumes": null,\n\t"isolators": null,\n\t"annotations": null,\n\t"ports": [\n'
        '\t\t{\n\t\t\t"name": "www",\n\t\t\t"hostPort": 8080\n\t\t}\n\t]\n}')


def test_duplicate_app_names():
    # pod_test.go TestAppList.
    apps = [{"name": n, "image": {"id": ID}} for n in ("foo", "bar", "foo")]
    with pytest.raises(AppcError, match='more than one app is named "foo"'):
        pod(apps=apps)
    assert len(pod(apps=apps[:2]).apps) == 2


def test_kind_is_the_only_required_field():
    # pod_test.go TestPodManifestMerge: {} fails, only acKind is checked.
    with pytest.raises(AppcError, match='acKind must be "PodManifest"'):
        PodManifest.from_json("{}")
    with pytest.raises(AppcError, match='not "ImageManifest"'):
        PodManifest.from_json('{"acKind": "ImageManifest"}')
    pm = PodManifest.from_json('{"acKind": "PodManifest"}')
    assert pm.ac_version == ""
    with pytest.raises(AppcError, match="acVersion must be set to write it"):
        pm.to_json()


@pytest.mark.parametrize("apps, message", [
    ([{"name": "Worker", "image": {"id": ID}}], 'invalid app name "Worker"'),
    ([{"image": {"id": ID}}], "invalid app name: must not be empty"),
    ([{"name": "w", "image": {"id": "sha256-abc"}}], "unknown hash type"),
    ([{"name": "w", "image": {"name": "a/../b", "id": ID}}], 'invalid image name "a/../b"'),
    ([{"name": "w", "image": {"id": ID, "labels": [{"name": "os", "value": "dos"}]}}],
     'invalid os label "dos"'),
    ([{"name": "w", "image": {"id": ID}, "app": {"exec": ["/x"]}}], "user is required"),
    ([{"name": "w", "image": {"id": ID}, "mounts": [{"volume": "Data", "path": "/d"}]}],
     'invalid mount volume "Data"'),
    ([{"name": "w", "image": {"id": ID}, "mounts": [{"volume": "data"}]}], "path must be set"),
    ([{"name": "w", "image": {"id": ID}, "annotations": [{"name": "homepage", "value": "x"}]}],
     "http or https URL"),
])
def test_bad_apps(apps, message):
    with pytest.raises(AppcError, match=message):
        pod(apps=apps)


def test_bad_exposed_ports():
    with pytest.raises(AppcError, match="invalid exposed port name"):
        pod(ports=[{"name": "WWW", "hostPort": 80}])
    with pytest.raises(AppcError, match="hostPort: -1 is out of range"):
        pod(ports=[{"name": "www", "hostPort": -1}])
    assert pod(ports=[{"Name": "www", "HOSTPORT": 80}]).ports == [ExposedPort("www", 80)]


def test_pod_isolators_and_unknown_keys():
    pm = pod(isolators=[{"name": "example.com/custom", "value": [1]}], unknownKey=1)
    assert not pm.isolators[0].known
    assert pm.to_dict()["isolators"] == [{"name": "example.com/custom", "value": [1]}]


# Volumes: volume.go rules and volume_test.go tables.

def test_empty_volume_defaults_are_applied_before_validation():
    vol = Volume.from_json({"name": "data", "kind": "empty"})
    assert (vol.mode, vol.uid, vol.gid, vol.read_only) == ("0755", 0, 0, None)
    assert vol.to_json() == {"name": "data", "kind": "empty", "mode": "0755", "uid": 0, "gid": 0}


@pytest.mark.parametrize("data, message", [
    ({"name": "data", "kind": "host"}, "a host volume needs a source"),
    ({"name": "data", "kind": "host", "source": "tmp"}, 'source "tmp" must be an absolute path'),
    ({"name": "data", "kind": "host", "source": "/tmp", "mode": "0755"}, "takes no mode"),
    ({"name": "data", "kind": "host", "source": "/tmp", "uid": 0}, "takes no uid"),
    ({"name": "data", "kind": "host", "source": "/tmp", "gid": 0}, "takes no gid"),
    ({"name": "data", "kind": "empty", "source": "/tmp"}, "an empty volume takes no source"),
    ({"name": "data", "kind": "empty", "mode": 755}, "mode: must be a string"),
    ({"name": "data", "kind": "empty", "mode": "rwx"}, 'mode "rwx" must be an octal string'),
    ({"name": "data", "kind": "tmpfs"}, 'kind "tmpfs" must be "host" or "empty"'),
    ({"name": "data"}, 'kind "" must be'),
    ({"kind": "empty"}, "invalid volume name: must not be empty"),
    ({"name": "Data", "kind": "empty"}, 'invalid volume name "Data"'),
    ({"name": "data", "kind": "empty", "readOnly": "true"}, "must be true or false"),
])
def test_bad_volumes(data, message):
    with pytest.raises(AppcError, match=message):
        Volume.from_json(data)


def test_host_volume_read_only_false_is_kept():
    vol = Volume.from_json({"name": "data", "kind": "host", "source": "/srv", "readOnly": False})
    assert vol.to_json() == {"name": "data", "kind": "host", "source": "/srv", "readOnly": False}


@pytest.mark.parametrize("text, volume", [
    ("foobar,kind=host,source=/tmp", Volume("foobar", "host", "/tmp")),
    ("foobar,kind=host,source=/tmp,readOnly=false", Volume("foobar", "host", "/tmp", False)),
    ("foobar,kind=host,source=/tmp,readOnly=true", Volume("foobar", "host", "/tmp", True)),
    ("foobar,kind=empty", Volume("foobar", "empty", mode="0755", uid=0, gid=0)),
    ("foobar,kind=empty,readOnly=true", Volume("foobar", "empty", read_only=True)),
    ("foobar,kind=empty,readOnly=true,mode=0777", Volume("foobar", "empty", "", True, "0777")),
    ("foobar,kind=empty,mode=0777,uid=1000", Volume("foobar", "empty", mode="0777", uid=1000)),
    ("foobar,kind=empty,mode=0777,uid=1000,gid=1000",
     Volume("foobar", "empty", mode="0777", uid=1000, gid=1000)),
])
def test_volume_from_cli_and_back(text, volume):
    assert Volume.from_cli(text) == volume
    assert volume.to_cli() == text


def test_volume_from_cli_keeps_commas_out_and_equals_in_values():
    vol = Volume.from_cli("db,kind=host,source=/srv/a=b,readOnly=1")
    assert (vol.source, vol.read_only) == ("/srv/a=b", True)


@pytest.mark.parametrize("text, message", [
    ("#foobar,kind=host,source=/tmp", 'invalid volume name "#foobar"'),
    ("foobar,kind=host,source=/tmp,readOnly=true,asdf=asdf", 'unknown parameter "asdf"'),
    ("foobar,kind=host,source=tmp", "must be an absolute path"),
    ("foobar,kind=host,uid=3", "needs a source"),
    ("foobar,kind=host,mode=0755", "needs a source"),
    ("foobar,kind=host,source=/tmp,mode=0600,readOnly=true,gid=0", "takes no mode"),
    ("foobar,kind=empty,source=/tmp", "takes no source"),
    ("foobar,kind=host,source=/tmp,readOnly=yes", "readOnly must be true or false"),
    ("foobar,kind=empty,uid=root", 'invalid uid in --volume value "foobar,kind=empty,uid=root"'),
    ("foobar,kind", '"kind" has no value'),
    ("foobar,kind=empty,kind=host", '"kind" is given more than once'),
    ("foobar,kind=empty,name=x", '"name" is given more than once'),
    ("", "invalid volume name: must not be empty"),
])
def test_volume_from_cli_bad(text, message):
    with pytest.raises(AppcError, match=message):
        Volume.from_cli(text)


def test_mount_from_cli():
    assert Mount.from_cli("volume=data,target=/var/lib/data") == Mount("data", "/var/lib/data")
    assert Mount.from_cli("target=/d,volume=data").to_json() == {"volume": "data", "path": "/d"}


@pytest.mark.parametrize("text, message", [
    ("volume=data", "expected volume=NAME,target=PATH"),
    ("target=/d", "expected volume=NAME,target=PATH"),
    ("volume=data,target=/d,readOnly=true", 'unknown parameter "readOnly"'),
    ("volume=Data,target=/d", 'invalid mount volume "Data"'),
    ("volume=data,target=", "path must be set"),
    ("volume=a,volume=b,target=/d", "given more than once"),
    ("data:/d", "has no value"),
])
def test_mount_from_cli_bad(text, message):
    with pytest.raises(AppcError, match=message):
        Mount.from_cli(text)
