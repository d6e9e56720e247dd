"""docker:// references: Docker's normalisation and docker2aci's image names."""

import pytest

from rkt_core.errors import UsageError
from rkt_fetch_docker.reference import DockerRef, parse, sanitize_ac_identifier

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, expected", [
    ("docker://busybox", DockerRef("busybox", "registry-1.docker.io", "library/busybox")),
    ("docker://busybox:1.36", DockerRef("busybox:1.36", "registry-1.docker.io",
                                        "library/busybox", "1.36")),
    ("docker://user/app", DockerRef("user/app", "registry-1.docker.io", "user/app")),
    ("docker://docker.io/busybox", DockerRef("docker.io/busybox", "registry-1.docker.io",
                                             "library/busybox")),
    ("docker://index.docker.io/a/b:c", DockerRef("index.docker.io/a/b:c", "registry-1.docker.io",
                                                 "a/b", "c")),
    ("docker://quay.io/coreos/etcd:v3", DockerRef("quay.io/coreos/etcd:v3", "quay.io",
                                                  "coreos/etcd", "v3")),
    ("docker://localhost/x", DockerRef("localhost/x", "localhost", "x")),
    ("docker://127.0.0.1:5000/test/busybox", DockerRef("127.0.0.1:5000/test/busybox",
                                                       "127.0.0.1:5000", "test/busybox")),
    (f"docker://127.0.0.1:5000/test/busybox:tag@{DIGEST}",
     DockerRef(f"127.0.0.1:5000/test/busybox:tag@{DIGEST}", "127.0.0.1:5000", "test/busybox",
               "", DIGEST)),
    ("docker://a.b/c__d/e-f.g", DockerRef("a.b/c__d/e-f.g", "a.b", "c__d/e-f.g")),
    ("busybox", DockerRef("busybox", "registry-1.docker.io", "library/busybox")),
])
def test_parse(text, expected):
    assert parse(text) == expected


def test_reference_and_names():
    ref = parse("docker://127.0.0.1:5000/test/busybox")
    assert (ref.reference, ref.aci_name, str(ref)) == (
        "latest", "127.0.0.1_5000/test/busybox", "127.0.0.1:5000/test/busybox:latest")
    ref = parse(f"docker://busybox@{DIGEST}")
    assert (ref.reference, ref.tag, ref.aci_name) == (DIGEST, "",
                                                      "registry-1.docker.io/library/busybox")


@pytest.mark.parametrize("text", [
    "docker://", "docker:///busybox", "docker://Busybox", "docker://a/../b", "docker://a/./b",
    "docker://a//b", "docker://a/b/", "docker://a:-x", "docker://example.com:99x/a",
    "docker://a@sha256:1234", "docker://a@md5:" + "0" * 32, "docker://a b",
    "docker://a/b:" + "x" * 129, "docker://x.io/" + "a" * 300, "docker://a/.b", "docker://a_/b",
])
def test_invalid_references_are_refused(text):
    with pytest.raises(UsageError, match="invalid docker image reference"):
        parse(text)


@pytest.mark.parametrize("text, name", [
    ("127.0.0.1:5000/test/busybox", "127.0.0.1_5000/test/busybox"),
    ("Quay.IO/x y", "quay.io/x_y"),
    ("-._~/a/b~/", "a/b"),
])
def test_sanitize_ac_identifier(text, name):
    assert sanitize_ac_identifier(text) == name


def test_docker_auth_lookup_by_registry_and_hub_aliases():
    from rkt_fetch_docker.fetcher import credentials

    auth = {"docker.io": {"user": "hub", "password": "p1"},
            "127.0.0.1:5000": {"user": "local", "password": "p2"}}
    assert credentials(auth, parse("docker://busybox").registry) == ("hub", "p1")
    assert credentials(auth, parse("docker://127.0.0.1:5000/a").registry) == ("local", "p2")
    assert credentials(auth, parse("docker://127.0.0.1:5001/a").registry) is None
    assert credentials(auth, parse("docker://quay.io/a/b").registry) is None
