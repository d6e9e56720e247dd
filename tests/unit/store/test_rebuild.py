"""Re-creating the store database from the blobs: every good image comes back, nothing is lost."""

import os

import pytest

from rkt_core.errors import StoreDatabaseError
from rkt_core.store import db
from rkt_core.store.imagestore import ImageStore
from rkt_core.store.rebuild import rebuild_database
from rkt_core.testing.aci import build_aci, image_manifest


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "data"))


def add_image(store, tmp_path, name, version="1.0"):
    aci = build_aci(tmp_path / f"{name.replace('/', '_')}.aci",
                    image_manifest(name, version, ["/bin/true"], labels={"arch": "amd64"}),
                    files={"etc/hello": name.encode()})
    with open(aci, "rb") as f, store.staging(f) as staged:
        return store.commit(staged)


def test_an_emptied_database_is_rebuilt_from_the_blobs(store, tmp_path):
    one = add_image(store, tmp_path, "example.com/one")
    two = add_image(store, tmp_path, "example.com/two", "2.0")
    os.utime(store.blob_path(one.key), (1_600_000_000, 1_600_000_000))
    os.unlink(store.manifest_path(two.key))
    with open(store.db.path, "wb"):
        pass
    with pytest.raises(StoreDatabaseError, match="is damaged"):
        ImageStore(store.data_dir)

    result = rebuild_database(store.cas)

    assert sorted(result.recovered) == sorted([(one.key, "example.com/one"),
                                               (two.key, "example.com/two")])
    assert result.skipped == []
    assert os.path.getsize(result.backup) == 0  # the damaged file, kept as it was
    assert os.path.dirname(result.backup) == os.path.join(store.cas, "db-backups")
    rebuilt = ImageStore(store.data_dir)
    images = {i.key: i for i in rebuilt.list_images()}
    assert images[one.key].import_time == 1_600_000_000
    assert images[two.key].display_name == "example.com/two:2.0"
    assert images[two.key].labels == two.labels and two.labels["arch"] == "amd64"
    assert images[two.key].size == os.path.getsize(store.blob_path(two.key))
    assert rebuilt.manifest(two.key).name == "example.com/two"  # its manifest file is back
    assert os.stat(rebuilt.db.path).st_mode & 0o777 == db.DB_FILE_MODE
    assert rebuilt.orphan_files() == []


def test_a_blob_that_does_not_match_its_name_is_reported_and_left_alone(store, tmp_path):
    good = add_image(store, tmp_path, "example.com/good")
    bad = add_image(store, tmp_path, "example.com/bad")
    with open(store.blob_path(bad.key), "r+b") as f:
        f.seek(1000)
        f.write(b"tampered")
    tampered = open(store.blob_path(bad.key), "rb").read()
    stray = os.path.join(os.path.dirname(store.blob_path(good.key)), "not-a-blob")
    with open(stray, "w") as f:
        f.write("x")
    os.unlink(store.db.path)

    result = rebuild_database(store.cas)

    assert result.recovered == [(good.key, "example.com/good")]
    assert result.backup is None  # there was no database to keep
    problems = "\n".join(result.skipped)
    assert f"{store.blob_path(bad.key)}: its content hashes to" in problems
    assert f"{stray}: not named like an image blob" in problems
    assert open(store.blob_path(bad.key), "rb").read() == tampered
    assert os.path.exists(stray)
    assert [i.key for i in ImageStore(store.data_dir).list_images()] == [good.key]


def test_a_journal_of_the_damaged_database_is_kept_with_it_not_applied(store, tmp_path):
    info = add_image(store, tmp_path, "example.com/one")
    with open(store.db.path, "wb") as f:
        f.write(b"garbage" * 1000)
    with open(store.db.path + "-journal", "wb") as f:
        f.write(b"an old journal")

    result = rebuild_database(store.cas)

    assert not os.path.exists(store.db.path + "-journal")
    with open(result.backup + "-journal", "rb") as f:
        assert f.read() == b"an old journal"
    with open(result.backup, "rb") as f:
        assert f.read() == b"garbage" * 1000
    assert [i.key for i in ImageStore(store.data_dir).list_images()] == [info.key]
