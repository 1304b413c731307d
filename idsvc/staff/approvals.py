"""Maker-checker: a sensitive action waits until a second person approves it.

Which actions need it is a setting (``IDSVC_APPROVAL_REQUIRED``). A request records the action,
its target and parameters, who asked and from which desk. Another operator with the
``supervisor`` or ``admin`` role (never the requester) approves before ``expires_at``; the
action then runs in the same transaction and is audited with both identities, or it fails and
nothing changes (the approval stays pending, so it can be approved again once the cause is
fixed, until it expires). A rejection or an expiry closes it for good.

The action itself is performed by the caller's ``Performer`` (``idsvc.staff.maker_checker``,
through the performers table of ``idsvc.services``); this module owns only the rules of the
two-person check. Offices are the
centre's rule too (``idsvc.staff.offices``): it refuses a requester or an approver who is not of the
office of the person the action concerns, and lists to an approver only their offices' requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import chain as audit
from idsvc.errors import ApprovalNotPending, NotPermitted, SelfApproval, UnknownApproval
from idsvc.staff.approval_actions import ACTIONS
from idsvc.staff.operators import APPROVER_ROLES, Actor, require_role
from idsvc.storage.desk_tables import ApprovalRow

_HIDDEN_PARAMS = ("password_hash",)

# (session, action, target, params, audit actor) -> a one-line outcome
Performer = Callable[[Session, str, str, Mapping[str, Any], str], str]


@dataclass(frozen=True)
class ApprovalView:
    id: str
    action: str
    target: str
    params: dict[str, Any]
    state: str
    requested_by: str
    requested_desk: str | None
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    outcome: str | None

    @classmethod
    def of(cls, row: ApprovalRow, now: datetime) -> ApprovalView:
        state = "expired" if row.state == "pending" and now > row.expires_at else row.state
        shown = {k: v for k, v in row.params.items() if k not in _HIDDEN_PARAMS}
        return cls(
            row.id,
            row.action,
            row.target,
            shown,
            state,
            row.requested_by,
            row.requested_desk,
            row.requested_at,
            row.expires_at,
            row.decided_by,
            row.decided_at,
            row.outcome,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "approval_id": self.id,
            "action": self.action,
            "target": self.target,
            "params": self.params,
            "state": self.state,
            "requested_by": self.requested_by,
            "requested_desk": self.requested_desk,
            "requested_at": self.requested_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "outcome": self.outcome,
        }


def request(
    session: Session,
    *,
    action: str,
    target: str,
    params: Mapping[str, Any],
    requester: Actor,
    ttl: timedelta,
    now: datetime,
) -> ApprovalView:
    if action not in ACTIONS:
        raise NotPermitted(f"unknown action {action!r}")
    require_role(requester, ACTIONS[action], f"ask for {action.replace('_', ' ')}")
    row = ApprovalRow(
        id=str(uuid.uuid4()),
        action=action,
        target=target[:128],
        params=dict(params),
        state="pending",
        requested_by=requester.name,
        requested_desk=requester.desk,
        requested_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    audit.record(
        session,
        at=now,
        actor=requester.audit_name,
        action="approval.request",
        target_type="approval",
        target_id=row.id,
        details={"action": action, "target": row.target, "desk": requester.desk},
    )
    return ApprovalView.of(row, now)


def list_approvals(session: Session, *, state: str | None, now: datetime) -> list[ApprovalView]:
    rows = session.execute(select(ApprovalRow).order_by(ApprovalRow.requested_at)).scalars()
    views = [ApprovalView.of(r, now) for r in rows]
    return [v for v in views if state is None or v.state == state]


def _pending(session: Session, approval_id: str, checker: Actor, now: datetime) -> ApprovalRow:
    row = session.execute(
        select(ApprovalRow).where(ApprovalRow.id == approval_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise UnknownApproval(approval_id)
    if row.state != "pending":
        raise ApprovalNotPending(f"approval {approval_id} is already {row.state}")
    if now > row.expires_at:
        raise ApprovalNotPending(
            f"approval {approval_id} expired at {row.expires_at:%Y-%m-%d %H:%M}Z: ask again"
        )
    if checker.name == row.requested_by:
        raise SelfApproval(
            f"{checker.name} asked for this; a second person must decide it (maker-checker)"
        )
    require_role(checker, APPROVER_ROLES, "decide approvals")
    return row


def approve(
    session: Session, approval_id: str, *, checker: Actor, perform: Performer, now: datetime
) -> ApprovalView:
    row = _pending(session, approval_id, checker, now)
    maker = (
        row.requested_by
        if row.requested_desk is None
        else (f"{row.requested_by}@{row.requested_desk}")
    )
    both = f"{maker} approved by {checker.audit_name}"[:128]
    outcome = perform(session, row.action, row.target, row.params, both)
    row.state = "done"
    row.decided_by = checker.name
    row.decided_desk = checker.desk
    row.decided_at = now
    row.outcome = outcome[:255]
    audit.record(
        session,
        at=now,
        actor=checker.audit_name,
        action="approval.approve",
        target_type="approval",
        target_id=row.id,
        details={
            "action": row.action,
            "target": row.target,
            "requested_by": row.requested_by,
            "requested_desk": row.requested_desk,
            "approved_by": checker.name,
            "approved_desk": checker.desk,
        },
    )
    return ApprovalView.of(row, now)


def reject(
    session: Session, approval_id: str, *, checker: Actor, reason: str, now: datetime
) -> ApprovalView:
    if not reason.strip():
        raise NotPermitted("a reason is required to reject")
    row = _pending(session, approval_id, checker, now)
    row.state = "rejected"
    row.decided_by = checker.name
    row.decided_desk = checker.desk
    row.decided_at = now
    row.outcome = f"rejected: {reason}"[:255]
    audit.record(
        session,
        at=now,
        actor=checker.audit_name,
        action="approval.reject",
        target_type="approval",
        target_id=row.id,
        details={"action": row.action, "requested_by": row.requested_by, "reason": reason[:255]},
    )
    return ApprovalView.of(row, now)


def expire_due(
    session: Session, *, now: datetime, actor: str = "system", limit: int | None = None
) -> int:
    """Close pending approvals past their time (recorded, so the audit shows they lapsed).

    At most ``limit`` per call; rows another transaction holds (an approval being decided
    right now) are skipped on PostgreSQL, and the next sweep takes them if still due."""
    query = (
        select(ApprovalRow)
        .where(ApprovalRow.state == "pending", ApprovalRow.expires_at < now)
        .order_by(ApprovalRow.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(query).scalars().all()
    for row in rows:
        row.state = "expired"
        row.decided_at = now
        audit.record(
            session,
            at=now,
            actor=actor,
            action="approval.expire",
            target_type="approval",
            target_id=row.id,
            details={
                "action": row.action,
                "target": row.target,
                "requested_by": row.requested_by,
                "expired_at": row.expires_at.isoformat(),
            },
        )
    return len(rows)
