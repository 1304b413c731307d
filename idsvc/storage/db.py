"""Engine, sessions and migrations.

Errors: ``StorageError`` → ``DatabaseUnavailable`` (cannot connect, or the file is not a
database), ``BadDatabaseUrl`` (the URL names no usable driver), ``SchemaOutdated`` (the
database needs ``idsvc init``; ``DatabaseMissing``: no SQLite file there yet, and only
``idsvc init`` creates one), ``StorageFull`` (the disk or the database's size limit is full;
the transaction was rolled back), ``StorageReadOnly`` (the file, its folder or the server
refuses writes; the transaction was rolled back). The types live in ``idsvc.storage.errors``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from idsvc.storage.errors import BadDatabaseUrl as BadDatabaseUrl
from idsvc.storage.errors import ConcurrentUpdate as ConcurrentUpdate
from idsvc.storage.errors import DatabaseMissing as DatabaseMissing
from idsvc.storage.errors import DatabaseUnavailable as DatabaseUnavailable
from idsvc.storage.errors import SchemaOutdated as SchemaOutdated
from idsvc.storage.errors import StorageError as StorageError
from idsvc.storage.errors import StorageFull as StorageFull
from idsvc.storage.errors import StorageReadOnly as StorageReadOnly

if TYPE_CHECKING:  # Alembic is imported where a migration runs: a command that only reads
    # the schema revision (every command, through require_current_schema) does not load it
    # (~0.2 s with Mako and Pygments: tests/idsvc/cli/test_imports.py).
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# The newest revision in idsvc/migrations/versions, the one this code needs. Written out so
# that the schema check reads no migration scripts; a new migration moves it
# (tests/idsvc/storage/test_schema.py checks it against Alembic's own head).
SCHEMA_HEAD = "0015"


# PostgreSQL's "deadlock detected", "could not serialize access" and "lock not available":
# the transaction was rolled back whole, so a retry is safe.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
# Engines allowed to create their SQLite file (``upgrade``, i.e. ``idsvc init``): any other
# command on a mistyped path must fail, not leave an empty database and folders behind.
_MAY_CREATE: weakref.WeakSet[Engine] = weakref.WeakSet()


def allow_create(engine: Engine) -> None:
    """Let this engine create its SQLite file (``idsvc db upgrade``, ``idsvc restore``)."""
    _MAY_CREATE.add(engine)


def _is_read_only(exc: DatabaseError) -> bool:
    # SQLite: SQLITE_READONLY (8) and its extended codes (8 + n*256); PostgreSQL:
    # read_only_sql_transaction (25006), e.g. a standby or default_transaction_read_only.
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == 8
    return bool(getattr(exc.orig, "sqlstate", "") == "25006")


def _storage_error(exc: DatabaseError, url: str) -> StorageError | None:
    """The storage error that says what went wrong, or None if it is none of these."""
    if isinstance(exc, OperationalError) and _is_storage_full(exc):
        return StorageFull(
            f"the database at {url} is full (no space left): nothing was written; free disk "
            "space and run the command again"
        )
    if _is_read_only(exc):
        return StorageReadOnly(
            f"the database at {url} is read-only (file or folder permissions, a read-only "
            "disk or a standby server): nothing was written"
        )
    return None


def _is_storage_full(exc: OperationalError) -> bool:
    # SQLite: SQLITE_FULL (13), also raised at max_page_count; PostgreSQL: SQLSTATE 53100.
    orig = exc.orig
    return getattr(orig, "sqlite_errorcode", None) == 13 or getattr(orig, "sqlstate", "") == "53100"


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {"future": True}
    db_path = ""
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1].split("?", 1)[0]
        if db_path.startswith("file:"):
            db_path = db_path.removeprefix("file:")
        if db_path == ":memory:":
            db_path = ""
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        if url.startswith("postgresql"):
            kwargs["connect_args"] = {"connect_timeout": 5}
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise BadDatabaseUrl(
            "IDSVC_DATABASE_URL is not a usable database URL (expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB)"
        ) from exc
    if db_path:
        database = Path(db_path)

        @event.listens_for(engine, "do_connect")
        def _existing_file_only(*_args: Any) -> None:
            if database.exists():
                return
            if engine not in _MAY_CREATE:
                raise DatabaseMissing(f"no database at {database}: run `idsvc init` first")
            try:
                database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"cannot create the database folder {database.parent}: {exc.strerror}"
                ) from exc

    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                # SQLite opens any file lazily; reading the schema proves it is a database.
                conn.exec_driver_sql("SELECT count(*) FROM sqlite_master")
    except OperationalError as exc:
        said = _storage_error(exc, _redact(str(engine.url)))
        if said is not None:
            raise said from exc
        raise DatabaseUnavailable(
            f"cannot reach the database at {_redact(str(engine.url))}"
        ) from exc
    except DatabaseError as exc:
        raise DatabaseUnavailable(
            f"{_redact(str(engine.url))} is not a usable database ({exc.orig})"
        ) from exc


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision (creates a SQLite file)."""
    from alembic import command

    _MAY_CREATE.add(engine)
    try:
        check_connection(engine)
        command.upgrade(alembic_config(engine), "head")
    except DatabaseError as exc:
        # Each migration runs in a transaction: a failed one leaves the previous schema.
        said = _storage_error(exc, _redact(str(engine.url)))
        if said is not None:
            raise said from exc
        raise
    finally:
        _MAY_CREATE.discard(engine)


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (None: no schema yet), read as Alembic reads it: its
    version table, looked for as Alembic looks for it (``dialect.has_table``)."""
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "alembic_version"):
            return None
        found = list(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    if len(found) > 1:  # a branched history: this project's migrations are one line
        raise SchemaOutdated(
            f"the database has several schema revisions ({', '.join(sorted(found))}): "
            "run `idsvc db status`"
        )
    return found[0] if found else None


def require_current_schema(engine: Engine) -> None:
    try:
        check_connection(engine)
    except DatabaseMissing as exc:
        raise SchemaOutdated(str(exc)) from exc
    head = SCHEMA_HEAD
    current = current_revision(engine)
    if current != head:
        raise SchemaOutdated(
            "the database schema is "
            + ("missing" if current is None else f"at {current}, not {head}")
            + ": run `idsvc init`"
        )


class Database:
    """One engine and its session factory; made once per process by the CLI or the app."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block or rolls back on any error."""
        try:
            with self._sessions() as session, session.begin():
                yield session
        except DatabaseError as exc:
            said = _storage_error(exc, _redact(str(self.engine.url)))
            if said is not None:
                raise said from exc
            if getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
                raise ConcurrentUpdate(
                    "another change to the same people was being stored at the same moment; "
                    "nothing was stored: retry"
                ) from exc
            if not isinstance(exc, OperationalError):
                raise
            raise DatabaseUnavailable(
                f"database error at {_redact(str(self.engine.url))}: {exc.orig.__class__.__name__}"
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()
