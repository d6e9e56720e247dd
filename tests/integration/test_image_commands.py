"""rkt fetch / trust / image * end to end, through the real command, gpg and busybox."""

import hashlib
import json
import os
import re
import sqlite3
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from rkt_core.testing.aci import build_aci, busybox_aci, image_manifest, tar_uncompressed_sha512


@pytest.fixture
def rkt(rkt):
    """The kit's runner, with signature checks on (no --insecure-options)."""
    rkt.insecure = ""
    return rkt


@pytest.fixture
def signed(signed_image):
    """The kit's signed busybox image: (aci path, key file)."""
    return signed_image.aci, signed_image.key


def trust(rkt, key, prefix="example.com/busybox"):
    rkt("trust", f"--prefix={prefix}", "--skip-fingerprint-review", key, check=0)


def test_fetch_refuses_unsigned_then_accepts_signed_after_trust(rkt, signed, tmp_path):
    aci, key = signed
    unsigned = tmp_path / "unsigned.aci"
    unsigned.write_bytes(aci.read_bytes())
    out = rkt("fetch", unsigned, check=254)
    assert "has no signature" in out.stderr and "--insecure-options=image" in out.stderr
    out = rkt("fetch", aci, check=254)
    assert "signature made by unknown entity" in out.stderr
    assert 'rkt trust --prefix "example.com/busybox"' in out.stderr
    assert rkt("image", "list", "--no-legend", check=0).stdout == ""
    trust(rkt, key)
    out = rkt("fetch", aci, check=0)
    key_id = tar_uncompressed_sha512(aci)
    assert out.stdout == key_id[:39] + "\n"
    assert rkt("fetch", "--full", aci, check=0).stdout == key_id[:71] + "\n"


def test_trust_for_another_prefix_does_not_apply(rkt, signed):
    aci, key = signed
    trust(rkt, key, prefix="example.com/other")
    assert "unknown entity" in rkt("fetch", aci, check=254).stderr


def test_unchanged_file_is_not_reimported_but_still_verified(rkt, signed):
    aci, key = signed
    trust(rkt, key)
    rkt("fetch", aci, check=0)
    first = json.loads(rkt("image", "list", "--format=json", check=0).stdout)
    rkt("fetch", aci, check=0)
    second = json.loads(rkt("image", "list", "--format=json", check=0).stdout)
    assert first == second  # same single entry, same import time
    # Revoking trust makes even the cached file fail verification.
    for path in (rkt.local_config / "trustedkeys").rglob("*"):
        if path.is_file():
            path.unlink()
    assert rkt("fetch", aci, check=254).returncode == 254


def test_insecure_options_and_the_v014_alias(rkt, tmp_path):
    aci = busybox_aci(tmp_path / "bb.aci")
    out = rkt("--insecure-options=image", "fetch", aci, check=0)
    assert "signature verification is disabled" in out.stderr
    rkt("image", "rm", out.stdout.strip(), check=0)
    rkt("fetch", "--insecure-skip-verify", aci, check=0)
    assert rkt("--insecure-options=bogus", "fetch", aci).returncode == 254


def test_missing_file_and_missing_fetcher(rkt, tmp_path):
    out = rkt("--insecure-options=image", "fetch", tmp_path / "nope.aci", check=254)
    assert f"open {tmp_path / 'nope.aci'}: no such file or directory" in out.stderr
    # With the docker fetcher disabled (it may be installed), nothing must reach a registry.
    out = rkt("--insecure-options=image", "--disable-plugin=fetch-docker", "fetch",
              "docker://busybox", check=254)
    assert 'no fetcher is installed for "docker" images' in out.stderr
    assert "pip install rkt-fetch-docker" in out.stderr


def test_hostile_archive_is_refused_and_leaves_nothing(rkt, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    evil = tmp_path / "evil.aci"
    build_aci(evil, image_manifest("example.com/evil", exec=["/x"]),
              files={"../../victim/pwned": b"x"})
    out = rkt("--insecure-options=image", "fetch", evil, check=254)
    assert "rkt:" in out.stderr
    assert list(victim.iterdir()) == []
    assert rkt("image", "list", "--no-legend", check=0).stdout == ""
    assert list((rkt.data_dir / "cas" / "tmp").iterdir()) == []


@pytest.fixture
def fetched(rkt, tmp_path):
    aci = busybox_aci(tmp_path / "bb.aci", name="example.com/busybox", version="1.0")
    key = rkt("--insecure-options=image", "fetch", "--full", aci, check=0).stdout.strip()
    return aci, key


def test_image_list_formats(rkt, fetched):
    _, key = fetched
    lines = rkt("image", "list", check=0).stdout.splitlines()
    assert lines[0] == "ID\t\t\tNAME\t\t\tSIZE\tIMPORT TIME\tLAST USED"
    assert lines[1].startswith(key[:19] + "\texample.com/busybox:1.0\t")
    assert re.search(r"\t(now|\d+ seconds? ago)\t", lines[1]), lines[1]  # however slow we are
    full = rkt("image", "list", "--full", "--no-legend", check=0).stdout
    assert full.startswith(key + "\t")
    fields = rkt("image", "list", "--fields=name,id", "--no-legend", check=0).stdout
    assert fields == f"example.com/busybox:1.0\t{key[:19]}\n"
    (entry,) = json.loads(rkt("image", "list", "--format=json", check=0).stdout)
    assert entry["id"] == key and entry["name"] == "example.com/busybox:1.0"
    assert rkt("image", "list", "--fields=bogus").returncode == 254


def test_cat_manifest_pretty_and_compact(rkt, fetched):
    pretty = rkt("image", "cat-manifest", "example.com/busybox:1.0", check=0).stdout
    assert pretty.startswith('{\n\t"acKind": "ImageManifest",\n\t"acVersion": "0.7.4",')
    compact = rkt("image", "cat-manifest", "--pretty-print=false", fetched[1][:20], check=0).stdout
    assert compact.startswith('{"acKind":"ImageManifest","acVersion":"0.7.4","name":"example.com/busybox"')


def test_render_extract_export(rkt, fetched, tmp_path):
    aci, key = fetched
    out = tmp_path / "out"
    rkt("image", "render", "example.com/busybox:1.0", out, check=0)
    assert (out / "manifest").exists() and os.access(out / "rootfs" / "bin" / "busybox", os.X_OK)
    assert "output directory exists" in rkt("image", "render", key, out, check=254).stderr
    rkt("image", "extract", "--rootfs-only", "--overwrite", key, out, check=0)
    assert (out / "bin" / "busybox").exists() and not (out / "manifest").exists()
    assert "root filesystem" in rkt("image", "extract", "--overwrite", key, "/", check=254).stderr
    exported = tmp_path / "exported.aci"
    rkt("image", "export", key, exported, check=0)
    assert "sha512-" + hashlib.sha512(exported.read_bytes()).hexdigest()[:64] == key
    with tarfile.open(exported) as tar:
        assert "manifest" in tar.getnames()
    assert "exists" in rkt("image", "export", key, exported, check=254).stderr


def _exported_key(data: bytes) -> str:
    return "sha512-" + hashlib.sha512(data).hexdigest()[:64]


@pytest.mark.root  # mknod
def test_export_writes_into_a_device_and_never_replaces_it(rkt, fetched, tmp_path):
    _, key = fetched
    out = tmp_path / "out"
    out.mkdir()
    full, null = out / "full", out / "null"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # as /dev/full
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # as /dev/null
    result = rkt("image", "export", "--overwrite", key, full, check=254)
    assert result.stderr == (f"rkt: error writing to output ACI file {full}: "
                             "No space left on device\n")
    rkt("image", "export", "--overwrite", key, null, check=0)
    assert stat.S_ISCHR(full.lstat().st_mode) and stat.S_ISCHR(null.lstat().st_mode)
    assert sorted(os.listdir(out)) == ["full", "null"]


def test_export_streams_into_a_fifo(rkt, fetched, tmp_path):
    _, key = fetched
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with open(tmp_path / "received", "wb") as received:
        reader = subprocess.Popen(["cat", fifo], stdout=received)
    try:
        rkt("image", "export", "--overwrite", key, fifo, check=0)
        assert reader.wait(timeout=60) == 0
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert _exported_key((tmp_path / "received").read_bytes()) == key
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_export_over_a_symlink_replaces_the_file_it_points_to(rkt, fetched, tmp_path):
    _, key = fetched
    real, link = tmp_path / "real.aci", tmp_path / "link.aci"
    real.write_bytes(b"old")
    link.symlink_to(real.name)
    rkt("image", "export", "--overwrite", key, link, check=0)
    assert link.is_symlink() and _exported_key(real.read_bytes()) == key


def test_export_refuses_a_directory(rkt, fetched, tmp_path):
    _, key = fetched
    (tmp_path / "dir").mkdir()
    result = rkt("image", "export", "--overwrite", key, tmp_path / "dir", check=254)
    assert result.stderr.startswith(f"rkt: output ACI file {tmp_path / 'dir'} is a directory")
    assert (tmp_path / "dir").is_dir() and list((tmp_path / "dir").iterdir()) == []


def test_export_errors_name_the_users_path(rkt, fetched, tmp_path):
    _, key = fetched
    missing = tmp_path / "nonexistent" / "x.aci"
    result = rkt("image", "export", key, missing, check=254)
    assert result.stderr == (f"rkt: unable to open output ACI file {missing}: "
                             "No such file or directory\n")


@pytest.mark.root  # mknod
@pytest.mark.parametrize("command", ["extract", "render"])
def test_extract_and_render_overwrite_only_files_links_and_directories(rkt, fetched, tmp_path,
                                                                       command):
    _, key = fetched
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "file").write_text("mine")
    device, fifo = tmp_path / "null", tmp_path / "fifo"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(fifo)
    for target, kind in ((device, "a character device"), (fifo, "a named pipe")):
        result = rkt("image", command, "--overwrite", key, target, check=254)
        assert result.stderr.startswith(f"rkt: {target} is {kind}, not a directory")
    assert stat.S_ISCHR(device.lstat().st_mode) and stat.S_ISFIFO(fifo.lstat().st_mode)
    link, file = tmp_path / "link", tmp_path / "file"
    link.symlink_to(kept)
    file.write_text("x")
    for target in (link, file):
        rkt("image", command, "--overwrite", key, target, check=0)
        assert not target.is_symlink() and (target / "rootfs" / "bin" / "busybox").is_file()
    assert [p.name for p in kept.iterdir()] == ["file"]  # the link went, not what it pointed to
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_verify_detects_and_repairs_a_modified_tree(rkt, fetched):
    from rkt_core.store.imagestore import ImageStore
    from rkt_core.store.treestore import TreeStore

    _, key = fetched
    assert "not rendered" in rkt("image", "verify", key, check=0).stdout
    trees = TreeStore(ImageStore(str(rkt.data_dir)))
    tree = trees.render(key)
    assert "successfully verified checksum" in rkt("image", "verify", key, check=0).stdout
    sh = Path(trees.rootfs(tree)) / "bin" / "busybox"
    sh.unlink()
    sh.write_bytes(b"#!/bin/false\n")
    out = rkt("image", "verify", key, check=0)
    assert "tree cache verification failed" in out.stdout and "rebuilding" in out.stdout
    trees.verify(tree)  # repaired
    assert sh.stat().st_size > 1000


def test_verify_detects_a_corrupted_blob(rkt, fetched):
    _, key = fetched
    blob = rkt.data_dir / "cas" / "blob" / "sha512" / key[7:9] / key
    data = bytearray(blob.read_bytes())
    data[-2000] ^= 0xFF
    blob.write_bytes(bytes(data))
    assert "corrupted" in rkt("image", "verify", key, check=254).stderr


def test_rm_by_name_and_id_fails_if_any_fails(rkt, fetched, tmp_path):
    _, key = fetched
    other = build_aci(tmp_path / "o.aci", image_manifest("example.com/other", exec=["/x"]), files={"a": b"a"})
    rkt("--insecure-options=image", "fetch", other, check=0)
    out = rkt("image", "rm", "example.com/other", key[:15], "example.com/missing", check=254)
    assert out.stdout.count("successfully removed aci for image") == 2
    assert "1 image(s) cannot be removed" in out.stderr
    assert rkt("image", "list", "--no-legend", check=0).stdout == ""


def test_image_gc_respects_the_grace_period(rkt, fetched):
    rkt("image", "gc", check=0)
    assert "busybox" in rkt("image", "list", check=0).stdout
    rkt("image", "gc", "--grace-period=0s", check=0)
    assert rkt("image", "list", "--no-legend", check=0).stdout == ""


def test_image_gc_removes_orphans_left_by_a_crash(rkt, fetched):
    _, key = fetched
    orphan = rkt.data_dir / "cas" / "blob" / "sha512" / "ab" / ("sha512-ab" + "0" * 62)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"half-imported")
    rkt("image", "gc", check=0)
    assert not orphan.exists()
    assert (rkt.data_dir / "cas" / "blob" / "sha512" / key[7:9] / key).exists()


def test_image_gc_removes_stale_temporary_files_but_not_fresh_or_locked_ones(rkt, fetched):
    import fcntl

    tmp = rkt.data_dir / "cas" / "tmp"
    old = time.time() - 2 * 86400
    stale, fresh, locked = tmp / "import-crashed", tmp / "download-fresh", tmp / "download-busy"
    for path in (stale, fresh, locked):
        path.write_bytes(b"partial")
    for path in (stale, locked):
        os.utime(path, (old, old))
    with open(locked, "rb") as busy:
        fcntl.flock(busy, fcntl.LOCK_EX)  # as a download in progress holds it
        rkt("image", "gc", check=0)
    assert not stale.exists()
    assert fresh.exists() and locked.exists()
    assert "busybox" in rkt("image", "list", check=0).stdout


def test_version_config_and_unknown_command(rkt):
    out = rkt("version", check=0).stdout
    assert out.startswith("rkt Version: ") and "appc Version: 0.7.4" in out
    config = json.loads(rkt("config", check=0).stdout)
    paths = [e for e in config["stage0"] if e["rktKind"] == "paths"]
    assert paths[0]["data"] == str(rkt.data_dir)
    assert rkt("no-such-command").returncode == 254


def snapshot(top: Path) -> dict[str, tuple]:
    """Every path under ``top`` with its type, mode, owner and content hash."""
    state = {}
    for path in sorted(top.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        state[str(path.relative_to(top))] = (st.st_mode, st.st_uid, st.st_gid, digest)
    return state


@pytest.mark.parametrize("damage, reason", [
    (lambda db: db.write_bytes(b""), "it is empty while the store holds images"),
    (lambda db: db.unlink(), "it is missing while the store holds images"),
    (lambda db: db.write_bytes(b"\x00garbage" * 4096), "it is not an SQLite database"),
])
def test_a_damaged_database_stops_every_command_and_loses_nothing(rkt, fetched, damage, reason):
    aci, key = fetched
    db = rkt.data_dir / "cas" / "db" / "store.sqlite3"
    damage(db)
    before = snapshot(rkt.data_dir)
    for args in (["image", "list"], ["image", "gc", "--grace-period=0s"], ["image", "rm", key],
                 ["image", "cat-manifest", key], ["--insecure-options=image", "fetch", aci],
                 ["--insecure-options=image", "run", "--stage1-name=fly", aci]):
        out = rkt(*args, check=254)
        assert f"rkt: the store database {db} is damaged ({reason})" in out.stderr, (args, out.stderr)
        assert '"rkt image rebuild-db"' in out.stderr
    assert snapshot(rkt.data_dir) == before

    out = rkt("image", "rebuild-db", check=0)
    assert f'recovered image "example.com/busybox" ({key})' in out.stdout
    assert "rebuilt with 1 image(s)" in out.stderr
    listed = rkt("image", "list", "--full", "--no-legend", check=0).stdout
    assert listed.startswith(f"{key}\texample.com/busybox:1.0\t")
    backups = list((rkt.data_dir / "cas" / "db-backups").glob("*"))
    assert len(backups) == (0 if "missing" in reason else 1)
    rkt("image", "gc", check=0)  # nothing is an orphan any more
    assert (rkt.data_dir / "cas" / "blob" / "sha512" / key[7:9] / key).exists()


def test_image_gc_removes_no_orphans_when_the_database_records_no_image(rkt, fetched):
    _, key = fetched
    with sqlite3.connect(rkt.data_dir / "cas" / "db" / "store.sqlite3") as conn:
        conn.execute("DELETE FROM aciinfo")
    conn.close()
    before = snapshot(rkt.data_dir)
    out = rkt("image", "gc", check=254)
    assert "is damaged (it records no image while the store holds some)" in out.stderr
    assert snapshot(rkt.data_dir) == before
    rkt("image", "rebuild-db", check=0)
    assert key in rkt("image", "list", "--full", check=0).stdout


def test_a_deeply_nested_manifest_is_named(rkt, tmp_path):
    text = json.dumps(image_manifest("example.com/deep", exec=["/x"]))
    deep = build_aci(tmp_path / "deep.aci",
                     (text[:-1] + ', "x": ' + "[" * 50_000 + "]" * 50_000 + "}").encode(),
                     files={"a": b"a"})
    out = rkt("--insecure-options=image", "fetch", deep, check=254)
    assert (f'rkt: image "{deep}": invalid image manifest: nested deeper than 100 levels'
            in out.stderr), out.stderr
    assert "unexpected error" not in out.stderr
