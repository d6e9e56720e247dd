"""Manifest decoding: schema1 JWS payload digests, confusion between manifests and lists,
platform selection, schema1 layer chains (CVE-2016-7569, CVE-2016-8579)."""

import base64
import hashlib
import json

import pytest

from rkt_core.errors import ImageError
from rkt_fetch_docker.manifest import (DOCKER_LIST, DOCKER_V1_SIGNED, DOCKER_V2, OCI_INDEX,
                                       MAX_LAYERS, OCI_MANIFEST, _decode, _schema1,
                                       select_platform)
from rkt_fetch_docker.reference import parse

IDS = [c * 64 for c in "abc"]  # top first
BLOBS = ["sha256:" + c * 64 for c in "123"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: bytes, extra: bytes = b"") -> bytes:
    """A schema1 body signed the way docker's libtrust formats it."""
    cut = payload.rindex(b"\n}")
    protected = b64url(json.dumps({"formatLength": cut,
                                   "formatTail": b64url(payload[cut:])}).encode())
    signature = b',\n   "signatures": [{"protected": "' + protected.encode() + b'"' + extra + b"}]"
    return payload[:cut] + signature + payload[cut:]


def schema1_doc(history=None, name="test/busybox", tag="v1", blobs=BLOBS):
    history = history if history is not None else [
        {"id": IDS[0], "parent": IDS[1], "config": {"Cmd": ["sh"]}, "os": "linux",
         "architecture": "amd64"},
        {"id": IDS[1], "parent": IDS[2], "throwaway": True}, {"id": IDS[2]}]
    return {"schemaVersion": 1, "name": name, "tag": tag, "architecture": "amd64",
            "fsLayers": [{"blobSum": b} for b in blobs[:len(history)]],
            "history": [{"v1Compatibility": json.dumps(h)} for h in history]}


def test_signed_schema1_digest_is_the_payloads_and_only_the_payload_is_parsed():
    payload = json.dumps(schema1_doc(), indent=3).encode()
    body = signed(payload, extra=b', "name": "evil/name"')
    kind, doc, digest = _decode(body, DOCKER_V1_SIGNED, "sha256:", "m")
    assert kind == DOCKER_V1_SIGNED
    assert digest == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert digest != "sha256:" + hashlib.sha256(body).hexdigest()
    assert doc == json.loads(payload)


def test_unsigned_schema1_and_generic_content_type():
    body = json.dumps(schema1_doc()).encode()
    kind, doc, digest = _decode(body, "application/json", "sha512:", "m")
    assert kind == DOCKER_V1_SIGNED and doc["name"] == "test/busybox"
    assert digest == "sha512:" + hashlib.sha512(body).hexdigest()


@pytest.mark.parametrize("length", [0, -1, 10 ** 9, "12", True])
def test_schema1_bad_format_length(length):
    protected = b64url(json.dumps({"formatLength": length, "formatTail": "Cn0"}).encode())
    body = json.dumps({**schema1_doc(), "signatures": [{"protected": protected}]}).encode()
    with pytest.raises(ImageError, match="formatLength"):
        _decode(body, DOCKER_V1_SIGNED, "sha256:", "m")


@pytest.mark.parametrize("doc, media_type, message", [
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": [],
      "manifests": []}, OCI_MANIFEST, "ambiguous"),
    ({"schemaVersion": 2, "manifests": [], "layers": []}, OCI_INDEX, "ambiguous"),
    ({"schemaVersion": 2, "config": {}, "layers": []}, OCI_INDEX, "ambiguous"),
    ({"schemaVersion": 2, "mediaType": DOCKER_V2, "config": {}}, OCI_MANIFEST, "declares"),
    ({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": []}, OCI_INDEX, "declares"),
    ({"schemaVersion": 3, "config": {}}, OCI_MANIFEST, "schemaVersion 2"),
    ({"schemaVersion": 2}, "application/x-unknown", "unsupported manifest type"),
    ([1, 2], OCI_MANIFEST, "not a JSON object"),
])
def test_confusing_documents_are_refused(doc, media_type, message):
    with pytest.raises(ImageError, match=message):
        _decode(json.dumps(doc).encode(), media_type, "sha256:", "m")


def test_not_json():
    with pytest.raises(ImageError, match="not valid JSON"):
        _decode(b"\xff{", OCI_MANIFEST, "sha256:", "m")


def entry(arch, variant=None, os_name="linux", c="1"):
    platform = {"os": os_name, "architecture": arch, **({"variant": variant} if variant else {})}
    return {"mediaType": DOCKER_V2, "digest": "sha256:" + c * 64, "size": 1, "platform": platform}


def test_platform_selection():
    doc = {"manifests": [entry("amd64", os_name="windows", c="0"), entry("arm", "v6", c="1"),
                         entry("arm", c="2"), entry("arm", "v7", c="3"), entry("amd64", c="4")]}
    assert select_platform(doc, ("linux", "amd64", ""), "m")["digest"] == "sha256:" + "4" * 64
    assert select_platform(doc, ("linux", "arm", "v7"), "m")["digest"] == "sha256:" + "3" * 64
    assert select_platform(doc, ("linux", "arm", "v5"), "m")["digest"] == "sha256:" + "2" * 64
    with pytest.raises(ImageError, match=r"no image for linux/s390x \(the list has windows/amd64, "
                                         r"linux/arm/v6, linux/arm, linux/arm/v7, linux/amd64\)"):
        select_platform(doc, ("linux", "s390x", ""), "m")


@pytest.mark.parametrize("bad", [{"digest": "sha256:12", "size": 1}, {"digest": "x", "size": 1},
                                 {"digest": "sha256:" + "1" * 64, "size": -1},
                                 {"digest": "sha256:" + "1" * 64}, "string"])
def test_platform_entries_are_checked(bad):
    with pytest.raises(ImageError):
        select_platform({"manifests": [bad]}, ("linux", "amd64", ""), "m")


def test_schema1_layers_and_config():
    image = _schema1(schema1_doc(), parse("docker://x.io/test/busybox:v1"), "d", "m")
    assert [layer.digest for layer in image.layers] == [BLOBS[2], BLOBS[0]]  # base first,
    assert image.config == {"Cmd": ["sh"]}                                   # no throwaway
    assert (image.v1_id, image.v1_parent, image.os, image.architecture) == (
        IDS[0], IDS[1], "linux", "amd64")


def test_schema1_layer_count_is_bounded():
    ids = [f"{n:064x}" for n in range(MAX_LAYERS + 2)]
    history = [{"id": i, "parent": p} for i, p in zip(ids, ids[1:])] + [{"id": ids[-1]}]
    doc = schema1_doc(history, blobs=["sha256:" + "1" * 64] * len(history))
    with pytest.raises(ImageError, match=f"{MAX_LAYERS + 2} layers, more than the {MAX_LAYERS} "
                                         "allowed"):
        _schema1(doc, parse("docker://x.io/test/busybox:v1"), "d", "m")


def test_schema1_consecutive_duplicates_collapse():
    history = [{"id": IDS[0], "parent": IDS[1]}, {"id": IDS[1]}, {"id": IDS[1]}]
    image = _schema1(schema1_doc(history), parse("docker://x.io/test/busybox:v1"), "d", "m")
    assert [layer.digest for layer in image.layers] == [BLOBS[1], BLOBS[0]]


@pytest.mark.parametrize("history, message", [
    ([{"id": "../../etc"}], "invalid layer id"),  # CVE-2016-7569
    ([{"id": IDS[0].upper()}], "invalid layer id"),
    ([{"id": IDS[0], "parent": IDS[1]}, {"id": IDS[1], "parent": IDS[0]},
      {"id": IDS[0]}], "appears twice"),  # CVE-2016-8579: a cycle
    ([{"id": IDS[0], "parent": IDS[2]}, {"id": IDS[1]}], "broken layer chain"),
    ([{"id": IDS[0]}, {"id": IDS[1]}], "broken layer chain"),
    ([{"id": IDS[0], "parent": IDS[1]}], "broken layer chain"),
    ([], "same length"),
])
def test_schema1_bad_chains(history, message):
    with pytest.raises(ImageError, match=message):
        _schema1(schema1_doc(history), parse("docker://x.io/test/busybox:v1"), "d", "m")


def test_schema1_name_and_tag_must_match_the_request():
    with pytest.raises(ImageError, match="is for 'other/name'"):
        _schema1(schema1_doc(name="other/name"), parse("docker://x.io/test/busybox:v1"),
                 "d", "m")
    with pytest.raises(ImageError, match="is for tag 'v1', not 'v2'"):
        _schema1(schema1_doc(), parse("docker://x.io/test/busybox:v2"), "d", "m")
    by_digest = parse("docker://x.io/test/busybox@sha256:" + "1" * 64)
    assert _schema1(schema1_doc(), by_digest, "d", "m").v1_id == IDS[0]
