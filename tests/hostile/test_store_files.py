"""Store files damaged on disk: a blob truncated, flipped or missing, a stored manifest missing
or garbage, files of a rendered tree changed, the database replaced by garbage. ``image list``,
``image verify``, ``cat-manifest`` and ``run`` either work (a damaged tree is rebuilt from its
blob, with a warning) or stop with rkt's clear error naming the image and what to do, and
change nothing; what they advise (``image rm`` and fetch again, ``image rebuild-db``) works.
"""

from __future__ import annotations

import json

import pytest
from hostile import assert_clear_error, store_state

from rkt_core.testing.aci import busybox_aci

pytestmark = pytest.mark.root
NAME = "example.com/busybox:1.0"


@pytest.fixture(scope="module")
def aci(tmp_path_factory):
    return busybox_aci(tmp_path_factory.mktemp("img") / "bb.aci",
                       exec=["/bin/sh", "-c", "echo ran"])


@pytest.fixture
def stored(rkt, aci):
    """The image fetched, run once (so its tree is rendered) and its pod collected: its key."""
    run = rkt("run", "--stage1-name=fly", aci)
    assert run.returncode == 0 and run.stdout == "ran\n", run.stderr
    assert rkt("gc", "--grace-period=0s").returncode == 0
    return json.loads(rkt("image", "list", "--format=json").stdout)[0]["id"]


def blob(data, key):
    return data / "cas" / "blob" / "sha512" / key[7:9] / key


def manifest(data, key):
    return next((data / "cas" / "imageManifest").rglob(key))


def tree(data):
    return next((data / "cas" / "tree").iterdir())


def cut(path):
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))


def without_warnings(stderr: str) -> str:
    return "".join(line for line in stderr.splitlines(True) if "verification is disabled" not in line)


# damage -> (what it does, what the error says)
BLOB_DAMAGE = {
    "blob truncated": (lambda data, key: cut(blob(data, key)), "does not match its ID"),
    "blob flipped": (lambda data, key: flip(blob(data, key)), "does not match its ID"),
    "blob missing": (lambda data, key: blob(data, key).unlink(), "is missing from the store"),
}
MANIFEST_DAMAGE = {
    "manifest missing": (lambda data, key: manifest(data, key).unlink(),
                         "the manifest of image"),
    "manifest garbage": (lambda data, key: manifest(data, key).write_bytes(b"\0garbage{"),
                         "the stored manifest of image"),
}
TREE_DAMAGE = {
    "tree file changed": lambda data: (tree(data) / "rootfs" / "bin" / "busybox").write_bytes(
        b"#!/bin/false\n"),
    "tree file removed": lambda data: (tree(data) / "rootfs" / "bin" / "busybox").unlink(),
    "tree hash garbage": lambda data: (tree(data) / "hash").write_bytes(b"garbage"),
}


@pytest.mark.parametrize("damage", BLOB_DAMAGE)
def test_a_damaged_blob_is_named_and_removable(rkt, stored, damage, figures):
    harm, expected = BLOB_DAMAGE[damage]
    harm(rkt.data_dir, stored)
    figures.add("store files")
    assert stored in rkt("image", "list", "--full").stdout  # listing reads no blob
    verify = rkt("image", "verify", stored)
    assert_clear_error(verify, stored, f'remove it with "rkt image rm {stored}"')
    # The tree rendered before the damage was verified and still runs; once image gc removed
    # it, the image cannot be rendered again and says why.
    run = rkt("run", "--stage1-name=fly", NAME)
    assert run.returncode == 0 and run.stdout == "ran\n", run.stderr
    assert rkt("gc", "--grace-period=0s").returncode == 0
    assert rkt("image", "gc").returncode == 0  # the tree goes, the recently used image stays
    before = store_state(rkt.data_dir)
    assert before["trees"] == [] and before["rows"] == [stored]
    run = rkt("run", "--stage1-name=fly", NAME)
    assert_clear_error(run, stored, expected, f'remove it with "rkt image rm {stored}"')
    assert store_state(rkt.data_dir) == {**before, "trees": store_state(rkt.data_dir)["trees"]}
    assert rkt("image", "rm", stored).returncode == 0
    assert store_state(rkt.data_dir)["rows"] == store_state(rkt.data_dir)["blob"] == []


@pytest.mark.parametrize("damage", MANIFEST_DAMAGE)
def test_a_damaged_manifest_is_named_and_removable(rkt, stored, damage, figures):
    harm, expected = MANIFEST_DAMAGE[damage]
    harm(rkt.data_dir, stored)
    figures.add("store files")
    before = store_state(rkt.data_dir)
    for args in (["image", "verify", stored], ["image", "cat-manifest", stored],
                 ["run", "--stage1-name=fly", NAME]):
        done = rkt(*args)
        assert_clear_error(done, expected, stored, f'remove it with "rkt image rm {stored}"')
        pods = rkt.data_dir / "pods"
        assert [p for d in pods.iterdir() for p in d.iterdir()] == [], args
    assert store_state(rkt.data_dir) == before
    assert rkt("image", "rm", stored).returncode == 0
    assert store_state(rkt.data_dir)["rows"] == store_state(rkt.data_dir)["blob"] == []


@pytest.mark.parametrize("damage", TREE_DAMAGE)
def test_a_damaged_tree_is_rebuilt_by_run_and_verify(rkt, stored, damage, figures):
    TREE_DAMAGE[damage](rkt.data_dir)
    figures.add("store files")
    run = rkt("run", "--stage1-name=fly", NAME)
    assert run.returncode == 0 and run.stdout == "ran\n", run.stderr
    if damage != "tree hash garbage":  # a good rootfs is what runs: its record is for verify
        assert "tree cache is in a bad state" in run.stderr and "Rebuilding" in run.stderr
    assert rkt("image", "verify", stored).returncode == 0  # (the hash record repaired)
    verify = rkt("image", "verify", stored)
    assert verify.stdout.startswith("successfully verified"), (verify.stdout, verify.stderr)
    TREE_DAMAGE[damage](rkt.data_dir)  # and verify finds and repairs it by itself
    verify = rkt("image", "verify", stored)
    assert verify.returncode == 0 and "tree cache verification failed" in verify.stdout
    assert rkt("image", "verify", stored).stdout.startswith("successfully verified")


def test_a_garbage_database_stops_commands_until_rebuilt(rkt, stored, figures):
    db = rkt.data_dir / "cas" / "db" / "store.sqlite3"
    db.write_bytes(b"\0garbage" * 4096)
    figures.add("store files")
    blobs = sorted(p.name for p in (rkt.data_dir / "cas" / "blob").rglob("sha512-*"))
    for args in (["image", "list"], ["image", "verify", stored], ["run", "--stage1-name=fly",
                                                                   NAME]):
        assert_clear_error(rkt(*args), f"the store database {db} is damaged",
                           "rkt image rebuild-db")
    assert sorted(p.name for p in (rkt.data_dir / "cas" / "blob").rglob("sha512-*")) == blobs
    assert rkt("image", "rebuild-db").returncode == 0
    run = rkt("run", "--stage1-name=fly", NAME)
    assert run.returncode == 0 and run.stdout == "ran\n", run.stderr
