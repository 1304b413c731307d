"""Migration 0012 on SQLite and PostgreSQL: existing clients keep the people their logged
payroll checks named, the feed's free-text reasons become codes, subscriptions gain the
rotation columns; it goes down and up again, and builds what the tables describe."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from idsvc.storage.db import alembic_config, current_revision, make_engine, upgrade
from idsvc.storage.schema import upgrade_schema
from idsvc.storage.tables import Base

OURS = ("client_people", "webhook_subscriptions")
AT = datetime(2026, 11, 20, 9, 0)


def test_0011_backfills_scope_and_codes_then_down_and_up(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        upgrade_schema(engine, "0010")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO holder_checks (checked_at, kind, employee_id, client_id, result,"
                    " reasons) VALUES (:at, 'payroll', 'P-1', 'c1', 'active', ''),"
                    " (:later, 'payroll', 'P-1', 'c1', 'active', ''),"
                    " (:at, 'payroll', NULL, 'c1', 'unknown', 'UNKNOWN_EMPLOYEE'),"
                    " (:at, 'verification', 'P-2', 'c1', 'valid', ''),"
                    " (:at, 'payroll', 'P-2', 'c2', 'active', '')"
                ),
                {"at": AT, "later": AT.replace(day=21)},
            )
            for position, kind, reason in (
                (1, "employee.retired", "hr: retired"),
                (2, "credential.revoked", "hr: retired"),
                (3, "credential.suspended", "Mr X phoned from 020 5555"),
                (4, "credential.revoked", "lost: taxi"),
                (5, "credential.superseded", None),
            ):
                conn.execute(
                    text(
                        "INSERT INTO change_events (position, event_id, type, employee_id,"
                        " reason, recorded_at) VALUES (:p, :id, :t, 'P-1', :r, :at)"
                    ),
                    {"p": position, "id": f"e{position}", "t": kind, "r": reason, "at": AT},
                )
        upgrade(engine)
        with engine.connect() as conn:
            people = conn.execute(
                text("SELECT client_id, employee_id, first_seen_at FROM client_people")
            ).all()
            reasons = conn.execute(
                text("SELECT reason FROM change_events ORDER BY position")
            ).scalars()
            assert list(reasons) == [
                "HR_STATUS_CHANGE",
                "HR_STATUS_CHANGE",
                "OPERATOR_DECISION",
                "CARD_LOST",
                "CARD_REPLACED",
            ]
            diff = [
                d
                for d in compare_metadata(MigrationContext.configure(conn), Base.metadata)
                if any(name in repr(d) for name in OURS)
            ]
        assert sorted((c, e) for c, e, _ in people) == [("c1", "P-1"), ("c2", "P-2")]
        assert {str(at)[:10] for c, _, at in people if c == "c1"} == {"2026-11-20"}
        assert diff == []
        command.downgrade(alembic_config(engine), "0010")
        assert current_revision(engine) == "0010"
        assert "client_people" not in sqlalchemy.inspect(engine).get_table_names()
        upgrade(engine)
        columns = {c["name"] for c in sqlalchemy.inspect(engine).get_columns(OURS[1])}
        assert {"signing_box", "previous_box", "previous_until"} <= columns
    finally:
        engine.dispose()
