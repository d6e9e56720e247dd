"""Image manifests: the spec's example, Go marshal layout, validation and hardening."""

import json
from pathlib import Path

import pytest

from rkt_core.appc import AppcError, Dependency, ImageManifest, Labels
from rkt_core.appc.image_manifest import Annotations

EXAMPLE = (Path(__file__).parent / "data" / "image.json").read_bytes()


def manifest(**fields) -> ImageManifest:
    return ImageManifest.from_json({"acKind": "ImageManifest", "acVersion": "0.7.4",
                                    "name": "example.com/test", **fields})


def test_spec_example_parses():
    im = ImageManifest.from_json(EXAMPLE)
    assert (im.ac_kind, im.ac_version, im.name) == ("ImageManifest", "0.7.4",
                                                    "example.com/reduce-worker")
    assert dict(im.labels) == {"version": "1.0.0", "arch": "amd64", "os": "linux"}
    assert im.app.exec == ["/usr/bin/reduce-worker", "--quiet"]
    assert (im.app.user, im.app.group) == ("100", "300")
    assert [(h.name, h.exec) for h in im.app.event_handlers] == [
        ("pre-start", ["/usr/bin/data-downloader"]),
        ("post-stop", ["/usr/bin/deregister-worker", "--verbose"])]
    assert im.app.env("REDUCE_WORKER_DEBUG") == "true"
    assert [i.name for i in im.app.isolators] == ["resource/cpu", "resource/memory",
                                                  "os/linux/capabilities-remove-set"]
    assert im.app.isolators[0].limit.milli_value == 20
    assert im.app.isolators[1].limit.value == 10 ** 9
    assert im.app.isolators[2].capabilities == ("CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN")
    assert [(m.name, m.path, m.read_only) for m in im.app.mount_points] == [
        ("database", "/var/lib/db", False)]
    port = im.app.ports[0]
    assert (port.name, port.protocol, port.port, port.count, port.socket_activated) == \
        ("health", "tcp", 4000, 1, True)
    dep = im.dependencies[0]
    assert (dep.image_name, dep.image_id, dict(dep.labels), dep.size) == \
        ("example.com/reduce-worker-base", "sha512-...", {"os": "linux", "env": "canary"}, None)
    assert im.path_whitelist[-1] == "/etc/systemd/system/"
    assert im.annotations.get("created") == "2014-10-27T19:32:27.67021798Z"
    assert im.annotations.get("homepage") == "https://example.com"


def test_spec_example_round_trips():
    im = ImageManifest.from_json(EXAMPLE)
    again = ImageManifest.from_json(im.to_json())
    assert again == im
    assert again.to_json() == im.to_json()
    assert ImageManifest.from_json(im.to_json(pretty=True)) == im


def test_spec_example_marshals_like_go():
    data = ImageManifest.from_json(EXAMPLE).to_dict()
    # Go field order, not the example's order (annotations before dependencies).
    assert list(data) == ["acKind", "acVersion", "name", "labels", "app", "annotations",
                          "dependencies", "pathWhitelist"]
    # false readOnly is omitted, the port count default is written.
    assert data["app"]["mountPoints"] == [{"name": "database", "path": "/var/lib/db"}]
    assert data["app"]["ports"][0] == {"name": "health", "protocol": "tcp", "port": 4000,
                                       "count": 1, "socketActivated": True}
    assert data["app"]["eventHandlers"][0] == {"name": "pre-start",
                                               "exec": ["/usr/bin/data-downloader"]}
    text = ImageManifest.from_json(EXAMPLE).to_json()
    assert text.startswith('{"acKind":"ImageManifest","acVersion":"0.7.4",'
                           '"name":"example.com/reduce-worker","labels":[{"name":"version",')
    assert "Carly Container \\u003ccarly@example.com\\u003e" in text


RKT_PRETTY = """{
\t"acKind": "ImageManifest",
\t"acVersion": "0.7.4",
\t"name": "example.com/busybox",
\t"labels": [
\t\t{
\t\t\t"name": "os",
\t\t\t"value": "linux"
\t\t}
\t],
\t"app": {
\t\t"exec": [
\t\t\t"/bin/sh"
\t\t],
\t\t"user": "0",
\t\t"group": "0"
\t}
}"""


def test_pretty_print_matches_rkt():
    im = ImageManifest.from_json(RKT_PRETTY)
    assert im.to_json(pretty=True) == RKT_PRETTY
    assert im.to_json() == ('{"acKind":"ImageManifest","acVersion":"0.7.4",'
                            '"name":"example.com/busybox","labels":[{"name":"os","value":"linux"}],'
                            '"app":{"exec":["/bin/sh"],"user":"0","group":"0"}}')


def test_minimal_manifest_has_no_app_and_omits_empty_fields():
    # image_test.go TestEmptyApp: no "app": {} appears on marshal.
    im = ImageManifest.from_json('{"acKind": "ImageManifest", "acVersion": "0.7.4", '
                                 '"name": "example.com/test"}')
    assert im.app is None
    assert im.to_json() == ('{"acKind":"ImageManifest","acVersion":"0.7.4",'
                            '"name":"example.com/test"}')
    assert ImageManifest.from_json(im.to_json()).app is None


def test_built_in_python():
    im = ImageManifest(name="example.com/app", labels=Labels.from_dict({"version": "1"}),
                       dependencies=[Dependency("example.com/base", size=0)])
    assert im.to_dict() == {"acKind": "ImageManifest", "acVersion": "0.7.4",
                            "name": "example.com/app",
                            "labels": [{"name": "version", "value": "1"}],
                            "dependencies": [{"imageName": "example.com/base"}]}


@pytest.mark.parametrize("data, message", [
    ('{"name": "example.com/test"}', "acKind must be \"ImageManifest\""),
    ('{"acKind": "PodManifest", "acVersion": "0.7.4", "name": "example.com/test"}',
     'acKind must be "ImageManifest", not "PodManifest"'),
    ('{"acKind": "ImageManifest", "name": "example.com/test"}', "acVersion must be set"),
    ('{"acKind": "ImageManifest", "acVersion": "0.0.0", "name": "a"}', "cannot be zero"),
    ('{"acKind": "ImageManifest", "acVersion": "1", "name": "a"}', "must be a version"),
    ('{"acKind": "ImageManifest", "acVersion": "0.7.4"}', "name must be set"),
    ('{"acKind": "ImageManifest", "acVersion": "0.7.4", "name": "Foo"}',
     'invalid image name "Foo": only lowercase letters, digits and -._~/ are allowed'),
    ('{"acKind": "ImageManifest", "acVersion": "0.7.4", "name": "evil.com/../coreos.com/etcd"}',
     'invalid image name "evil.com/../coreos.com/etcd"'),
    ('{"acKind": "ImageManifest", "acVersion": "0.7.4", "name": "a//b"}', "image name"),
    ('{"acKind": "ImageManifest", "acVersion": "0.7.4", "name": "a/./b"}', "image name"),
    ('{"acKind": "ImageManifest", "acVersion": "0.7.4", "name": 5}',
     "image name: must be a string"),
    ('[]', "image manifest: must be a JSON object"),
    ('{"acKind": "ImageManifest",', "invalid image manifest: not valid JSON"),
    (b'\xff\xfe', "not UTF-8"),
    ('{"acKind": "ImageManifest", "acVersion": "0.7.4", "name": "a", "labels": NaN}',
     "not valid JSON"),
])
def test_invalid_manifests(data, message):
    with pytest.raises(AppcError, match=message.replace("(", r"\(").replace(".", r"\.")):
        ImageManifest.from_json(data)


def test_invalid_json_reports_position():
    with pytest.raises(AppcError, match="line 2, column"):
        ImageManifest.from_json('{"acKind": "ImageManifest",\n  "name" "x"}')


@pytest.mark.parametrize("field, value, message", [
    ("labels", [{"name": "os", "value": "plan9"}], 'invalid os label "plan9"'),
    ("labels", [{"name": "name", "value": "x"}], 'invalid label name "name"'),
    ("annotations", [{"name": "created", "value": "yesterday"}], "RFC 3339"),
    ("annotations", [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}],
     'duplicate annotation "a"'),
    ("app", {"exec": ["/x"], "user": "0"}, "group is required"),
    ("app", [], "app: must be a JSON object"),
    ("dependencies", [{"imageID": "sha512-abc"}], "invalid dependency imageName"),
    ("dependencies", [{"imageName": "example.com/../x"}], "dependency imageName"),
    ("dependencies", [{"imageName": "a", "imageID": "md5-abc"}], "unknown hash type"),
    ("dependencies", [{"imageName": "a", "size": -1}], "size: -1 is out of range"),
    ("dependencies", {"imageName": "a"}, "dependencies: must be a JSON array"),
    ("pathWhitelist", ["/a", 1], r"pathWhitelist\[1\]: must be a string"),
])
def test_invalid_parts(field, value, message):
    with pytest.raises(AppcError, match=message):
        manifest(**{field: value})


def test_dependency_without_id_round_trips():
    # dependencies_test.go TestEmptyHash.
    im = manifest(dependencies=[{"imageName": "example.com/reduce-worker-base"}])
    assert im.dependencies[0].image_id is None
    assert im.to_dict()["dependencies"] == [{"imageName": "example.com/reduce-worker-base"}]


def test_dependency_fields_in_go_order():
    dep = Dependency.from_json({"size": 10, "labels": [{"name": "version", "value": "1"}],
                                "imageID": "sha512-aa", "imageName": "example.com/base"})
    assert list(dep.to_json()) == ["imageName", "imageID", "labels", "size"]
    assert dep.size == 10


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored():
    im = ImageManifest.from_json({"ACKIND": "ImageManifest", "acversion": "0.7.4",
                                  "Name": "example.com/test", "PathWhiteList": ["/a"],
                                  "app": {"exec": [], "user": "0", "group": "0",
                                          "supplementaryGids": [10]},
                                  "somethingNew": True})
    assert im.path_whitelist == ["/a"]
    assert im.app.supplementary_gids == [10]


def test_null_fields_are_absent():
    im = manifest(labels=None, app=None, annotations=None, dependencies=None, pathWhitelist=None)
    assert (len(im.labels), im.app, len(im.annotations), im.dependencies, im.path_whitelist) == \
        (0, None, 0, [], [])


def test_later_duplicate_key_wins_as_in_go():
    im = ImageManifest.from_json('{"acKind": "ImageManifest", "acVersion": "0.7.4", '
                                 '"name": "example.com/a", "NAME": "example.com/b"}')
    assert im.name == "example.com/b"


def test_version_is_written_canonically():
    assert manifest(acVersion="0.07.4").to_dict()["acVersion"] == "0.7.4"


def test_to_json_revalidates():
    im = manifest()
    im.name = "../etc"
    with pytest.raises(AppcError, match="image name"):
        im.to_json()


def test_annotations_type_is_exported_here():
    assert isinstance(manifest().annotations, Annotations)


def test_unicode_and_html_escaping():
    im = manifest(annotations=[{"name": "note", "value": "café <b> & \u2028"}])
    text = im.to_json()
    assert '"café \\u003cb\\u003e \\u0026 \\u2028"' in text
    assert json.loads(text)["annotations"][0]["value"] == "café <b> & \u2028"
