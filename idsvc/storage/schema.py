"""Schema revisions of a live database: where it stands, and a guarded upgrade.

``idsvc db upgrade`` runs on a database that a running service uses. Two upgraders started at
once (two machines' deploy scripts) must not both run the same migration: on PostgreSQL they
take a session advisory lock first; on SQLite an exclusive lock file beside the database does
the same. The second one waits, then finds the schema current and does nothing.

A database whose revision this code does not know was upgraded by a newer idsvc; running
older code's migrations on it (or any downgrade) is refused: roll the code forward instead.

Errors: ``DowngradeRefused`` (from ``idsvc.errors``); storage errors from ``idsvc.storage.db``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, text

from idsvc.errors import DowngradeRefused
from idsvc.storage.db import alembic_config, allow_create, check_connection, current_revision

# pg_advisory_lock key: "idsvc" + "schema" folded into a signed 64-bit integer, fixed forever
# so that every idsvc version contends for the same lock.
ADVISORY_LOCK_KEY = 0x1D5C_5C4E_3A00_0001


@dataclass(frozen=True)
class Revision:
    id: str
    title: str


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str
    pending: tuple[Revision, ...]  # oldest first

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


@dataclass(frozen=True)
class UpgradeResult:
    from_revision: str | None
    to_revision: str
    applied: tuple[Revision, ...]


def _scripts(engine: Engine) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(engine))


def _title(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""


def _between(scripts: ScriptDirectory, current: str | None, target: str) -> tuple[Revision, ...]:
    try:
        walked = list(scripts.iterate_revisions(target, current or "base"))
    except CommandError as exc:
        raise DowngradeRefused(
            f"the database is at revision {current}, which is not an ancestor of {target}: "
            "a downgrade is not supported (restore a backup instead)"
        ) from exc
    return tuple(Revision(s.revision, _title(s.doc)) for s in reversed(walked))


def _get_known(scripts: ScriptDirectory, current: str | None) -> None:
    try:
        known = current is None or scripts.get_revision(current) is not None
    except CommandError:  # alembic raises for an id it cannot resolve
        known = False
    if not known:
        raise DowngradeRefused(
            f"the database is at revision {current}, which this idsvc does not know: it was "
            "upgraded by a newer idsvc. Install that version (or newer); never run older code "
            "against it"
        )


def schema_state(engine: Engine) -> SchemaState:
    check_connection(engine)
    scripts = _scripts(engine)
    head = scripts.get_current_head()
    assert head is not None  # the project always ships at least one revision
    current = current_revision(engine)
    _get_known(scripts, current)
    return SchemaState(current=current, head=head, pending=_between(scripts, current, head))


@contextmanager
def upgrade_lock(engine: Engine) -> Iterator[None]:
    """Hold the one-upgrader lock for the block (blocks while another upgrader holds it)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".upgrade-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def upgrade_schema(engine: Engine, target: str = "head") -> UpgradeResult:
    """Apply the revisions between the database's and ``target``, under the upgrade lock."""
    allow_create(engine)  # like `idsvc init`, an upgrade may start from no database at all
    check_connection(engine)
    scripts = _scripts(engine)
    with upgrade_lock(engine):
        # Read the revision only once the lock is ours: a concurrent upgrader may have moved it.
        current = current_revision(engine)
        _get_known(scripts, current)
        try:
            wanted = scripts.get_revision(target)
        except CommandError as exc:
            raise DowngradeRefused(f"unknown target revision {target!r}") from exc
        if wanted is None:
            raise DowngradeRefused(f"unknown target revision {target!r}")
        if current is not None and current != wanted.revision:
            ahead = {s.revision for s in scripts.iterate_revisions(current, "base")}
            if wanted.revision in ahead:
                raise DowngradeRefused(
                    f"the database is at {current}, newer than {wanted.revision}: downgrades are "
                    "refused (restore a backup taken before the upgrade instead)"
                )
        applied = _between(scripts, current, wanted.revision)
        if applied:
            command.upgrade(alembic_config(engine), wanted.revision)
        return UpgradeResult(from_revision=current, to_revision=wanted.revision, applied=applied)
