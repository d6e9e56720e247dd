"""The image store: imports keyed like rkt, lookups, removal, and nothing partial left behind."""

import os

import pytest

from rkt_core.errors import ImageError, NotFoundError, RktError
from rkt_core.store.imagestore import ImageStore, fetch_key, short_key
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
    from rkt_core.store import schema

    with store.db.write() as conn:
        for key in ("sha512-aa11" + "0" * 60, "sha512-aa22" + "0" * 60):
            conn.execute(schema.aciinfo.insert().values(blobkey=key, name="x", labels="{}", importtime=1,
                                                    lastused=1, latest=False, size=1, treestoresize=0))
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


def test_crash_between_blob_and_row_leaves_an_orphan_not_a_row(store, tmp_path, monkeypatch):
    aci = small_aci(tmp_path / "a.aci")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(store.db, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        import_file(store, aci)
    monkeypatch.undo()
    assert store.list_images() == []
    orphans = store.orphan_files()
    assert len(orphans) == 2 and all(os.path.basename(p).startswith("sha512-") for p in orphans)
    # The next import of the same image repairs the store.
    info = import_file(store, aci)
    assert store.orphan_files() == [] and store.find_info(info.key)


def test_busybox_image_imports(store, tmp_path):
    info = import_file(store, busybox_aci(tmp_path / "bb.aci"))
    assert info.size > 1_000_000
