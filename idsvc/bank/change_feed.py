"""The change feed: status changes a payroll bank must act on, in commit order, with an outbox.

``record_changes`` is called inside the transaction that makes the change (HR import, a
credential's state change, a superseding issuance), so an event exists exactly when its change
does. It also writes one webhook delivery row per matching subscription (the transactional
outbox that ``idsvc.bank.webhook_delivery`` drains).

Ordering. Readers page with ``position > cursor``; that is only safe if a position becomes
visible after every smaller one. Database sequences do not promise that on PostgreSQL (a
transaction that took 7 can commit after one that took 8, and a reader between the two commits
would skip 7 for ever). Here a writer takes the ``change_feed_head`` row ``FOR UPDATE`` and holds
it until it commits, so positions are handed out in commit order; SQLite has a single writer
anyway. On PostgreSQL the audit head is locked first: every writer appends to the audit log
too, and taking the two locks in one order everywhere rules out a deadlock between them.

Scope. A client sees the events of the people it has checked in a payroll batch
(``client_people``, written by ``note_people_checked`` in the check's transaction), in the feed
and in its webhooks; a client with the ``admin`` scope sees everyone. ``reason`` is a stable
code (``REASON_CODES``), never an operator's free text.

Cursors. ``cf1:<position>``, base64url. A cursor that does not decode, or that points past the
head (no page ever handed it out), is ``InvalidCursor``: accepting it silently would let a bank
poll an empty page for ever. A page that is not full ends at the head read before it (every
position up to the head had committed), so a scoped reader does not rescan other people's
events on every poll.

Errors: ``ChangeFeedError`` → ``InvalidCursor`` (exit 22, HTTP 400 ``INVALID_CURSOR``).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, NamedTuple, cast

from sqlalchemy import Table, bindparam, func, insert, literal, select, update
from sqlalchemy.orm import Session

from idsvc.bank.change_events import CREDENTIAL_EVENTS, EMPLOYEE_EVENTS, EVENT_TYPES, REASON_CODES
from idsvc.errors import ChangeFeedError, InvalidCursor
from idsvc.storage.bulk import insert_missing, rows_matching
from idsvc.storage.client_tables import ApiClientRow
from idsvc.storage.db import Database
from idsvc.storage.payroll_tables import (
    ChangeEventRow,
    ChangeFeedHeadRow,
    ClientPersonRow,
    WebhookDeliveryRow,
    WebhookSubscriptionRow,
)
from idsvc.storage.tables import AuditHeadRow

MAX_PAGE: Final = 10_000
_CURSOR_TAG: Final = b"cf1:"
_INSERT_CHUNK: Final = 1000
SEES_EVERYONE: Final = "admin"  # the scope whose holders read every person's events


@dataclass(frozen=True, slots=True)
class Change:
    """A change to record. ``status`` is the new employment status or credential state."""

    type: str
    employee_id: str
    status: str | None = None
    effective_date: date | None = None
    credential_id: str | None = None
    card_serial: str | None = None
    reason: str | None = None


class ChangeEvent(NamedTuple):
    """An event as read back. A named tuple, not a frozen dataclass: a page builds 10,000,
    and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost as much
    as reading the page's rows."""

    position: int
    id: str
    type: str
    employee_id: str
    status: str | None
    effective_date: date | None
    credential_id: str | None
    card_serial: str | None
    reason: str | None
    recorded_at: datetime

    @classmethod
    def of(cls, row: ChangeEventRow) -> ChangeEvent:
        return cls(
            row.position,
            row.event_id,
            row.type,
            row.employee_id,
            row.status,
            row.effective_date,
            row.credential_id,
            row.card_serial,
            row.reason,
            row.recorded_at,
        )

    def as_dict(self, written: dict[datetime, str] | None = None) -> dict[str, Any]:
        """The event as the feed and webhooks send it. ``written``: the ISO forms of times
        already written, shared by the events of one page (``ChangePage.as_dicts``)."""
        recorded = self.recorded_at
        at = None if written is None else written.get(recorded)
        if at is None:
            at = recorded.isoformat()
            if written is not None:
                written[recorded] = at
        return {
            "id": self.id,
            "type": self.type,
            "employee_id": self.employee_id,
            "status": self.status,
            "effective_date": self.effective_date.isoformat() if self.effective_date else None,
            "credential_id": self.credential_id,
            "card_serial": self.card_serial,
            "reason": self.reason,
            "recorded_at": at,
        }


@dataclass(frozen=True, slots=True)
class ChangePage:
    events: list[ChangeEvent]
    next_cursor: str

    def as_dicts(self) -> list[dict[str, Any]]:
        """Each event's ``as_dict``, each distinct time written once: the events a
        transaction appends share its time, and ``datetime.isoformat`` was half the CPU of
        serving a 10,000-event page."""
        written: dict[datetime, str] = {}
        return [event.as_dict(written) for event in self.events]


def employee_change(employee_id: str, status: str, effective: date | None) -> Change:
    return Change(
        EMPLOYEE_EVENTS[status], employee_id, status, effective, reason="HR_STATUS_CHANGE"
    )


def reason_code(state: str, reason: str | None) -> str:
    """The stable code of a credential change; ``reason`` is the text its caller recorded in
    the audit log (``hr: …`` for HR's, ``lost: …`` for a lost card)."""
    if state == "superseded":
        return "CARD_REPLACED"
    text = (reason or "").strip().lower()
    if text.startswith("hr:"):
        return "HR_STATUS_CHANGE"
    if text.startswith("lost:"):
        return "CARD_LOST"
    return "OPERATOR_DECISION"


def credential_change(
    employee_id: str, credential_id: str, card_serial: str, state: str, reason: str | None
) -> Change:
    return Change(
        CREDENTIAL_EVENTS[state],
        employee_id,
        state,
        credential_id=credential_id,
        card_serial=card_serial,
        reason=reason_code(state, reason),
    )


def sees_everyone(scopes: Iterable[str]) -> bool:
    return SEES_EVERYONE in scopes


def note_people_checked(
    session: Session, client_id: str | None, employee_ids: Iterable[str | None], *, now: datetime
) -> None:
    """Record, in the payroll check's transaction, that ``client_id`` checked these people:
    from now on their events are in its feed and webhooks. One statement for the batch; people
    it checked before keep their first date."""
    people = sorted({e for e in employee_ids if e})
    if client_id is None or not people:
        return
    insert_missing(
        session,
        ClientPersonRow.metadata.tables[ClientPersonRow.__tablename__],
        "employee_id",
        people,
        same={"client_id": client_id, "first_seen_at": now},
    )


def pattern_matches(patterns: Iterable[str], event_type: str) -> bool:
    """``employee.*``, ``*`` or an exact type."""
    return any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """Event patterns as given, or ``ChangeFeedError`` if one matches no event type."""
    cleaned = sorted({p.strip() for p in patterns if p.strip()})
    if not cleaned:
        raise ChangeFeedError("name at least one event type (or `*`)")
    for p in cleaned:
        if not any(fnmatch.fnmatchcase(t, p) for t in EVENT_TYPES):
            raise ChangeFeedError(
                f"{p!r} matches no event type; types: {', '.join(sorted(EVENT_TYPES))}"
            )
    return cleaned


# The write side's statements, built once and run on the session's connection: a superseding
# issuance and every credential change append here, and the ORM's per-statement work
# (autoflush, ``do_orm_execute`` hooks, result wrapping) cost more than the statements.
_AUDIT_HEAD = cast(Table, AuditHeadRow.__table__)
_FEED_HEAD = cast(Table, ChangeFeedHeadRow.__table__)
_SUBSCRIPTIONS = cast(Table, WebhookSubscriptionRow.__table__)
_CLIENTS = cast(Table, ApiClientRow.__table__)
_LOCK_AUDIT_HEAD = select(_AUDIT_HEAD.c.id).where(_AUDIT_HEAD.c.id == 1).with_for_update()
_MOVE_HEAD = (
    update(_FEED_HEAD)
    .where(_FEED_HEAD.c.id == 1)
    .values(position=_FEED_HEAD.c.position + bindparam("count"))
    .returning(_FEED_HEAD.c.position)
)
_INSERT_EVENTS = insert(cast(Table, ChangeEventRow.__table__))
_INSERT_DELIVERIES = insert(cast(Table, WebhookDeliveryRow.__table__))
_ENABLED_SUBSCRIPTIONS = (
    select(
        _SUBSCRIPTIONS.c.id, _SUBSCRIPTIONS.c.events, _SUBSCRIPTIONS.c.client_id, _CLIENTS.c.scopes
    )
    .join(_CLIENTS, _CLIENTS.c.id == _SUBSCRIPTIONS.c.client_id)
    .where(_SUBSCRIPTIONS.c.enabled.is_(True))
)


def _allocate(session: Session, count: int) -> int:
    """Take ``count`` positions; return the last one handed out before them.

    The UPDATE is the lock: it holds the head row until this transaction ends (on SQLite it
    takes the database's write lock, so it must be a write, not a SELECT that upgrades later).
    """
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        conn.execute(_LOCK_AUDIT_HEAD)
    moved = conn.execute(_MOVE_HEAD, {"count": count}).scalar_one_or_none()
    if moved is None:  # migration 0005 creates the row; this only covers a hand-made schema
        session.add(ChangeFeedHeadRow(id=1, position=count))
        session.flush()
        return 0
    return int(moved) - count


def record_changes(session: Session, changes: Sequence[Change], *, now: datetime) -> int:
    """Append events (and their webhook deliveries) in the caller's transaction."""
    if not changes:
        return 0
    # The statements below go to the connection: first write the caller's pending changes, as
    # the ORM's autoflush did (a subscription or a person added in this session, say).
    session.flush()
    head = _allocate(session, len(changes))
    rows: list[dict[str, Any]] = []
    for offset, change in enumerate(changes, start=1):
        if change.type not in EVENT_TYPES:
            raise ValueError(f"unknown change type {change.type!r}")
        if change.reason is not None and change.reason not in REASON_CODES:
            raise ValueError(f"unknown reason code {change.reason!r}")
        rows.append(
            {
                "position": head + offset,
                "event_id": str(uuid.uuid4()),
                "type": change.type,
                "employee_id": change.employee_id,
                "status": change.status,
                "effective_date": change.effective_date,
                "credential_id": change.credential_id,
                "card_serial": change.card_serial,
                "reason": change.reason,
                "recorded_at": now,
            }
        )
    conn = session.connection()
    for start in range(0, len(rows), _INSERT_CHUNK):
        conn.execute(_INSERT_EVENTS, rows[start : start + _INSERT_CHUNK])
    _enqueue_deliveries(session, rows, now=now)
    return len(rows)


def record_change(session: Session, change: Change, *, now: datetime) -> int:
    return record_changes(session, [change], now=now)


def _enqueue_deliveries(session: Session, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """One pending delivery per enabled subscription whose patterns match the event and whose
    client sees the person. A disabled client's rows are still written: the deliverer skips
    them until the client is enabled again (``idsvc.bank.webhook_delivery``)."""
    conn = session.connection()
    subscriptions = conn.execute(_ENABLED_SUBSCRIPTIONS).all()
    if not subscriptions:
        return
    scoped = sorted({c for _, _, c, scopes in subscriptions if not sees_everyone(scopes.split())})
    seen: set[tuple[str, str]] = set()
    if scoped:
        seen = {
            (client_id, employee_id)
            for client_id, employee_id in rows_matching(
                session,
                (ClientPersonRow.client_id, ClientPersonRow.employee_id),
                ClientPersonRow.employee_id,
                sorted({row["employee_id"] for row in rows}),
                ClientPersonRow.client_id.in_(scoped),
            )
        }
    deliveries = [
        {
            "subscription_id": sub_id,
            "event_position": row["position"],
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for row in rows
        for sub_id, patterns, client_id, scopes in subscriptions
        if pattern_matches(patterns, row["type"])
        and (sees_everyone(scopes.split()) or (client_id, row["employee_id"]) in seen)
    ]
    for start in range(0, len(deliveries), _INSERT_CHUNK):
        conn.execute(_INSERT_DELIVERIES, deliveries[start : start + _INSERT_CHUNK])


# The read side reads the table's columns on the session's connection, in ``ChangeEvent``'s
# field order, and builds each event from the row's values by position: through the ORM
# (its per-row result wrapping) and ``Row._asdict`` (a key view per row), 60 % of a
# 10,000-event page went to building its rows.
_EVENTS = cast(Table, ChangeEventRow.__table__)
# The widest window of positions one statement of ``read_changes`` reads.
_MAX_WINDOW: Final = 16 * MAX_PAGE

_EVENT_COLUMNS: Final = (
    _EVENTS.c.position,
    _EVENTS.c.event_id,
    _EVENTS.c.type,
    _EVENTS.c.employee_id,
    _EVENTS.c.status,
    _EVENTS.c.effective_date,
    _EVENTS.c.credential_id,
    _EVENTS.c.card_serial,
    _EVENTS.c.reason,
    _EVENTS.c.recorded_at,
)


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(_CURSOR_TAG + str(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor() from exc
    digits = raw.removeprefix(_CURSOR_TAG)
    if digits == raw or not digits.isdigit() or len(digits) > 18:
        raise InvalidCursor()
    return int(digits)


def head_position(session: Session) -> int:
    return session.execute(
        select(func.coalesce(func.max(ChangeFeedHeadRow.position), 0))
    ).scalar_one()


def read_changes(
    session: Session, since: str | None, *, limit: int, reader: str | None = None
) -> ChangePage:
    """Events after ``since`` (from the start when ``None``; ``"now"``: none, only the
    cursor of the head), oldest first, at most ``limit``. ``reader``: the client whose people
    the events are about (``None``: everyone's, for admin clients and the operator)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ChangeFeedError(f"limit must be between 1 and {MAX_PAGE}")
    # Read first: every position up to it has committed (a writer moves the head and inserts
    # its events in one transaction), so a page that is not full may end there.
    head = head_position(session)
    if since == "now":
        return ChangePage([], encode_cursor(head))
    after = 0 if since is None else decode_cursor(since)
    if after > head:
        raise InvalidCursor()
    # Columns, not ORM entities: building 10,000 tracked objects per page cost more than the
    # query itself.
    query = select(*_EVENT_COLUMNS).order_by(_EVENTS.c.position)
    if reader is not None:
        # A probe of the key per event, in position order, stopping at ``limit``; an IN list
        # would read every person the bank ever checked on every page. A scalar subquery with
        # LIMIT, not EXISTS: PostgreSQL turns EXISTS into a join whose shape it picks by its
        # statistics (a hash of every one of the bank's people, for each page), while this it
        # must run as the per-event probe of the primary key.
        query = query.where(
            select(literal(1))
            .where(
                ClientPersonRow.client_id == reader,
                ClientPersonRow.employee_id == _EVENTS.c.employee_id,
            )
            .limit(1)
            .scalar_subquery()
            .is_not(None)
        )
    # Read in windows of positions, each bounded, whatever plan the database picks: right
    # after a bulk write PostgreSQL's statistics still say the table is small, and it probed
    # every event after the cursor and sorted them for each page (300,000 events: 10 s
    # instead of 2.5, growing with the square of the feed). A window starts at ``limit``
    # positions and doubles while the page is not full (a bank that checked few people).
    events: list[ChangeEvent] = []
    start, window = after, limit
    while start < head and len(events) < limit:
        end_of_window = min(head, start + window)
        bounded = query.where(
            _EVENTS.c.position > start, _EVENTS.c.position <= end_of_window
        ).limit(limit - len(events))
        events += map(ChangeEvent._make, session.connection().execute(bounded).all())
        start, window = end_of_window, min(window * 2, _MAX_WINDOW)
    end = events[-1].position if len(events) == limit else head
    return ChangePage(events, encode_cursor(end))


def event_at(session: Session, position: int) -> ChangeEvent | None:
    row = session.get(ChangeEventRow, position)
    return None if row is None else ChangeEvent.of(row)


class ChangeFeed:
    """The read side for callers (API, CLI): one short transaction per page."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def page(self, since: str | None, *, limit: int, reader: str | None = None) -> ChangePage:
        with self._db.transaction() as session:
            return read_changes(session, since, limit=limit, reader=reader)
