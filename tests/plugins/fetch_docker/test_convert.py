"""The appc manifest of a converted image: docker2aci's names, labels, app and annotations."""

import pytest

from rkt_fetch_docker.convert import appc_os_arch, image_manifest, user_group
from rkt_fetch_docker.manifest import Image, Layer
from rkt_fetch_docker.reference import parse

PASSWD = b"root:x:0:0::/root:/bin/sh\nnobody:x:65534:65533::/:/bin/false\nbad:x:7:x::/:\n"
CONFIG = {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo <&>"], "User": "",
          "Env": ["A=1", "B=x=y", "NOVALUE", "A=2", "bad-name=1", "_ok=3"],
          "WorkingDir": "/app", "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8080": {},
                                                 "x/tcp": {}, "70000/tcp": {}},
          "Volumes": {"/data": {}, "/var/lib/x_y": {}, "/var/lib/x-y": {}, "/var/lib/x.y": {}}}


def oci_image(**fields):
    defaults = dict(digest="sha256:" + "d" * 64, schema="oci",
                    layers=[Layer("sha256:" + "1" * 64), Layer("sha256:" + "2" * 64)],
                    config=dict(CONFIG), os="linux", architecture="amd64", author="me",
                    created="2024-01-02T03:04:05.123456789Z")
    return Image(**{**defaults, **fields})


@pytest.mark.parametrize("spec, expected", [
    ("", ("0", "0")), ("0", ("0", "0")), ("1000:1000", ("1000", "1000")), (":5", ("0", "5")),
    ("nobody", ("nobody", "65533")), ("65534", ("65534", "65533")), ("root", ("root", "0")),
    ("4242", ("4242", "0")), ("ghost", ("ghost", "ghost")), ("bad", ("bad", "bad")),
    ("ghost:grp", ("ghost", "grp")),
])
def test_user_group(spec, expected):
    assert user_group(spec, PASSWD) == expected


def test_user_group_without_passwd():
    assert user_group("www", None) == ("www", "www")


@pytest.mark.parametrize("os_name, arch, variant, expected", [
    ("linux", "amd64", "", ("linux", "amd64")), ("linux", "arm64", "v8", ("linux", "aarch64")),
    ("linux", "386", "", ("linux", "i386")), ("linux", "arm", "v7", ("linux", "armv7l")),
    ("linux", "arm", "", ("linux", "armv6l")), ("linux", "s390x", "", None),
    ("windows", "amd64", "", None), ("", "", "", None),
])
def test_appc_os_arch(os_name, arch, variant, expected):
    assert appc_os_arch(os_name, arch, variant) == expected


def test_oci_image_manifest():
    warnings = []
    manifest = image_manifest(parse("docker://127.0.0.1:5000/test/busybox"), oci_image(),
                              PASSWD, warnings.append).to_dict()
    assert manifest["name"] == "127.0.0.1_5000/test/busybox"
    assert manifest["labels"] == [{"name": "version", "value": "latest"},
                                  {"name": "os", "value": "linux"},
                                  {"name": "arch", "value": "amd64"}]
    app = manifest["app"]
    assert app["exec"] == ["/bin/sh", "-c", "echo <&>"]
    assert (app["user"], app["group"], app["workingDirectory"]) == ("0", "0", "/app")
    assert app["environment"] == [{"name": "A", "value": "2"}, {"name": "B", "value": "x=y"},
                                  {"name": "_ok", "value": "3"}]
    assert [(p["name"], p["protocol"], p["port"]) for p in app["ports"]] == [
        ("53-udp", "udp", 53), ("80-tcp", "tcp", 80), ("8080", "tcp", 8080)]
    assert [(m["name"], m["path"]) for m in app["mountPoints"]] == [
        ("volume-data", "/data"), ("volume-var-lib-x-y", "/var/lib/x-y"),
        ("volume-var-lib-x-y-1", "/var/lib/x.y"), ("volume-var-lib-x-y-2", "/var/lib/x_y")]
    assert [(a["name"], a["value"]) for a in manifest["annotations"]] == [
        ("author", "me"), ("created", "2024-01-02T03:04:05.123456789Z"),
        ("appc.io/docker/originalname", "127.0.0.1:5000/test/busybox"),
        ("appc.io/docker/registryurl", "127.0.0.1:5000"),
        ("appc.io/docker/repository", "test/busybox"),
        ("appc.io/docker/imageid", "sha256:" + "2" * 64),
        ("appc.io/docker/manifesthash", "sha256:" + "d" * 64),
        ("appc.io/docker/entrypoint", '["/bin/sh","-c"]'),
        ("appc.io/docker/cmd", '["echo \\u003c\\u0026\\u003e"]')]
    assert any('"bad-name"' in w for w in warnings)
    assert any('"x/tcp"' in w for w in warnings) and any('"70000/tcp"' in w for w in warnings)


def test_pulled_by_digest_no_config_unknown_platform_bad_date():
    warnings = []
    image = oci_image(config=None, architecture="s390x", created="yesterday", author="")
    manifest = image_manifest(parse("docker://busybox@sha256:" + "f" * 64), image, None,
                              warnings.append).to_dict()
    assert manifest["name"] == "registry-1.docker.io/library/busybox"
    assert "labels" not in manifest and "app" not in manifest
    names = [a["name"] for a in manifest["annotations"]]
    assert "created" not in names and "author" not in names
    assert "appc.io/docker/entrypoint" not in names
    assert any('"yesterday"' in w for w in warnings)


def test_schema1_annotations_and_string_entrypoint():
    image = oci_image(schema="docker-v1", config={"Entrypoint": "/bin/sh", "User": "nobody"},
                      created="0001-01-01T00:00:00Z", comment="hi", v1_id="a" * 64,
                      v1_parent="b" * 64)
    manifest = image_manifest(parse("docker://x.io/a/b:v1"), image, PASSWD).to_dict()
    assert manifest["app"]["exec"] == ["/bin/sh"]
    assert (manifest["app"]["user"], manifest["app"]["group"]) == ("nobody", "65533")
    assert [(a["name"], a["value"]) for a in manifest["annotations"]] == [
        ("authors", "me"), ("docker-comment", "hi"),
        ("appc.io/docker/originalname", "x.io/a/b:v1"), ("appc.io/docker/registryurl", "x.io"),
        ("appc.io/docker/repository", "a/b"), ("appc.io/docker/imageid", "a" * 64),
        ("appc.io/docker/parentimageid", "b" * 64),
        ("appc.io/docker/manifesthash", "sha256:" + "d" * 64),
        ("appc.io/docker/entrypoint", '["/bin/sh"]'), ("appc.io/docker/tag", "v1")]


def test_mount_point_names_stay_unique_and_paths_absolute():
    config = {"Volumes": {"/a-b": {}, "/a/b": {}, "/a-b-1": {}, "rel": {}}}
    manifest = image_manifest(parse("docker://x.io/a/b:v1"), oci_image(config=config)).to_dict()
    points = [(m["name"], m["path"]) for m in manifest["app"]["mountPoints"]]
    assert sorted(points) == [("volume-a-b", "/a-b"), ("volume-a-b-1", "/a-b-1"),
                              ("volume-a-b-2", "/a/b"), ("volume-rel", "/rel")]
