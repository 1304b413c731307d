"""Migration 0008 (operators, desks, sessions, nonces, approvals) goes down and up again on
both databases, and the schema it builds is the one the tables describe."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from idsvc.storage.db import alembic_config, current_revision, make_engine, upgrade
from idsvc.storage.desk_tables import (
    ApprovalRow,
    DeskNonceRow,
    DeskRow,
    OperatorRow,
    OperatorSessionRow,
)
from idsvc.storage.tables import Base

OURS = {
    t.__tablename__ for t in (OperatorRow, DeskRow, OperatorSessionRow, DeskNonceRow, ApprovalRow)
}


def test_0008_down_and_up(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        tables = set(sqlalchemy.inspect(engine).get_table_names())
        assert tables >= OURS
        with engine.connect() as conn:
            diff = [
                d
                for d in compare_metadata(MigrationContext.configure(conn), Base.metadata)
                if any(name in repr(d) for name in OURS)
            ]
        assert diff == []
        command.downgrade(alembic_config(engine), "0007")
        assert current_revision(engine) == "0007"
        assert not OURS & set(sqlalchemy.inspect(engine).get_table_names())
        upgrade(engine)
        assert set(sqlalchemy.inspect(engine).get_table_names()) >= OURS
    finally:
        engine.dispose()
