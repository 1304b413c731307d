"""The change feed on SQLite and PostgreSQL: what is recorded, in the change's transaction, and
paging that misses and repeats nothing while writers commit concurrently."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from idsvc import change_feed
from idsvc.change_feed import Change, read_changes
from idsvc.errors import ChangeFeedError, InvalidCursor
from idsvc.service import IdService
from idsvc.storage.payroll_tables import ChangeEventRow
from tests.conftest import NOW
from tests.payroll_support import set_status

ACTIVE = "LA-MOHA-000101"
OTHER = "KH-MCS-010002"


def _all(service: IdService, since: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    with service.db.transaction() as s:
        return [e.as_dict() for e in read_changes(s, since, limit=limit).events]


def test_retirement_records_employee_then_credential_events(service: IdService) -> None:
    cred = service.issue(ACTIVE, actor="desk", now=NOW)
    assert _all(service) == []  # issuing a first card changes no status
    set_status(service, ACTIVE, "retired", "2026-11-20")
    events = _all(service)
    assert [(e["type"], e["employee_id"], e["status"]) for e in events] == [
        ("employee.retired", ACTIVE, "retired"),
        ("credential.revoked", ACTIVE, "revoked"),
    ]
    assert events[0]["effective_date"] == "2026-11-20"
    assert events[1]["credential_id"] == cred.id
    assert events[1]["card_serial"] == cred.card_serial
    assert events[1]["reason"] == "hr: retired"


def test_suspension_reinstatement_and_superseding(service: IdService) -> None:
    first = service.issue(OTHER, actor="desk", now=NOW)
    second = service.issue(OTHER, actor="desk", now=NOW)
    set_status(service, OTHER, "suspended", "2026-11-01")
    set_status(service, OTHER, "active", "2026-11-02")
    service.change_state(second.id, "revoke", reason="card lost", actor="desk", now=NOW)
    types = [(e["type"], e["credential_id"]) for e in _all(service)]
    assert types == [
        ("credential.superseded", first.id),
        ("employee.suspended", None),
        ("credential.suspended", second.id),
        ("employee.reinstated", None),
        ("credential.reinstated", second.id),
        ("credential.revoked", second.id),
    ]


def test_unchanged_import_records_nothing(service: IdService) -> None:
    set_status(service, ACTIVE, "deceased")
    before = _all(service)
    set_status(service, ACTIVE, "deceased")
    assert _all(service) == before


def test_event_is_rolled_back_with_its_change(service: IdService) -> None:
    with pytest.raises(RuntimeError), service.db.transaction() as s:
        change_feed.record_change(s, change_feed.employee_change(ACTIVE, "retired", None), now=NOW)
        raise RuntimeError("the change fails after its event was written")
    assert _all(service) == []
    with service.db.transaction() as s:  # the position was not burnt either
        change_feed.record_change(s, change_feed.employee_change(ACTIVE, "retired", None), now=NOW)
        assert s.execute(select(func.min(ChangeEventRow.position))).scalar_one() == 1


def test_paging_is_oldest_first_and_cursor_is_opaque(service: IdService) -> None:
    with service.db.transaction() as s:
        change_feed.record_changes(
            s,
            [Change("employee.suspended", f"LA-X-{i:06d}", "suspended") for i in range(7)],
            now=NOW,
        )
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        with service.db.transaction() as s:
            page = read_changes(s, cursor, limit=3)
        seen += [e.employee_id for e in page.events]
        assert page.next_cursor.isascii() and "7" not in page.next_cursor[:3]
        cursor = page.next_cursor
    assert seen == [f"LA-X-{i:06d}" for i in range(7)]
    with service.db.transaction() as s:
        assert read_changes(s, "now", limit=10).next_cursor == cursor
        for bad in ("", "abc", "Y2YxOi0x", "bm90LWEtY3Vyc29y", "%%%"):
            with pytest.raises(InvalidCursor):
                read_changes(s, bad, limit=10)
        with pytest.raises(ChangeFeedError):
            read_changes(s, None, limit=0)


def test_concurrent_writers_never_make_a_reader_skip(service: IdService) -> None:
    """Writers hold their transaction open for a while after taking a position; a reader that
    pages all the time must still see every event exactly once, in position order."""
    writers, per_writer = 4, 15
    done = threading.Event()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(per_writer):
                with service.db.transaction() as s:
                    change_feed.record_change(
                        s,
                        Change("employee.suspended", f"LA-W{n}-{i:06d}", "suspended"),
                        now=NOW + timedelta(seconds=i),
                    )
                    # A slow commit: a sequence-based feed would let later positions commit first.
                    done.wait(0.01)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    seen: list[int] = []
    cursor: str | None = None
    while True:
        alive = any(t.is_alive() for t in threads)
        with service.db.transaction() as s:
            page = read_changes(s, cursor, limit=4)
        seen += [e.position for e in page.events]
        cursor = page.next_cursor
        if not alive and not page.events:
            break
    for t in threads:
        t.join()
    assert not errors, errors
    assert seen == list(range(1, writers * per_writer + 1))
