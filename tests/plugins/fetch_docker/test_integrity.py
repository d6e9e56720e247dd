"""Tampered blobs, configs and manifests, wrong diff_ids and hostile layers served by a real
registry: every one is refused with a clear error and leaves nothing in the store. (HTML, cut
and oversized images are the fetcher contract's, test_docker_contract.py.)"""

import gzip
import hashlib
import json
import tarfile

import pytest

from rkt_core.testing.registry import (DOCKER_LIST, OCI_MANIFEST, TEST_REPO, host_goarch,
                                       layer_tar, tar_entry)

pytestmark = pytest.mark.root


def ref_of(registry, tag="latest"):
    return f"docker://{registry.address}/{TEST_REPO}:{tag}"


def oci_manifest(registry, tag="latest") -> dict:
    return json.loads(registry.manifest(tag, OCI_MANIFEST)[0])


def flip_byte(path, at=None):
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0x01
    path.write_bytes(bytes(data))


def assert_refused(rkt, registry, tag, message):
    result = rkt("fetch", ref_of(registry, tag))
    assert result.returncode == 254, result.stderr
    assert message in result.stderr, result.stderr
    assert result.stderr.startswith("rkt: ") or "\nrkt: " in result.stderr
    assert rkt.image_keys() == []
    assert rkt.tmp_leftovers() == []


def test_a_tampered_layer_blob(rkt, start_registry):
    registry = start_registry()
    layer = oci_manifest(registry)["layers"][-1]["digest"]
    flip_byte(registry.blob_path(layer))
    assert_refused(rkt, registry, "latest", f"blob {layer}: digest mismatch")
    assert not (rkt.blob_cache / layer.replace(":", "-")).exists()


def test_a_tampered_config(rkt, start_registry):
    registry = start_registry()
    config = oci_manifest(registry)["config"]["digest"]
    flip_byte(registry.blob_path(config))
    assert_refused(rkt, registry, "latest", f"image config {config}: digest mismatch")


def test_a_tampered_manifest(rkt, start_registry):
    registry = start_registry()
    body, digest = registry.manifest("latest", OCI_MANIFEST)
    layer = json.loads(body)["layers"][0]["digest"]
    path = registry.blob_path(digest)
    swapped = layer[:-1] + ("0" if layer[-1] != "0" else "1")
    path.write_bytes(path.read_bytes().replace(layer.encode(), swapped.encode()))
    assert_refused(rkt, registry, "latest", f"manifest latest: digest mismatch: expected {digest}")


def test_a_tampered_schema1_manifest(rkt, start_registry):
    registry = start_registry()
    _, digest = registry.manifest("v2s1", "application/vnd.docker.distribution.manifest."
                                          "v1+prettyjws")
    path = registry.blob_path(digest)  # the JWS payload; the registry signs it on GET
    path.write_bytes(path.read_bytes().replace(b'"tag":"v2s1"', b'"tag":"v2sX"'))
    assert_refused(rkt, registry, "v2s1", "manifest v2s1: digest mismatch")


def test_wrong_diff_ids(rkt, start_registry):
    registry = start_registry()
    registry.push_image("baddiff", [layer_tar([("f", b"f")])], {"Cmd": ["/f"]},
                        diff_ids=["sha256:" + "0" * 64])
    assert_refused(rkt, registry, "baddiff", "(uncompressed, rootfs.diff_ids): digest mismatch")


def test_diff_ids_missing_for_a_layer(rkt, start_registry):
    registry = start_registry()
    layer = layer_tar([("f", b"f")])
    registry.push_image("fewdiffs", [layer, layer], diff_ids=[
        "sha256:" + hashlib.sha256(layer).hexdigest()])
    assert_refused(rkt, registry, "fewdiffs", "rootfs.diff_ids has 1 entries for 2 layers")


@pytest.mark.parametrize("entries, message", [
    ([tar_entry(".wh..", tarfile.REGTYPE)], 'invalid whiteout ".wh.."'),
    ([tar_entry(".wh...", tarfile.REGTYPE)], 'invalid whiteout ".wh..."'),
    ([tar_entry("etc/.wh..", tarfile.REGTYPE)], 'invalid whiteout "etc/.wh.."'),
    ([("../../etc/evil", b"x")], "escapes the root"),
    ([tar_entry("l", tarfile.LNKTYPE, 0o644, "/../../etc/passwd")], "escapes the root"),
])
def test_hostile_layers(rkt, start_registry, entries, message):
    registry = start_registry()
    registry.push_image("evil", [layer_tar([("ok", b"ok")]), layer_tar(entries)])
    assert_refused(rkt, registry, "evil", message)


def test_a_layer_that_is_not_a_tar(rkt, start_registry):
    registry = start_registry()
    registry.push_image("junk", [b"\x00junk" * 300])
    assert_refused(rkt, registry, "junk", "not a valid tar")


def test_a_layer_with_an_unsupported_media_type(rkt, start_registry):
    registry = start_registry()
    blob = gzip.compress(layer_tar([("f", b"f")]))
    config = json.dumps({"os": "linux", "architecture": "amd64", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": registry.push_blob(config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                            "digest": registry.push_blob(blob), "size": len(blob)}]}
    registry.put_manifest("zstd", json.dumps(manifest).encode(), OCI_MANIFEST)
    assert_refused(rkt, registry, "zstd", "unsupported media type "
                                          "'application/vnd.oci.image.layer.v1.tar+zstd'")


def test_lists_without_this_platform_or_with_a_wrong_entry(rkt, start_registry):
    registry = start_registry()
    other = "amd64" if host_goarch() == "s390x" else "s390x"
    registry.push_list("foreign", [("v2s2", other)])
    assert_refused(rkt, registry, "foreign", f"no image for linux/{host_goarch()} "
                                             f"(the list has linux/{other})")
    list_doc = json.loads(registry.manifest("list", DOCKER_LIST)[0])
    for entry in list_doc["manifests"]:
        entry["size"] += 1
    registry.put_manifest("badsize", json.dumps(list_doc).encode(), DOCKER_LIST)
    assert_refused(rkt, registry, "badsize", "bytes, the list says")
