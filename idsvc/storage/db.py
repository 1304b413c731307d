"""Engine, sessions and migrations.

Errors: ``StorageError`` → ``DatabaseUnavailable`` (cannot connect, or the file is not a
database), ``BadDatabaseUrl`` (the URL names no usable driver), ``SchemaOutdated`` (the
database needs ``idsvc init``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class StorageError(Exception):
    """Base of storage errors."""


class DatabaseUnavailable(StorageError):
    pass


class SchemaOutdated(StorageError):
    pass


class BadDatabaseUrl(StorageError):
    pass


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1].split("?", 1)[0]
        if db_path and db_path != ":memory:":
            try:
                Path(db_path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"cannot create the database folder {Path(db_path).parent}: {exc.strerror}"
                ) from exc
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
        raise DatabaseUnavailable(
            f"cannot reach the database at {_redact(str(engine.url))}"
        ) from exc
    except DatabaseError as exc:
        raise DatabaseUnavailable(
            f"{_redact(str(engine.url))} is not a usable database ({exc.orig})"
        ) from exc


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision."""
    check_connection(engine)
    command.upgrade(alembic_config(engine), "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_current_schema(engine: Engine) -> None:
    check_connection(engine)
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
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
        except OperationalError as exc:
            raise DatabaseUnavailable(
                f"database error at {_redact(str(self.engine.url))}: {exc.orig.__class__.__name__}"
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()
