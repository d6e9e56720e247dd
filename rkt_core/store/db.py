"""The image store's database: SQLite through SQLAlchemy Core, in ``cas/db/``.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed row survives power loss) and a busy
timeout, and write transactions start with ``BEGIN IMMEDIATE`` so that two writers never deadlock
on a lock upgrade. The schema is versioned: opening an older database backs it up to
``cas/db-backups/`` (five kept) and runs the migrations in order; a newer one is refused.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from sqlalchemy import (Boolean, Column, Float, Integer, MetaData, String, Table, Text,
                        create_engine, event, select)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from ..errors import RktError

DB_FILE = "store.sqlite3"
BACKUPS_KEPT = 5

metadata = MetaData()

version_table = Table("version", metadata, Column("version", Integer, nullable=False))

# One row per image in the store (rkt's "aciinfo").
aciinfo = Table(
    "aciinfo", metadata,
    Column("blobkey", String, primary_key=True),
    Column("name", String, nullable=False, index=True),
    Column("labels", Text, nullable=False, default="{}"),  # JSON object of the manifest labels
    Column("importtime", Float, nullable=False),
    Column("lastused", Float, nullable=False),
    Column("latest", Boolean, nullable=False, default=False),
    Column("size", Integer, nullable=False),
    Column("treestoresize", Integer, nullable=False, default=0),
)

# Where an image came from, for caching and "new" pull policy lookups (rkt's "remote").
remote = Table(
    "remote", metadata,
    Column("aciurl", String, primary_key=True),
    Column("sigurl", String, nullable=False, default=""),
    Column("etag", String, nullable=False, default=""),
    Column("blobkey", String, nullable=False, index=True),
    Column("cachemaxage", Integer, nullable=False, default=0),
    Column("downloadtime", Float, nullable=False),
)

SCHEMA_VERSION = 1

# version N -> function migrating a database at version N-1 to N, inside one transaction.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


class StoreDatabaseError(RktError):
    """The store's database cannot be opened or migrated."""


def _configure(dbapi_conn: sqlite3.Connection, _record) -> None:
    dbapi_conn.isolation_level = None  # transactions are begun explicitly below
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """The store database at ``<cas>/db/store.sqlite3``, created or migrated on open."""

    def __init__(self, cas_dir: str):
        self.dir = os.path.join(cas_dir, "db")
        self.backups_dir = os.path.join(cas_dir, "db-backups")
        os.makedirs(self.dir, mode=0o2770, exist_ok=True)
        self.path = os.path.join(self.dir, DB_FILE)
        self.engine: Engine = create_engine(f"sqlite:///{self.path}", poolclass=NullPool)
        event.listen(self.engine, "connect", _configure)
        event.listen(self.engine, "begin", _begin)
        self._writer = self.engine.execution_options(immediate=True)
        self._open()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (readers never block writers in WAL mode)."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, begun IMMEDIATE; commits on success, rolls back on error."""
        with self._writer.begin() as conn:
            yield conn

    def _open(self) -> None:
        with self.write() as conn:
            names = set(conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type='table'").scalars())
            if "version" not in names:
                metadata.create_all(conn)
                conn.execute(version_table.insert().values(version=SCHEMA_VERSION))
                return
            current = conn.execute(select(version_table.c.version)).scalar_one()
        if current > SCHEMA_VERSION:
            raise StoreDatabaseError(
                f"the store database has schema version {current}, newer than this rkt "
                f"supports ({SCHEMA_VERSION})", hint="use a newer rkt, or a different --dir")
        if current < SCHEMA_VERSION:
            self._migrate(current)

    def _migrate(self, current: int) -> None:
        self.backup(current)
        with self.write() as conn:
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = conn.execute(select(version_table.c.version)).scalar_one()
            for target in range(current + 1, SCHEMA_VERSION + 1):
                if target not in MIGRATIONS:
                    raise StoreDatabaseError(f"no migration of the store database to version {target}")
                MIGRATIONS[target](conn)
                conn.execute(version_table.update().values(version=target))

    def backup(self, version: int) -> str:
        """Copy the database (consistently, with SQLite's backup API) into ``db-backups/``."""
        os.makedirs(self.backups_dir, mode=0o700, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = os.path.join(self.backups_dir, f"{stamp}-v{version}-{os.getpid()}.sqlite3")
        src = sqlite3.connect(self.path)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        backups = sorted(os.listdir(self.backups_dir))
        for old in backups[:-BACKUPS_KEPT]:
            os.unlink(os.path.join(self.backups_dir, old))
        return target

    def close(self) -> None:
        """Release the database's connections."""
        self.engine.dispose()
