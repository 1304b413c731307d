"""Append-only, hash-chained audit log.

Each event's hash covers its own fields and the previous event's hash, and ``audit_head`` keeps
the tip, so editing, deleting or reordering any event (the newest included) breaks the chain.
Events are written in the same transaction as the change they record: no change without its
event, no event without its change.

Someone who can rewrite the whole table *and* the head can forge a consistent chain; ``idsvc
audit verify`` prints the head hash so operators can anchor it elsewhere (a ticket, a log host).

The chain also vouches for current state: ``verify_chain`` replays the events
(``idsvc.audit.replay``) and names every credential and person whose stored state disagrees,
so a row edited directly in the database is caught even though no event was touched.

Errors: ``AuditError`` → ``AuditChainBroken`` (with the first bad ``seq``),
``AuditStateMismatch`` (the events are intact but stored state disagrees with them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from idsvc.audit.request_scope import current_request_id
from idsvc.storage.tables import AuditEventRow, AuditHeadRow

GENESIS = "0" * 64

_HEAD = cast(Table, AuditHeadRow.__table__)
_READ_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_INSERT_EVENT = insert(cast(Table, AuditEventRow.__table__))
_INSERT_HEAD = insert(_HEAD)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1, _HEAD.c.hash == bindparam("prev_hash"))
    .values(seq=bindparam("seq"), hash=bindparam("hash"))
)


class AuditError(Exception):
    """Base of audit errors."""


class AuditChainBroken(AuditError):
    def __init__(self, seq: int, why: str) -> None:
        super().__init__(f"audit chain broken at event {seq}: {why}")
        self.seq = seq
        self.why = why


class AuditStateMismatch(AuditChainBroken):
    """Subclass of ``AuditChainBroken`` so every caller that stops on a broken chain stops here
    too: the log no longer describes the data."""

    def __init__(self, events: int, disagreements: list[str]) -> None:
        AuditError.__init__(
            self,
            f"audit chain intact ({events} events) but the stored state disagrees with it: "
            + "; ".join(disagreements),
        )
        self.seq = events
        self.why = "stored state disagrees"
        self.disagreements = disagreements


@dataclass(frozen=True)
class AuditCheck:
    events: int
    head_hash: str


def _event_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    details: Mapping[str, Any],
) -> str:
    body = json.dumps(
        [seq, at.isoformat(), actor, action, target_type, target_id, details],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(prev_hash.encode() + body.encode()).hexdigest()


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one event inside the caller's transaction.

    Details must hold no personal data beyond identifiers: the audit is read by IT staff.
    """
    details = dict(details or {})
    request_id = current_request_id.get()  # set only while the API serves a request
    if request_id is not None:
        details.setdefault("request_id", request_id)
    # Every write use case records events: they go straight to the connection as Core
    # statements built once (through the ORM they were ~40 % of an issuance's CPU). The flush
    # first writes the caller's pending changes, as the ORM's autoflush did before them.
    session.flush()
    conn = session.connection()
    # FOR UPDATE serialises writers on PostgreSQL; SQLite serialises writes anyway. The guarded
    # UPDATE below is the backstop on both: a writer that lost the race fails instead of forking.
    head = conn.execute(_READ_HEAD).one_or_none()
    prev_seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
    seq = prev_seq + 1
    at = at.replace(microsecond=(at.microsecond // 1000) * 1000)  # portable precision
    digest = _event_hash(prev_hash, seq, at, actor, action, target_type, target_id, details)
    conn.execute(
        _INSERT_EVENT,
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "details": details,
            "prev_hash": prev_hash,
            "hash": digest,
        },
    )
    if head is None:
        conn.execute(_INSERT_HEAD, {"id": 1, "seq": seq, "hash": digest})
    else:
        moved = conn.execute(_MOVE_HEAD, {"prev_hash": prev_hash, "seq": seq, "hash": digest})
        if moved.rowcount != 1:
            raise AuditError("concurrent audit write; retry the operation")


def verify_chain(session: Session, *, batch: int = 5000) -> AuditCheck:
    """Walk the whole chain; raise ``AuditChainBroken`` at the first inconsistency, then
    ``AuditStateMismatch`` naming what is stored unlike the events say."""
    # Imported here: every write appends to the chain, only `idsvc audit verify` replays it.
    from idsvc.audit.replay import StateReplay

    replay = StateReplay()
    prev_hash = GENESIS
    expected_seq = 1
    last_seq = 0
    offset = 0
    while True:
        rows = (
            session.execute(
                select(AuditEventRow).order_by(AuditEventRow.seq).offset(offset).limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                raise AuditChainBroken(expected_seq, "event missing (deleted?)")
            if row.prev_hash != prev_hash:
                raise AuditChainBroken(row.seq, "does not link to the previous event")
            digest = _event_hash(
                prev_hash,
                row.seq,
                row.at,
                row.actor,
                row.action,
                row.target_type,
                row.target_id,
                row.details,
            )
            if digest != row.hash:
                raise AuditChainBroken(row.seq, "content changed after it was written")
            replay.follow(row.action, row.target_id, row.details)
            prev_hash = digest
            last_seq = row.seq
            expected_seq += 1
        offset += len(rows)
    head = session.get(AuditHeadRow, 1)
    if head is None:
        if last_seq:
            raise AuditChainBroken(last_seq, "chain head missing")
    elif head.seq != last_seq or head.hash != prev_hash:
        raise AuditChainBroken(last_seq + 1, f"newest events missing (head says {head.seq})")
    disagreements = replay.disagreements(session)
    if disagreements:
        raise AuditStateMismatch(last_seq, disagreements)
    return AuditCheck(events=last_seq, head_hash=prev_hash)
