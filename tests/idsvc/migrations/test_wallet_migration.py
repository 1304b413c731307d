"""Migration 0015 (the phone): existing credentials become cards, one live credential per
person and kind, the new tables match the models, and the way down keeps every card."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from idsvc.storage.db import alembic_config, current_revision, make_engine, upgrade
from idsvc.storage.schema import upgrade_schema
from idsvc.storage.tables import Base

AT = datetime(2026, 12, 1, 9, 0)
NEW_TABLES = (
    "wallet_offers",
    "wallet_nonces",
    "presentation_requests",
    "holder_sessions",
    "correction_requests",
)


def _credential(conn: sqlalchemy.Connection, cid: str, idx: int, state: str, kind: str) -> None:
    conn.execute(
        text(
            "INSERT INTO credentials (id, issuer_id, employee_id, kid, state, status_list_id,"
            " status_idx, card_serial, token, issued_at, expires_at, state_changed_at,"
            " issued_by" + (", kind" if kind else "") + ") VALUES (:id, 1, 'KH-1', 'k', :state,"
            " 1, :idx, 'S', 't', :at, :at, :at, 'test'" + (", :kind" if kind else "") + ")"
        ),
        {"id": cid, "idx": idx, "state": state, "at": AT, "kind": kind},
    )


def test_0015_keeps_cards_and_allows_one_live_credential_per_kind(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade_schema(engine, "0014")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO issuers (id, iss, slug, name, created_at)"
                    " VALUES (1, 'https://id.example/i', 'default', 'I', :at)"
                ),
                {"at": AT},
            )
            conn.execute(
                text(
                    "INSERT INTO status_lists (id, issuer_id, uri, size, created_at, version)"
                    " VALUES (1, 1, 'https://id.example/s/1', 1024, :at, 0)"
                ),
                {"at": AT},
            )
            conn.execute(
                text(
                    "INSERT INTO civil_servants (employee_id, name_local, name_latin, sex,"
                    " date_of_birth, ministry, unit, position, grade, category, status,"
                    " status_date, content_hash, created_at, updated_at) VALUES ('KH-1', 'x',"
                    " 'X', 'F', :born, 'M', '', '', '', 'civil_servant', 'active', :born, 'h',"
                    " :at, :at)"
                ),
                {"born": date(1980, 1, 1), "at": AT},
            )
            _credential(conn, "card-1", 1, "live", "")
        upgrade(engine)
        assert current_revision(engine) == "0015"
        with engine.connect() as conn:
            kinds = {r[0]: r[1] for r in conn.execute(text("SELECT id, kind FROM credentials"))}
            diff = [
                d
                for d in compare_metadata(MigrationContext.configure(conn), Base.metadata)
                if any(name in repr(d) for name in (*NEW_TABLES, "credentials"))
            ]
        assert kinds == {"card-1": "card"}
        assert diff == []
        with engine.begin() as conn:
            _credential(conn, "phone-1", 2, "live", "phone")  # beside the live card: allowed
        with pytest.raises(IntegrityError), engine.begin() as conn:
            _credential(conn, "phone-2", 3, "live", "phone")  # a second live phone: refused

        command.downgrade(alembic_config(engine), "0014")
        assert current_revision(engine) == "0014"
        inspector = sqlalchemy.inspect(engine)
        assert not set(NEW_TABLES) & set(inspector.get_table_names())
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT id FROM credentials")).scalars().all()
        assert ids == ["card-1"]
        upgrade(engine)
        assert current_revision(engine) == "0015"
    finally:
        engine.dispose()
