"""Set-based batch reads and writes (``idsvc.storage.bulk``) on SQLite and PostgreSQL: COPY,
staged upserts and ``= ANY`` lookups must store and find exactly what the portable forms do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, select, text

from idsvc.services import Services
from idsvc.storage.bulk import append_rows, rows_matching, upsert_rows
from idsvc.storage.client_tables import CheckRow
from idsvc.storage.payroll_tables import PayrollAccountRow
from idsvc.storage.tables import CivilServantRow
from tests.support.settings import NOW

ACCOUNTS = cast(Table, PayrollAccountRow.__table__)
CHECKS = cast(Table, CheckRow.__table__)
# Thousands of values: more than one SQL IN list held when the reads went in chunks of 1,000,
# and one bound JSON parameter now.
MANY = 1000


def test_append_rows_stores_every_row_with_aware_times_back(service: Services) -> None:
    at = datetime(2026, 3, 1, 8, 30, 15, 250000, tzinfo=UTC)
    rows = [
        {
            "checked_at": at,
            "kind": "payroll",
            "employee_id": f"E{i:05d}" if i % 3 else None,  # NULLs mixed in
            "credential_id": None,
            "client_id": "c1",
            "client_name": "Bank ក",  # not ASCII: COPY's text encoding
            "address": None,
            "result": "active",
            "reasons": "A\tB" if i == 7 else "",  # a tab would break naive COPY text
        }
        for i in range(2 * MANY + 5)
    ]
    with service.infra.db.transaction() as session:
        append_rows(session, CHECKS, rows)
        append_rows(session, CHECKS, [])
    with service.infra.db.transaction() as session:
        stored = session.execute(select(CheckRow).order_by(CheckRow.id)).scalars().all()
        assert len(stored) == len(rows)
        assert {r.checked_at for r in stored} == {at}
        assert sum(r.employee_id is None for r in stored) == len(range(0, len(rows), 3))
        assert {r.client_name for r in stored} == {"Bank ក"}
        assert sorted(r.reasons for r in stored)[-1] == "A\tB"


def test_append_rows_keeps_rows_alike_and_their_order(service: Services) -> None:
    # On SQLite the columns with one value in every row are bound once and the others travel
    # as JSON: rows that are all alike are still as many rows, and ids follow the given order.
    at = datetime(2026, 3, 1, 8, 30, 15, tzinfo=UTC)
    alike = {
        "checked_at": at,
        "kind": "payroll",
        "employee_id": None,
        "client_name": None,
        "result": "active",
        "reasons": "",
    }
    rows = [alike, alike, alike] + [
        alike | {"employee_id": f"E{i}", "client_name": None if i % 2 else "ក"} for i in range(5)
    ]
    with service.infra.db.transaction() as session:
        append_rows(session, CHECKS, rows)
    with service.infra.db.transaction() as session:
        stored = session.execute(select(CheckRow).order_by(CheckRow.id)).scalars().all()
    assert [r.employee_id for r in stored] == [None, None, None, "E0", "E1", "E2", "E3", "E4"]
    assert [r.client_name for r in stored[3:]] == ["ក", None, "ក", None, "ក"]
    assert {r.checked_at for r in stored} == {at}


def test_append_rows_writes_times_exactly_as_the_orm_does(service: Services) -> None:
    # Whole seconds: SQLite's own datetime adapter would drop the ".000000" SQLAlchemy writes,
    # and text comparisons in WHERE clauses (retention, windows) would then go wrong.
    at = datetime(2026, 3, 1, 8, 30, 15, tzinfo=UTC)
    row = {
        "checked_at": at,
        "kind": "payroll",
        "employee_id": "E1",
        "credential_id": None,
        "client_id": None,
        "client_name": None,
        "address": "x",
        "result": "active",
        "reasons": "",
    }
    with service.infra.db.transaction() as session:
        session.add(CheckRow(**{**row, "employee_id": "ORM"}))
        session.flush()
        append_rows(session, CHECKS, [row])
    with service.infra.db.transaction() as session:
        raw: dict[str, object] = dict(
            session.execute(text("SELECT employee_id, checked_at FROM holder_checks")).all()
        )
    assert raw["E1"] == raw["ORM"]


def test_upsert_rows_inserts_new_and_updates_only_the_named_columns(service: Services) -> None:
    first, later = NOW, NOW + timedelta(days=1)

    def rows(n: int, at: datetime) -> list[dict[str, object]]:
        return [
            {
                "account_hash": f"h{i:04d}",
                "employee_id": "E1",
                "first_seen_at": at,
                "last_seen_at": at,
            }
            for i in range(n)
        ]

    with service.infra.db.transaction() as session:
        upsert_rows(
            session,
            ACCOUNTS,
            rows(3, first),
            keys=("account_hash", "employee_id"),
            update=("last_seen_at",),
        )
        # Twice in one transaction: the staging table must start empty again.
        upsert_rows(
            session,
            ACCOUNTS,
            rows(5, later),
            keys=("account_hash", "employee_id"),
            update=("last_seen_at",),
        )
    with service.infra.db.transaction() as session:
        stored = {
            r.account_hash: (r.first_seen_at, r.last_seen_at)
            for r in session.execute(select(PayrollAccountRow)).scalars()
        }
    assert len(stored) == 5
    assert stored["h0000"] == (first, later)  # first seen kept, last seen moved
    assert stored["h0004"] == (later, later)


def test_rows_matching_finds_exactly_the_wanted_keys_among_thousands(service: Services) -> None:
    with service.infra.db.transaction() as session:
        known = [e for (e,) in session.execute(select(CivilServantRow.employee_id))]
        wanted = [*known, *(f"NOBODY-{i}" for i in range(2 * MANY))]
        found = dict(
            rows_matching(
                session,
                (CivilServantRow.employee_id, CivilServantRow.status),
                CivilServantRow.employee_id,
                wanted,
            )
        )
        active = dict(
            rows_matching(
                session,
                (CivilServantRow.employee_id, CivilServantRow.status),
                CivilServantRow.employee_id,
                wanted,
                CivilServantRow.status == "active",
            )
        )
        none = list(
            rows_matching(session, (CivilServantRow.employee_id,), CivilServantRow.employee_id, [])
        )
    assert set(found) == set(known)
    assert set(active) == {e for e, s in found.items() if s == "active"} != set(known)
    assert none == []
