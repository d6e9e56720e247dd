"""The store database: pragmas, schema version, migrations with a backup, refusing newer schemas,
read-only readers, and damaged files that are never taken for an empty store."""

import os
import sqlite3
import subprocess
import sys

import pytest
from rkt_core.store import db, schema


def test_new_database_uses_a_rollback_journal_full_sync_at_current_version(tmp_path):
    database = db.Database(str(tmp_path))
    with database.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("SELECT version FROM version").fetchone()[0] == db.SCHEMA_VERSION
    with database.write() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert os.stat(database.path).st_mode & 0o777 == 0o640
    assert os.stat(database.dir).st_mode & 0o022 == 0


def test_a_wal_database_of_an_older_rkt_is_converted_by_its_owner(tmp_path):
    (tmp_path / "db").mkdir()
    with sqlite3.connect(tmp_path / "db" / db.DB_FILE) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO version VALUES (?)", (db.SCHEMA_VERSION,))
    conn.close()
    with pytest.raises(db.StoreDatabaseError, match="WAL mode"):
        db.Database(str(tmp_path), read_only=True)
    database = db.Database(str(tmp_path))
    with database.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    with db.Database(str(tmp_path), read_only=True).read() as conn:
        assert conn.execute("SELECT version FROM version").fetchone()[0] == db.SCHEMA_VERSION


def test_schema_does_not_import_db():
    code = "import sys, rkt_core.store.schema; print('rkt_core.store.db' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _tables(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_a_new_database_has_the_tables_sqlalchemy_makes_from_the_schema(tmp_path):
    made_here = db.Database(str(tmp_path / "here")).path
    by_sqlalchemy = tmp_path / "by-sqlalchemy.sqlite3"
    engine = schema.engine(str(by_sqlalchemy), db.configure_connection)
    with engine.begin() as conn:
        schema.metadata.create_all(conn)
    engine.dispose()
    assert _tables(made_here) == _tables(by_sqlalchemy)
    assert [name for kind, name, *_ in _tables(made_here) if kind == "table"] == \
        ["aciinfo", "remote", "version"]


@pytest.mark.parametrize("existing", [False, True])
def test_creating_or_writing_a_store_does_not_import_sqlalchemy(tmp_path, existing):
    if existing:
        db.Database(str(tmp_path))
    code = ("import sys; from rkt_core.store.db import Database; d = Database(sys.argv[1]); "
            "d.execute_write('UPDATE version SET version = version'); "
            "print('sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def _insert_image(conn, key="k") -> None:
    conn.execute("INSERT INTO aciinfo VALUES (?, 'n', '{}', 1, 1, 0, 1, 0)", (key,))


def test_write_rolls_back_on_error(tmp_path):
    database = db.Database(str(tmp_path))
    with pytest.raises(RuntimeError):
        with database.write() as conn:
            _insert_image(conn)
            raise RuntimeError("crash in the middle")
    with database.read() as conn:
        assert conn.execute("SELECT * FROM aciinfo").fetchall() == []


def test_write_commits(tmp_path):
    database = db.Database(str(tmp_path))
    with database.write() as conn:
        _insert_image(conn)
    with db.Database(str(tmp_path)).read() as conn:
        assert [row[0] for row in conn.execute("SELECT blobkey FROM aciinfo")] == ["k"]


def test_a_failed_statement_leaves_the_transaction_undone(tmp_path):
    database = db.Database(str(tmp_path))
    with database.write() as conn:
        _insert_image(conn)
    with pytest.raises(sqlite3.IntegrityError):
        with database.write() as conn:
            _insert_image(conn)
    with database.read() as conn:
        assert conn.execute("SELECT count(*) FROM aciinfo").fetchone()[0] == 1


def test_older_schema_is_backed_up_then_migrated(tmp_path, monkeypatch):
    db.Database(str(tmp_path))

    def add_column(conn):
        conn.exec_driver_sql("ALTER TABLE aciinfo ADD COLUMN note TEXT")

    monkeypatch.setattr(db, "SCHEMA_VERSION", db.SCHEMA_VERSION + 1)
    monkeypatch.setitem(schema.MIGRATIONS, db.SCHEMA_VERSION, add_column)
    migrated = db.Database(str(tmp_path))
    with migrated.read() as conn:
        assert conn.execute("SELECT version FROM version").fetchone()[0] == db.SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(aciinfo)")]
    assert "note" in columns
    backups = list((tmp_path / "db-backups").iterdir())
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as old:
        assert old.execute("SELECT version FROM version").fetchone()[0] == db.SCHEMA_VERSION - 1


def test_missing_migration_is_an_error_and_changes_nothing(tmp_path, monkeypatch):
    db.Database(str(tmp_path))
    monkeypatch.setattr(db, "SCHEMA_VERSION", db.SCHEMA_VERSION + 1)
    with pytest.raises(db.StoreDatabaseError, match="no migration"):
        db.Database(str(tmp_path))
    with sqlite3.connect(tmp_path / "db" / db.DB_FILE) as conn:
        assert conn.execute("SELECT version FROM version").fetchone()[0] == db.SCHEMA_VERSION - 1


def test_newer_schema_is_refused(tmp_path):
    db.Database(str(tmp_path))
    with sqlite3.connect(tmp_path / "db" / db.DB_FILE) as conn:
        conn.execute("UPDATE version SET version = 99")
    with pytest.raises(db.StoreDatabaseError, match="schema version 99, newer"):
        db.Database(str(tmp_path))


def test_only_five_backups_are_kept(tmp_path):
    database = db.Database(str(tmp_path))
    for i in range(7):
        database.backup(i)
    assert len(list((tmp_path / "db-backups").iterdir())) == db.BACKUPS_KEPT


def test_read_only_readers_never_write(tmp_path):
    db.Database(str(tmp_path))
    before = sorted(os.listdir(tmp_path / "db"))
    reader = db.Database(str(tmp_path), read_only=True)
    with reader.read() as conn:
        assert conn.execute("SELECT count(*) FROM aciinfo").fetchone()[0] == 0
    with pytest.raises(db.StoreDatabaseError, match="read-only for this user"):
        reader.execute_write("UPDATE aciinfo SET latest = 1")
    with pytest.raises(db.StoreDatabaseError, match="read-only for this user"):
        with reader.write() as conn:
            conn.execute("UPDATE aciinfo SET latest = 1")
    assert sorted(os.listdir(tmp_path / "db")) == before


def test_a_read_only_reader_cannot_create_a_store(tmp_path):
    with pytest.raises(db.StoreDatabaseError, match="missing or outdated") as error:
        db.Database(str(tmp_path), read_only=True)
    assert "as root" in error.value.hint
    assert os.listdir(tmp_path) == []


CRASH_MID_TRANSACTION = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size=1")  # changed pages spill into the file before the commit
conn.execute("BEGIN")
conn.execute("CREATE TABLE junk (x)")
for _ in range(300):
    conn.execute("INSERT INTO junk VALUES (randomblob(1000))")
os._exit(0)  # dies in the middle: the journal left behind is hot
"""


def test_a_hot_journal_seen_by_a_read_only_reader_is_explained(tmp_path):
    database = db.Database(str(tmp_path))
    subprocess.run([sys.executable, "-c", CRASH_MID_TRANSACTION, database.path], check=True)
    assert os.path.exists(database.path + "-journal")
    with pytest.raises(db.StoreDatabaseError, match="interrupted write") as error:
        with db.Database(str(tmp_path), read_only=True).read() as conn:
            conn.execute("SELECT count(*) FROM aciinfo").fetchone()
    assert "as root" in error.value.hint
    with database.read() as conn:  # its owner rolls the journal back
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "junk" not in tables and "aciinfo" in tables
    assert not os.path.exists(database.path + "-journal")


def _with_a_blob(cas):
    blob = cas / "blob" / "sha512" / "ab" / ("sha512-ab" + "0" * 62)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"an image")
    return blob


@pytest.mark.parametrize("damage, reason", [
    (lambda path: path.write_bytes(b""), "empty while the store holds images"),
    (lambda path: path.unlink(), "missing while the store holds images"),
    (lambda path: path.write_bytes(b"not a database at all" * 100), "not an SQLite database"),
])
def test_a_damaged_database_of_a_store_with_images_is_refused(tmp_path, damage, reason):
    db.Database(str(tmp_path))
    blob = _with_a_blob(tmp_path)
    path = tmp_path / "db" / db.DB_FILE
    damage(path)
    before = path.read_bytes() if path.exists() else None
    for read_only in (False, True):
        with pytest.raises(db.StoreDatabaseError, match=reason) as error:
            db.Database(str(tmp_path), read_only=read_only)
        assert str(path) in str(error.value) and "is damaged" in str(error.value)
        assert "rkt image rebuild-db" in error.value.hint
    assert (path.read_bytes() if path.exists() else None) == before
    assert blob.read_bytes() == b"an image"


def test_a_corrupted_page_is_reported_on_read(tmp_path):
    db.Database(str(tmp_path))
    path = tmp_path / "db" / db.DB_FILE
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xff" * (len(data) - 100))
    with pytest.raises(db.StoreDatabaseError, match="is damaged.*malformed"):
        db.Database(str(tmp_path))


def test_a_database_without_tables_is_damaged_only_when_the_store_holds_images(tmp_path):
    (tmp_path / "db").mkdir()
    path = tmp_path / "db" / db.DB_FILE
    sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.close()
    blob = _with_a_blob(tmp_path)
    with pytest.raises(db.StoreDatabaseError, match="no tables while the store holds images"):
        db.Database(str(tmp_path))
    os.unlink(blob)
    with db.Database(str(tmp_path)).read() as conn:
        assert conn.execute("SELECT version FROM version").fetchone()[0] == db.SCHEMA_VERSION


def test_an_empty_file_in_a_store_without_images_is_a_new_store(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / db.DB_FILE).write_bytes(b"")
    with db.Database(str(tmp_path)).read() as conn:
        assert conn.execute("SELECT count(*) FROM aciinfo").fetchone()[0] == 0
