"""``idsvc db status`` / ``idsvc db upgrade``: from→to, concurrent upgraders, no downgrade."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy

from idsvc.errors import DowngradeRefused
from idsvc.storage.db import SchemaOutdated, make_engine
from idsvc.storage.schema import ADVISORY_LOCK_KEY, schema_state, upgrade_schema
from tests.support.cli_runner import IDSVC, Cli


def _heads(url: str) -> list[str]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalars()
            )
    finally:
        engine.dispose()


def test_status_then_upgrade_from_an_older_revision(db_url: str, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", db_url)
    engine = make_engine(db_url)
    try:
        head = schema_state_or_empty(engine)
        upgrade_schema(engine, "0002")  # a database left behind by an older release
    finally:
        engine.dispose()

    status = cli("db", "status", "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["current"] == "0002" and doc["head"] == head and not doc["up_to_date"]
    assert doc["pending"][0]["revision"] == "0003"
    assert cli("db", "status", "--check").returncode == 3

    upgraded = cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded 0002 -> {head}" in upgraded.stdout
    assert _heads(db_url) == [head]
    engine = make_engine(db_url)
    try:
        again = upgrade_schema(engine)
        assert (again.from_revision, again.to_revision, again.applied) == (head, head, ())
    finally:
        engine.dispose()


def schema_state_or_empty(engine: sqlalchemy.Engine) -> str:
    from idsvc.storage.db import allow_create

    allow_create(engine)
    state = schema_state(engine)
    assert state.current is None and state.pending[0].id == "0001"
    return state.head


def test_downgrades_and_unknown_revisions_are_refused(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        result = upgrade_schema(engine)
        assert result.from_revision is None and result.applied[0].id == "0001"
        with pytest.raises(DowngradeRefused, match="downgrades are refused"):
            upgrade_schema(engine, "0003")
        with engine.begin() as conn:  # as if a newer idsvc had upgraded this database
            conn.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    cli = Cli(tmp_path / "home", db_url)
    refused = cli("db", "upgrade")
    assert refused.returncode == 23
    assert "9999, which this idsvc does not know" in refused.stderr
    assert _heads(db_url) == ["9999"]  # untouched


def test_two_upgraders_at_once_on_postgresql(postgres_db: str, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", postgres_db)
    engine = sqlalchemy.create_engine(postgres_db)
    holder = engine.connect()
    # Hold the upgrade lock ourselves until both upgraders are queued on it, so that they
    # really start together when it is released.
    holder.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
    holder.commit()
    # The lock is server-wide: other tests (other xdist workers) may queue on it at the same
    # time. Count only this test's upgraders, recognised by their libpq application name.
    app_name = f"upgrader-{secrets.token_hex(4)}"
    procs = [
        subprocess.Popen(
            [IDSVC, "db", "upgrade", "--json"],
            env=cli.env | {"PGAPPNAME": app_name},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 90
        waiting = 0
        while waiting < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            waiting = holder.execute(
                sqlalchemy.text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND NOT l.granted"
                    " AND a.application_name = :app"
                ),
                {"app": app_name},
            ).scalar_one()
            holder.commit()
        assert waiting == 2, "the upgraders never queued on the advisory lock"
    finally:
        holder.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
        holder.close()
        engine.dispose()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    applied = sorted(len(json.loads(out)["applied"]) for out, _ in outs)
    # One upgrader ran every migration; the other found nothing left to do.
    assert applied[0] == 0 and applied[1] >= 1
    assert len(_heads(postgres_db)) == 1


def test_the_written_out_head_is_alembics_head() -> None:
    # require_current_schema compares the database with SCHEMA_HEAD so that no command reads
    # the migration scripts (or imports Alembic) to know it: a new migration must move it.
    from alembic.script import ScriptDirectory

    from idsvc.storage.db import SCHEMA_HEAD, alembic_config

    engine = make_engine("sqlite://")
    assert ScriptDirectory.from_config(alembic_config(engine)).get_heads() == [SCHEMA_HEAD]


def test_the_revision_is_read_as_alembic_reads_it(db_url: str) -> None:
    from alembic.runtime.migration import MigrationContext

    from idsvc.storage.db import SCHEMA_HEAD, allow_create, current_revision
    from idsvc.storage.db import require_current_schema as require

    def alembics(engine: sqlalchemy.Engine) -> str | None:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    engine = make_engine(db_url)
    try:
        allow_create(engine)
        assert current_revision(engine) is None and alembics(engine) is None  # no schema yet
        with pytest.raises(SchemaOutdated, match="schema is missing: run `idsvc init`"):
            require(engine)
        upgrade_schema(engine, "0014")
        assert current_revision(engine) == "0014" == alembics(engine)
        with pytest.raises(SchemaOutdated, match=f"at 0014, not {SCHEMA_HEAD}: run `idsvc init`"):
            require(engine)
        upgrade_schema(engine)
        assert current_revision(engine) == SCHEMA_HEAD == alembics(engine)
        require(engine)  # current: no error
        with engine.begin() as conn:  # a newer idsvc's schema is refused as well
            conn.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = '9999'"))
        assert current_revision(engine) == "9999" == alembics(engine)
        with pytest.raises(SchemaOutdated, match=f"at 9999, not {SCHEMA_HEAD}"):
            require(engine)
    finally:
        engine.dispose()
