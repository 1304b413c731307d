"""The change feed on SQLite and PostgreSQL: what is recorded, in the change's transaction, and
paging that misses and repeats nothing while writers commit concurrently."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from idsvc.bank import change_feed
from idsvc.bank.change_feed import Change, encode_cursor, read_changes
from idsvc.errors import ChangeFeedError, InvalidCursor
from idsvc.services import Services
from idsvc.storage.payroll_tables import ChangeEventRow, ClientPersonRow
from tests.support.payroll import add_client, check_people, set_status
from tests.support.settings import NOW

ACTIVE = "LA-MOHA-000101"
OTHER = "KH-MCS-010002"


def _all(service: Services, since: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    with service.infra.db.transaction() as s:
        return [e.as_dict() for e in read_changes(s, since, limit=limit).events]


def test_retirement_records_employee_then_credential_events(service: Services) -> None:
    cred = service.credentials.issue(ACTIVE, actor="desk", now=NOW)
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
    assert [e["reason"] for e in events] == ["HR_STATUS_CHANGE", "HR_STATUS_CHANGE"]


def test_suspension_reinstatement_and_superseding(service: Services) -> None:
    first = service.credentials.issue(OTHER, actor="desk", now=NOW)
    second = service.credentials.issue(OTHER, actor="desk", now=NOW)
    set_status(service, OTHER, "suspended", "2026-11-01")
    set_status(service, OTHER, "active", "2026-11-02")
    service.credentials.revoke(second.id, reason="card lost", by=None, now=NOW)
    types = [(e["type"], e["credential_id"]) for e in _all(service)]
    assert types == [
        ("credential.superseded", first.id),
        ("employee.suspended", None),
        ("credential.suspended", second.id),
        ("employee.reinstated", None),
        ("credential.reinstated", second.id),
        ("credential.revoked", second.id),
    ]


def test_unchanged_import_records_nothing(service: Services) -> None:
    set_status(service, ACTIVE, "deceased")
    before = _all(service)
    set_status(service, ACTIVE, "deceased")
    assert _all(service) == before


def test_event_is_rolled_back_with_its_change(service: Services) -> None:
    with pytest.raises(RuntimeError), service.infra.db.transaction() as s:
        change_feed.record_change(s, change_feed.employee_change(ACTIVE, "retired", None), now=NOW)
        raise RuntimeError("the change fails after its event was written")
    assert _all(service) == []
    with service.infra.db.transaction() as s:  # the position was not burnt either
        change_feed.record_change(s, change_feed.employee_change(ACTIVE, "retired", None), now=NOW)
        assert s.execute(select(func.min(ChangeEventRow.position))).scalar_one() == 1


def test_paging_is_oldest_first_and_cursor_is_opaque(service: Services) -> None:
    with service.infra.db.transaction() as s:
        change_feed.record_changes(
            s,
            [Change("employee.suspended", f"LA-X-{i:06d}", "suspended") for i in range(7)],
            now=NOW,
        )
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        with service.infra.db.transaction() as s:
            page = read_changes(s, cursor, limit=3)
        seen += [e.employee_id for e in page.events]
        assert page.next_cursor.isascii() and "7" not in page.next_cursor[:3]
        cursor = page.next_cursor
    assert seen == [f"LA-X-{i:06d}" for i in range(7)]
    with service.infra.db.transaction() as s:
        assert read_changes(s, "now", limit=10).next_cursor == cursor
        for bad in ("", "abc", "Y2YxOi0x", "bm90LWEtY3Vyc29y", "%%%"):
            with pytest.raises(InvalidCursor):
                read_changes(s, bad, limit=10)
        with pytest.raises(ChangeFeedError):
            read_changes(s, None, limit=0)


def test_concurrent_writers_never_make_a_reader_skip(service: Services) -> None:
    """Writers hold their transaction open for a while after taking a position; a reader that
    pages all the time must still see every event exactly once, in position order."""
    writers, per_writer = 4, 15
    done = threading.Event()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(per_writer):
                with service.infra.db.transaction() as s:
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
        with service.infra.db.transaction() as s:
            page = read_changes(s, cursor, limit=4)
        seen += [e.position for e in page.events]
        cursor = page.next_cursor
        if not alive and not page.events:
            break
    for t in threads:
        t.join()
    assert not errors, errors
    assert seen == list(range(1, writers * per_writer + 1))


def test_reason_is_a_stable_code_never_the_operators_text(service: Services) -> None:
    first = service.credentials.issue(OTHER, actor="desk", now=NOW)
    second = service.credentials.issue(OTHER, actor="desk", now=NOW)
    service.credentials.change_state(
        second.id, "suspend", reason="Mr X phoned: 020 5555", actor="d", now=NOW
    )
    service.credentials.revoke(second.id, reason="lost: left in a taxi", by=None, now=NOW)
    reasons = [(e["type"], e["credential_id"], e["reason"]) for e in _all(service)]
    assert reasons == [
        ("credential.superseded", first.id, "CARD_REPLACED"),
        ("credential.suspended", second.id, "OPERATOR_DECISION"),
        ("credential.revoked", second.id, "CARD_LOST"),
    ]
    with pytest.raises(ValueError, match="reason code"), service.infra.db.transaction() as s:
        change_feed.record_change(
            s, Change("employee.retired", ACTIVE, "retired", reason="hr: retired"), now=NOW
        )


def test_a_cursor_past_the_head_is_refused(service: Services) -> None:
    set_status(service, ACTIVE, "retired")
    with service.infra.db.transaction() as s:
        head = read_changes(s, "now", limit=10).next_cursor
        assert head == encode_cursor(1)
        assert read_changes(s, head, limit=10).events == []  # the head itself: fine
        for past in (encode_cursor(2), encode_cursor(10**17)):
            with pytest.raises(InvalidCursor):
                read_changes(s, past, limit=10)


def test_a_client_reads_only_the_people_it_checked(service: Services) -> None:
    a, _ = add_client(service, "bank-a", "payroll")
    b, _ = add_client(service, "bank-b", "payroll")
    check_people(service, a, ACTIVE, "NOBODY-000001")  # unknown people are not recorded
    check_people(service, b, OTHER)
    check_people(service, a, ACTIVE)  # again: no duplicate, first date kept
    set_status(service, ACTIVE, "retired")
    set_status(service, OTHER, "suspended")
    with service.infra.db.transaction() as s:
        pairs = s.execute(select(ClientPersonRow.client_id, ClientPersonRow.employee_id)).all()
        assert sorted(pairs) == sorted([(a, ACTIVE), (b, OTHER)])
        mine = read_changes(s, None, limit=100, reader=a)
        theirs = read_changes(s, None, limit=100, reader=b)
        everyone = read_changes(s, None, limit=100)
    assert {e.employee_id for e in mine.events} == {ACTIVE}
    assert {e.employee_id for e in theirs.events} == {OTHER}
    assert {e.employee_id for e in everyone.events} == {ACTIVE, OTHER}
    # A page that is not full ends at the head: the next poll does not rescan others' events.
    assert mine.next_cursor == theirs.next_cursor == everyone.next_cursor
    with service.infra.db.transaction() as s:
        full = read_changes(s, None, limit=1, reader=b)
    assert full.next_cursor == encode_cursor(full.events[0].position)


def test_a_sparse_reader_pages_through_many_windows_missing_and_repeating_nothing(
    service: Services,
) -> None:
    """``read_changes`` reads bounded windows of positions (doubling while a page is not full):
    a bank whose people's events are few and far apart still gets all of them, in order, and
    each page's cursor ends where the next must start."""
    bank, _ = add_client(service, "bank-sparse", "payroll")
    check_people(service, bank, ACTIVE)
    others = [
        change_feed.Change("employee.suspended", f"XX-OTHER-{i:06d}", "suspended")
        for i in range(37)
    ]
    mine = [change_feed.Change("employee.suspended", ACTIVE, "suspended") for _ in range(5)]
    # 5 of the bank's events among 185 of other people's: gaps of 37 positions, several
    # windows of a 2-event page each.
    with service.infra.db.transaction() as s:
        for change in mine:
            change_feed.record_changes(s, [*others, change], now=NOW)
        wanted = [
            position
            for (position,) in s.execute(
                select(ChangeEventRow.position)
                .where(ChangeEventRow.employee_id == ACTIVE)
                .order_by(ChangeEventRow.position)
            )
        ]
        head = change_feed.head_position(s)
    assert len(wanted) == 5
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        with service.infra.db.transaction() as s:
            page = read_changes(s, cursor, limit=2, reader=bank)
        seen += [e.position for e in page.events]
        if len(page.events) == 2:
            assert page.next_cursor == encode_cursor(page.events[-1].position)
        else:
            assert page.next_cursor == encode_cursor(head)
            break
        cursor = page.next_cursor
    assert seen == wanted
