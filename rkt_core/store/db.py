"""Opening the store's database (SQLite in ``cas/db/``) and the lookups every command makes.

SQLite runs in WAL mode (set once, when the database is created) with ``synchronous=FULL`` (a committed row survives power loss) and a busy
timeout. Reads and the one-row ``lastused`` update go through the ``sqlite3`` module; creating,
migrating and the write transactions of imports and removals go through SQLAlchemy
(:mod:`rkt_core.store.schema`), imported only then: it costs ~150 ms, more than ``rkt run``'s
whole budget.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from ..errors import RktError
from ..sys.lock import FileLock

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

DB_FILE = "store.sqlite3"
BACKUPS_KEPT = 5
SCHEMA_VERSION = 1


class StoreDatabaseError(RktError):
    """The store's database cannot be opened or migrated."""


def configure_connection(conn: sqlite3.Connection) -> None:
    """Set rkt's pragmas on a new connection; transactions are begun explicitly."""
    conn.isolation_level = None
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")


class Database:
    """The store database at ``<cas>/db/store.sqlite3``, created or migrated on open."""

    def __init__(self, cas_dir: str):
        self.dir = os.path.join(cas_dir, "db")
        self.backups_dir = os.path.join(cas_dir, "db-backups")
        os.makedirs(self.dir, mode=0o2770, exist_ok=True)
        self.path = os.path.join(self.dir, DB_FILE)
        self._engine = None
        version = self._version()
        if version is None or version < SCHEMA_VERSION:
            # One process creates or migrates; the others wait here, then find it done.
            with FileLock(os.path.join(self.dir, "lock"), create=True).exclusive():
                if (self._version() or 0) < SCHEMA_VERSION:
                    from . import schema

                    conn = self._connect()  # WAL is a property of the file: it stays once set
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.close()
                    schema.create_or_migrate(self.path, self.backup)
        elif version > SCHEMA_VERSION:
            raise StoreDatabaseError(
                f"the store database has schema version {version}, newer than this rkt "
                f"supports ({SCHEMA_VERSION})", hint="use a newer rkt, or a different --dir")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60)
        configure_connection(conn)
        conn.row_factory = sqlite3.Row
        return conn

    def _version(self) -> int | None:
        if not os.path.exists(self.path):
            return None
        conn = self._connect()
        try:
            row = conn.execute("SELECT version FROM version").fetchone()
        except sqlite3.OperationalError:  # no version table yet: a new, empty database
            return None
        finally:
            conn.close()
        return row[0] if row else None

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction with plain ``sqlite3`` (rows are ``sqlite3.Row``)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            yield conn
            conn.execute("COMMIT")
        finally:
            conn.close()

    def execute_write(self, sql: str, params: tuple = ()) -> int:
        """One write statement in its own IMMEDIATE transaction; returns the rows changed."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            changed = conn.execute(sql, params).rowcount
            conn.execute("COMMIT")
            return changed
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator["Connection"]:
        """A SQLAlchemy write transaction, begun IMMEDIATE; commits on success, rolls back on error."""
        if self._engine is None:
            from . import schema

            self._engine = schema.engine(self.path)
        with self._engine.begin() as conn:
            yield conn

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
        for old in sorted(os.listdir(self.backups_dir))[:-BACKUPS_KEPT]:
            os.unlink(os.path.join(self.backups_dir, old))
        return target

    def close(self) -> None:
        """Release the SQLAlchemy engine, if one was made."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
