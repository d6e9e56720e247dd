"""Opening the store's database (SQLite in ``cas/db/``) and the lookups every command makes.

SQLite keeps a rollback journal (``journal_mode=DELETE``) with ``synchronous=FULL`` (a committed
row survives power loss) and a busy timeout. Not WAL: every rkt command opens and closes the
database, and WAL's checkpoint at the last close made a one-row commit slower; and a reader that
may not write ``cas/db`` (a member of group rkt) cannot open a WAL database once its last writer
has closed it. Such readers open the database read-only; a WAL database is converted by its owner.

A store is never taken for empty when it is not: a database that is missing or empty while the
store holds images, or that is not a database, stops every command with a message naming the
file (``rkt image rebuild-db`` re-creates it from the images); only a store with neither images
nor database is created empty.

Every command goes through the ``sqlite3`` module: reads, writes, and creating a new database
with the tables :mod:`rkt_core.store.schema` defines (``tests/unit/store/test_db.py`` holds the
two to the same tables). SQLAlchemy is imported only to migrate an older database or to rebuild
one: its import costs more than a whole ``rkt fetch`` of a small image.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from typing import Iterator

from ..errors import StoreDatabaseError
from ..sys.lock import FileLock

DB_FILE = "store.sqlite3"
DB_FILE_MODE = 0o640
BACKUPS_KEPT = 5
SCHEMA_VERSION = 1
REBUILD_COMMAND = "rkt image rebuild-db"
_MAGIC = b"SQLite format 3\x00"
_WAL_FORMAT = 2  # header bytes 18 and 19: file format write/read version (1 legacy, 2 WAL)

# The tables of schema version SCHEMA_VERSION, word for word as SQLAlchemy's ``create_all`` makes
# them from rkt_core.store.schema (SQLite keeps this text in the file).
_CREATE_TABLES = (
    "CREATE TABLE version (\n\tversion INTEGER NOT NULL\n)",
    "CREATE TABLE aciinfo (\n\tblobkey VARCHAR NOT NULL, \n\tname VARCHAR NOT NULL, \n"
    "\tlabels TEXT NOT NULL, \n\timporttime FLOAT NOT NULL, \n\tlastused FLOAT NOT NULL, \n"
    "\tlatest BOOLEAN NOT NULL, \n\tsize INTEGER NOT NULL, \n\ttreestoresize INTEGER NOT NULL, \n"
    "\tPRIMARY KEY (blobkey)\n)",
    "CREATE INDEX ix_aciinfo_name ON aciinfo (name)",
    "CREATE TABLE remote (\n\taciurl VARCHAR NOT NULL, \n\tsigurl VARCHAR NOT NULL, \n"
    "\tetag VARCHAR NOT NULL, \n\tblobkey VARCHAR NOT NULL, \n\tcachemaxage INTEGER NOT NULL, \n"
    "\tdownloadtime FLOAT NOT NULL, \n\tPRIMARY KEY (aciurl)\n)",
    "CREATE INDEX ix_remote_blobkey ON remote (blobkey)",
)


def configure_connection(conn: sqlite3.Connection) -> None:
    """Set rkt's pragmas on a new connection; transactions are begun explicitly."""
    conn.isolation_level = None
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")


def holds_images(cas_dir: str) -> bool:
    """Whether ``cas/blob`` holds any file (a store with images, whatever its database says)."""
    try:
        subdirs = os.scandir(os.path.join(cas_dir, "blob", "sha512"))
    except FileNotFoundError:
        return False
    with subdirs:
        for sub in subdirs:
            if sub.is_dir(follow_symlinks=False):
                with os.scandir(sub.path) as entries:
                    if next(entries, None) is not None:
                        return True
    return False


class Database:
    """The store database at ``<cas>/db/store.sqlite3``, checked, and created or migrated, on open.

    ``read_only`` opens it without ever writing (for users who may only read the store).
    """

    def __init__(self, cas_dir: str, read_only: bool = False):
        self.cas_dir = cas_dir
        self.dir = os.path.join(cas_dir, "db")
        self.backups_dir = os.path.join(cas_dir, "db-backups")
        self.path = os.path.join(self.dir, DB_FILE)
        self.read_only = read_only
        if not read_only:
            os.makedirs(self.dir, mode=0o2750, exist_ok=True)
        if self._is_wal():
            self._leave_wal()
        version = self._version()
        if version is None or version < SCHEMA_VERSION:
            if read_only:
                raise StoreDatabaseError(
                    f"the store database {self.path} is missing or outdated, and this user may "
                    "only read the store", hint="run any rkt command as root to create or migrate it")
            # One process creates or migrates; the others wait here, then find it done.
            with FileLock(os.path.join(self.dir, "lock"), create=True).exclusive():
                version = self._version()
                if version is None:
                    self._create()
                elif version < SCHEMA_VERSION:
                    from . import schema

                    schema.create_or_migrate(self.path, SCHEMA_VERSION, configure_connection,
                                             self.backup)
        elif version > SCHEMA_VERSION:
            raise StoreDatabaseError(
                f"the store database has schema version {version}, newer than this rkt "
                f"supports ({SCHEMA_VERSION})", hint="use a newer rkt, or a different --dir")

    def _create(self) -> None:
        """Create the tables of a new store (the file too, with its mode from the start)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        os.close(os.open(self.path, flags, DB_FILE_MODE))
        with self.write() as conn:
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "version" not in tables:
                for statement in _CREATE_TABLES:
                    conn.execute(statement)
                conn.execute("INSERT INTO version (version) VALUES (?)", (SCHEMA_VERSION,))

    def damaged(self, reason: str) -> StoreDatabaseError:
        """The error for a database that cannot be read as the store's."""
        return StoreDatabaseError(
            f"the store database {self.path} is damaged ({reason})",
            hint=f'nothing was changed; rebuild it from the stored images with "{REBUILD_COMMAND}" '
                 "(as root)")

    def _header(self) -> bytes | None:
        try:
            with open(self.path, "rb") as f:
                return f.read(100)
        except FileNotFoundError:
            return None

    def _is_wal(self) -> bool:
        header = self._header()
        return bool(header) and header.startswith(_MAGIC) and len(header) > 19 \
            and header[18] == _WAL_FORMAT

    def _leave_wal(self) -> None:
        """Switch a WAL database (made by an older rkt) to a rollback journal, if no one else has
        it open; readers who may not write cannot open it in WAL mode."""
        if self.read_only:
            raise StoreDatabaseError(
                f"the store database {self.path} is in WAL mode, which users who may only read "
                "the store cannot open", hint="run any rkt command as root once to convert it")
        with FileLock(os.path.join(self.dir, "lock"), create=True).exclusive():
            conn = self._connect()
            try:
                conn.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError:
                pass  # still open elsewhere in WAL mode: converted by a later command
            finally:
                conn.close()

    def _version(self) -> int | None:
        """The schema version; None for a new store (no database, or one without tables).

        A database missing or empty while the store holds images, or not a database, is damaged.
        """
        header = self._header()
        if not header:
            if holds_images(self.cas_dir):
                state = "missing" if header is None else "empty"
                raise self.damaged(f"it is {state} while the store holds images")
            return None
        if not header.startswith(_MAGIC):
            raise self.damaged("it is not an SQLite database")
        conn = self._connect()
        try:
            row = conn.execute("SELECT version FROM version").fetchone()
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise self._explain(e)
            if holds_images(self.cas_dir):
                raise self.damaged("it has no tables while the store holds images") from None
            return None
        except sqlite3.DatabaseError as e:
            raise self._explain(e)
        finally:
            conn.close()
        if row is None:
            raise self.damaged("its schema version is missing")
        return row[0]

    def _explain(self, error: sqlite3.Error) -> Exception:
        """A clear error for what SQLite says about the file itself; other errors as they are."""
        code = getattr(error, "sqlite_errorcode", None)
        if code is None:
            return error
        if code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            return self.damaged(str(error))
        if code == sqlite3.SQLITE_READONLY_ROLLBACK:
            return StoreDatabaseError(
                f"the store database {self.path} must first be recovered from an interrupted "
                "write, which this user may not do", hint="run any rkt command as root to recover it")
        return error

    def _refuse_read_only(self) -> None:
        if self.read_only:
            raise StoreDatabaseError(f"the store database {self.path} is read-only for this user",
                                     hint="run the command as root")

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            uri = self.path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
            conn = sqlite3.connect(f"file:{uri}?mode=ro", uri=True, timeout=60)
        else:
            conn = sqlite3.connect(self.path, timeout=60)
        try:
            configure_connection(conn)
        except sqlite3.Error as e:
            conn.close()
            raise self._explain(e)
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction with plain ``sqlite3`` (rows are ``sqlite3.Row``)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise self._explain(e)
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction with plain ``sqlite3``, begun IMMEDIATE (writers never deadlock on a
        lock upgrade); commits on success, rolls back on error."""
        self._refuse_read_only()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise self._explain(e)
        finally:
            conn.close()

    def execute_write(self, sql: str, params: tuple = ()) -> int:
        """One write statement in its own transaction; returns the rows changed."""
        with self.write() as conn:
            return conn.execute(sql, params).rowcount

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
        migrations = sorted(name for name in os.listdir(self.backups_dir) if "-v" in name)
        for old in migrations[:-BACKUPS_KEPT]:
            os.unlink(os.path.join(self.backups_dir, old))
        return target
