"""Migration 0014 on SQLite and PostgreSQL: the register gains contract ends, national ids and
the identity key (filled for the people already stored), a bank's accounts name the bank;
it builds what the tables describe, goes down and up again, and loses nobody on the way."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from idsvc.storage.db import alembic_config, current_revision, make_engine, upgrade
from idsvc.storage.schema import upgrade_schema
from idsvc.storage.tables import Base

AT = datetime(2026, 11, 20, 9, 0)
PEOPLE = [
    ("LA-MOHA-000101", "SOMPHONE  Keomany"),
    ("LA-MOHA-000102", "Ngô Thị-Lan"),
    ("KH-MCS-010001", "Sok Dara"),
]


def test_0014_fills_identity_keys_and_goes_down_and_up(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade_schema(engine, "0013")
        with engine.begin() as conn:
            for employee_id, name in PEOPLE:
                conn.execute(
                    text(
                        "INSERT INTO civil_servants (employee_id, name_local, name_latin, sex,"
                        " date_of_birth, ministry, unit, position, grade, category, status,"
                        " status_date, hire_date, content_hash, created_at, updated_at) VALUES"
                        " (:id, 'x', :name, 'F', :born, 'M', '', '', '', 'civil_servant',"
                        " 'active', :born, NULL, 'h', :at, :at)"
                    ),
                    {"id": employee_id, "name": name, "born": date(1980, 1, 1), "at": AT},
                )
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT employee_id, name_key FROM civil_servants"))
            keys = {employee_id: key for employee_id, key in rows}
            diff = [
                d
                for d in compare_metadata(MigrationContext.configure(conn), Base.metadata)
                if any(
                    n in repr(d) for n in ("civil_servants", "payroll_accounts", "status_history")
                )
            ]
        assert keys == {
            "LA-MOHA-000101": "somphone keomany",
            "LA-MOHA-000102": "ngô thị lan",
            "KH-MCS-010001": "sok dara",
        }
        assert diff == []
        indexes = {i["name"] for i in sqlalchemy.inspect(engine).get_indexes("civil_servants")}
        assert {"ix_civil_servants_national_id", "ix_civil_servants_identity"} <= indexes

        command.downgrade(alembic_config(engine), "0013")
        assert current_revision(engine) == "0013"
        inspector = sqlalchemy.inspect(engine)
        assert "client_id" not in {c["name"] for c in inspector.get_columns("payroll_accounts")}
        columns = {c["name"] for c in inspector.get_columns("civil_servants")}
        assert not columns & {"contract_end", "national_id", "name_key"}
        upgrade(engine)
        with engine.connect() as conn:
            count = conn.execute(text("SELECT COUNT(*) FROM civil_servants")).scalar_one()
        assert count == len(PEOPLE)
    finally:
        engine.dispose()
