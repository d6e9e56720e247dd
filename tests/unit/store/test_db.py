"""The store database: pragmas, schema version, migrations with a backup, refusing newer schemas."""

import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import select

from rkt_core.store import db, schema


def test_new_database_is_wal_full_sync_at_current_version(tmp_path):
    database = db.Database(str(tmp_path))
    with database.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("SELECT version FROM version").fetchone()[0] == db.SCHEMA_VERSION
    with database.write() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    database.close()


def test_opening_an_existing_store_does_not_import_sqlalchemy(tmp_path):
    db.Database(str(tmp_path)).close()
    code = ("import sys; from rkt_core.store.db import Database; d = Database(sys.argv[1]); "
            "d.execute_write('UPDATE version SET version = version'); "
            "print('sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_write_rolls_back_on_error(tmp_path):
    database = db.Database(str(tmp_path))
    with pytest.raises(RuntimeError):
        with database.write() as conn:
            conn.execute(schema.aciinfo.insert().values(blobkey="k", name="n", labels="{}", importtime=1,
                                                    lastused=1, latest=False, size=1, treestoresize=0))
            raise RuntimeError("crash in the middle")
    with database.read() as conn:
        assert conn.execute("SELECT * FROM aciinfo").fetchall() == []


def test_older_schema_is_backed_up_then_migrated(tmp_path, monkeypatch):
    database = db.Database(str(tmp_path))
    database.close()

    def add_column(conn):
        conn.exec_driver_sql("ALTER TABLE aciinfo ADD COLUMN note TEXT")

    monkeypatch.setattr(db, "SCHEMA_VERSION", db.SCHEMA_VERSION + 1)
    monkeypatch.setitem(schema.MIGRATIONS, db.SCHEMA_VERSION, add_column)
    migrated = db.Database(str(tmp_path))
    with migrated.write() as conn:
        assert conn.execute(select(schema.version_table.c.version)).scalar_one() == db.SCHEMA_VERSION
        columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(aciinfo)")]
    assert "note" in columns
    backups = list((tmp_path / "db-backups").iterdir())
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as old:
        assert old.execute("SELECT version FROM version").fetchone()[0] == db.SCHEMA_VERSION - 1


def test_missing_migration_is_an_error_and_changes_nothing(tmp_path, monkeypatch):
    db.Database(str(tmp_path)).close()
    monkeypatch.setattr(db, "SCHEMA_VERSION", db.SCHEMA_VERSION + 1)
    with pytest.raises(db.StoreDatabaseError, match="no migration"):
        db.Database(str(tmp_path))
    with sqlite3.connect(tmp_path / "db" / db.DB_FILE) as conn:
        assert conn.execute("SELECT version FROM version").fetchone()[0] == db.SCHEMA_VERSION - 1


def test_newer_schema_is_refused(tmp_path):
    db.Database(str(tmp_path)).close()
    with sqlite3.connect(tmp_path / "db" / db.DB_FILE) as conn:
        conn.execute("UPDATE version SET version = 99")
    with pytest.raises(db.StoreDatabaseError, match="schema version 99, newer"):
        db.Database(str(tmp_path))


def test_only_five_backups_are_kept(tmp_path):
    database = db.Database(str(tmp_path))
    for i in range(7):
        database.backup(i)
    assert len(list((tmp_path / "db-backups").iterdir())) == db.BACKUPS_KEPT
