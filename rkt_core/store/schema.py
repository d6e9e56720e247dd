"""The store's schema, its migrations and its SQLAlchemy engine.

SQLAlchemy defines the tables, creates and migrates them, and runs the multi-statement write
transactions of imports and removals. It is imported only when one of those happens:
:mod:`rkt_core.store.db` opens the same file with ``sqlite3`` for the lookups every command makes.
Opening an older database backs it up to ``cas/db-backups/`` (five kept) and runs the migrations in
order inside one transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

from sqlalchemy import (Boolean, Column, Float, Integer, MetaData, String, Table, Text,
                        create_engine, event, select)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from ..errors import StoreDatabaseError

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

# version N -> function migrating a database at version N-1 to N, inside one transaction.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def _begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def engine(path: str, configure: Callable[[sqlite3.Connection], None]) -> Engine:
    """An engine on the store database whose connections are set up by ``configure`` and whose
    transactions begin IMMEDIATE (writers never deadlock on a lock upgrade)."""
    result = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    event.listen(result, "connect", lambda dbapi_conn, _record: configure(dbapi_conn))
    event.listen(result, "begin", _begin)
    return result


def create_or_migrate(path: str, version: int, configure: Callable[[sqlite3.Connection], None],
                      backup: Callable[[int], str]) -> None:
    """Create the tables of a new database at schema ``version``, or migrate an older one to it
    after ``backup(its version)``."""
    eng = engine(path, configure)
    try:
        with eng.begin() as conn:
            names = set(conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type='table'").scalars())
            if "version" not in names:
                metadata.create_all(conn)
                conn.execute(version_table.insert().values(version=version))
                return
            current = conn.execute(select(version_table.c.version)).scalar_one()
        if current >= version:
            return
        backup(current)
        with eng.begin() as conn:
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = conn.execute(select(version_table.c.version)).scalar_one()
            for target in range(current + 1, version + 1):
                if target not in MIGRATIONS:
                    raise StoreDatabaseError(f"no migration of the store database to version {target}")
                MIGRATIONS[target](conn)
                conn.execute(version_table.update().values(version=target))
    finally:
        eng.dispose()
