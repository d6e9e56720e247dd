"""The image store: imports keyed like rkt, lookups, removal, and nothing partial left behind."""

import os

import pytest

from rkt_core.errors import ImageError, NotFoundError, RktError, StoreDatabaseError
from rkt_core.store.imagestore import ImageRemovedError, ImageStore, fetch_key, short_key
from rkt_core.testing.aci import build_aci, busybox_aci, image_manifest, tar_uncompressed_sha512


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "data"))


def import_file(store, path, **kw):
    with open(path, "rb") as f, store.staging(f) as staged:
        return store.commit(staged, **kw)


def small_aci(path, name="example.com/small", version="1.0", compression="gzip", **extra):
    return build_aci(path, image_manifest(name, version, ["/bin/true"], **extra),
                     files={"etc/hello": name.encode()}, compression=compression)


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz", None])
def test_import_keys_the_uncompressed_tar_like_rkt(store, tmp_path, compression):
    aci = small_aci(tmp_path / "a.aci", compression=compression)
    info = import_file(store, aci)
    assert info.key == tar_uncompressed_sha512(aci)[:71]
    assert info.name == "example.com/small" and info.version == "1.0"
    assert info.display_name == "example.com/small:1.0"
    assert os.path.getsize(store.blob_path(info.key)) == info.size
    assert store.manifest(info.key).name == "example.com/small"
    assert short_key(info.key) == info.key[:19]
    assert fetch_key(info.key) == info.key[:39]
    assert os.listdir(store.tmp_dir) == []


def test_reimport_keeps_one_entry(store, tmp_path):
    aci = small_aci(tmp_path / "a.aci")
    first = import_file(store, aci)
    second = import_file(store, aci)
    assert first.key == second.key
    assert [i.key for i in store.list_images()] == [first.key]


def test_hostile_archive_leaves_no_trace(store, tmp_path):
    bad = build_aci(tmp_path / "bad.aci", image_manifest("example.com/bad", exec=["/x"]),
                    files={"../escape": b"x"})
    with pytest.raises(ImageError):
        import_file(store, bad)
    assert store.list_images() == []
    assert os.listdir(store.tmp_dir) == []
    assert not os.path.exists(os.path.join(store.cas, "blob"))
    assert not (tmp_path / "data" / "escape").exists()


def test_invalid_manifest_is_refused_before_anything_is_stored(store, tmp_path):
    bad = build_aci(tmp_path / "bad.aci", b'{"acKind": "ImageManifest", "acVersion": "0.7.4", "name": "Bad Name"}')
    with pytest.raises(ImageError, match="name"):
        import_file(store, bad)
    assert store.list_images() == [] and os.listdir(store.tmp_dir) == []


def test_lookups_by_prefix_and_name(store, tmp_path):
    one = import_file(store, small_aci(tmp_path / "1.aci", version="1.0"))
    two = import_file(store, small_aci(tmp_path / "2.aci", version="2.0"))
    assert store.resolve(one.key[:20]) == one.key
    assert store.resolve("example.com/small:1.0") == one.key
    assert store.resolve("example.com/small") == two.key  # latest imported wins
    assert store.resolve("example.com/small,version=2.0") == two.key
    with pytest.raises(NotFoundError):
        store.resolve("example.com/small:3.0")
    with pytest.raises(RktError, match="too short"):
        store.resolve("sha512-a")
    with pytest.raises(NotFoundError):
        store.resolve("sha512-" + "0" * 20)


def test_ambiguous_prefix(store):
    with store.db.write() as conn:
        for key in ("sha512-aa11" + "0" * 60, "sha512-aa22" + "0" * 60):
            conn.execute("INSERT INTO aciinfo VALUES (?, 'x', '{}', 1, 1, 0, 1, 0)", (key,))
    with pytest.raises(RktError, match="ambiguous image ID"):
        store.resolve("sha512-aa")
    assert store.resolve("sha512-aa2") == "sha512-aa22" + "0" * 60


def test_remove_deletes_row_then_files(store, tmp_path):
    info = import_file(store, small_aci(tmp_path / "a.aci"))
    assert store.remove(info.key) == []
    assert store.find_info(info.key) is None
    assert not os.path.exists(store.blob_path(info.key))
    assert not os.path.exists(store.manifest_path(info.key))
    with pytest.raises(NotFoundError):
        store.remove(info.key)


def test_a_file_missing_only_while_another_command_removed_and_refetched_the_image(
        store, tmp_path, monkeypatch):
    # rm removed row and files after the reader found the row; a fetch imported the image again
    # (files first, then the row) before the reader looked at the row again: a race, not damage.
    info = import_file(store, small_aci(tmp_path / "a.aci"))
    real_open = open

    def open_after_removal(path, *args, **kw):
        if path == store.manifest_path(info.key):
            raise FileNotFoundError(path)  # the file as the reader found it: gone
        return real_open(path, *args, **kw)

    monkeypatch.setattr("builtins.open", open_after_removal)
    with pytest.raises(ImageRemovedError, match="meanwhile"):
        store.manifest_json(info.key)
    monkeypatch.undo()
    os.unlink(store.manifest_path(info.key))  # listed, and the file really is not there
    with pytest.raises(NotFoundError, match="missing from the store") as damaged:
        store.manifest_json(info.key)
    assert not isinstance(damaged.value, ImageRemovedError)


def test_the_temp_file_of_an_import_in_progress_is_no_orphan(store, tmp_path):
    info = import_file(store, small_aci(tmp_path / "a.aci"))
    writing = os.path.join(os.path.dirname(store.manifest_path(info.key)), ".tmp-0123456789ab")
    with open(writing, "wb"):
        pass
    assert store.orphan_files() == []


def test_crash_between_blob_and_row_leaves_an_orphan_not_a_row(store, tmp_path, monkeypatch):
    kept = import_file(store, small_aci(tmp_path / "kept.aci", name="example.com/kept"))
    aci = small_aci(tmp_path / "a.aci")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(store.db, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        import_file(store, aci)
    monkeypatch.undo()
    assert [i.key for i in store.list_images()] == [kept.key]
    orphans = store.orphan_files()
    assert len(orphans) == 2 and all(os.path.basename(p).startswith("sha512-") for p in orphans)
    # The next import of the same image repairs the store.
    info = import_file(store, aci)
    assert store.orphan_files() == [] and store.find_info(info.key)


def test_busybox_image_imports(store, tmp_path):
    info = import_file(store, busybox_aci(tmp_path / "bb.aci"))
    assert info.size > 1_000_000


def test_no_orphans_are_named_when_the_database_records_no_image(store, tmp_path):
    info = import_file(store, small_aci(tmp_path / "a.aci"))
    store.db.execute_write("DELETE FROM aciinfo")
    with pytest.raises(StoreDatabaseError, match="records no image while the store holds some"):
        store.orphan_files()
    assert os.path.exists(store.blob_path(info.key))


def test_store_files_are_not_writable_by_group_or_others(store, tmp_path):
    old = os.umask(0o002)  # a group-friendly umask must not matter
    try:
        info = import_file(store, small_aci(tmp_path / "a.aci"))
    finally:
        os.umask(old)
    for path in (store.blob_path(info.key), store.manifest_path(info.key), store.db.path):
        assert os.stat(path).st_mode & 0o777 == 0o640, path
    for top in (store.data_dir, store.cas):
        for dirpath, _dirs, _files in os.walk(top):
            assert os.stat(dirpath).st_mode & 0o022 == 0, dirpath


def test_a_failed_permission_check_leaves_the_image_whole(store, tmp_path, monkeypatch):
    info = import_file(store, small_aci(tmp_path / "a.aci"))
    blob_dir = os.path.dirname(store.blob_path(info.key))
    monkeypatch.setattr(os, "access", lambda path, mode: path != blob_dir)
    with pytest.raises(RktError, match="is not writable"):
        store.remove(info.key)
    monkeypatch.undo()
    assert store.find_info(info.key) is not None
    assert os.path.exists(store.blob_path(info.key))


@pytest.mark.parametrize("spoil, problem", [
    (lambda cas: os.chmod(cas, 0o2770), "is group-writable"),
    (lambda cas: os.chmod(os.path.join(cas, "db", "store.sqlite3"), 0o660), "is group-writable"),
    (lambda cas: os.chmod(os.path.join(cas, "db"), 0o757), "is writable by others"),
    pytest.param(lambda cas: os.chown(os.path.join(cas, "db"), 4242, -1), "is owned by 4242",
                 marks=pytest.mark.root),
])
def test_a_writer_refuses_a_store_others_could_have_changed(store, tmp_path, spoil, problem):
    spoil(store.cas)
    with pytest.raises(RktError, match=problem) as error:
        ImageStore(store.data_dir)
    assert "rkt install" in error.value.hint
    ImageStore(store.data_dir, read_only=True).list_images()  # readers are not refused


def test_a_read_only_store_changes_nothing(store, tmp_path):
    info = import_file(store, small_aci(tmp_path / "a.aci"))
    before = sorted(os.walk(store.data_dir))
    reader = ImageStore(store.data_dir, read_only=True)
    assert [i.key for i in reader.list_images()] == [info.key]
    assert reader.resolve("example.com/small") == info.key
    assert reader.manifest(info.key).name == "example.com/small"
    with pytest.raises(RktError, match="read-only"):
        reader.mark_used(info.key)
    assert sorted(os.walk(store.data_dir)) == before


def test_temp_file_cleanup_leaves_an_import_in_progress_alone(store, tmp_path):
    aci = small_aci(tmp_path / "a.aci")
    with open(aci, "rb") as f, store.staging(f) as staged:
        assert store.remove_stale_temp_files(older_than=0) == []  # image gc --grace-period=0s
        info = store.commit(staged)
    assert os.path.exists(store.blob_path(info.key))
    assert os.listdir(store.tmp_dir) == []


def test_temp_file_cleanup_removes_what_a_crashed_import_left(store, tmp_path):
    leftover = os.path.join(store.tmp_dir, "import-crashed")
    with open(leftover, "wb") as f:
        f.write(b"half an image")
    assert store.remove_stale_temp_files(older_than=0) == [leftover]
    assert os.listdir(store.tmp_dir) == []
