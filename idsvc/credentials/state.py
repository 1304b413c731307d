"""Credential life-cycle: the one place where a credential's state changes.

States: ``pending`` (signed, waiting for the desk's confirmation) → ``live`` ⇄ ``suspended``;
``live``/``suspended`` → ``revoked`` or ``superseded``; ``pending`` → ``abandoned``. Revoked,
superseded and abandoned are final. The status-list bit is derived from the state (see
``STATUS_OF``), so the published list can never disagree with the register.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.audit import chain as audit
from idsvc.bank import change_feed
from idsvc.credentials import status_versions as status_versions  # registers the version bump hooks
from idsvc.errors import InvalidTransition, UnknownCredential
from idsvc.formats.hr_csv import ENDED_STATUSES
from idsvc.formats.status_list import Status
from idsvc.storage.tables import LIVE_STATES, CredentialRow

HR_SUSPENSION = "hr: employment suspended"

STATUS_OF = {
    "live": Status.VALID,
    "suspended": Status.SUSPENDED,
    "pending": Status.INVALID,
    "revoked": Status.INVALID,
    "superseded": Status.INVALID,
    "abandoned": Status.INVALID,
}

_ALLOWED = {
    "revoke": ({"live", "suspended"}, "revoked"),
    "suspend": ({"live"}, "suspended"),
    "reinstate": ({"suspended"}, "live"),
}


def get_credential(session: Session, credential_id: str) -> CredentialRow:
    row = session.get(CredentialRow, credential_id)
    if row is None:
        raise UnknownCredential(credential_id)
    return row


def transition(
    session: Session,
    row: CredentialRow,
    action: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> CredentialRow:
    sources, target = _ALLOWED[action]
    if row.state not in sources:
        raise InvalidTransition(f"cannot {action} credential {row.id}: it is {row.state}")
    old = row.state
    row.state = target
    row.state_reason = reason[:255]
    row.state_changed_at = now
    audit.record(
        session,
        at=now,
        actor=actor,
        action=f"credential.{action}",
        target_type="credential",
        target_id=row.id,
        details={"from": old, "to": target, "reason": reason[:255]},
    )
    change_feed.record_change(
        session,
        change_feed.credential_change(row.employee_id, row.id, row.card_serial, target, reason),
        now=now,
    )
    return row


def change_credential_state(
    session: Session,
    credential_id: str,
    action: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> CredentialRow:
    """Revoke, suspend or reinstate one credential (an operator's decision)."""
    if action not in _ALLOWED:
        raise InvalidTransition(f"unknown action {action!r}")
    if not reason.strip():
        raise InvalidTransition("a reason is required")
    holder = None
    if action == "reinstate":
        # The holder's lock before the credential's, the order HR changes take them: a death
        # recorded at this moment either comes first (refused here) or waits for this.
        from idsvc.register.records import (
            lock_servant_or_raise,  # local: register imports this module
        )

        holder_id = session.scalar(
            select(CredentialRow.employee_id).where(CredentialRow.id == credential_id)
        )
        if holder_id is None:
            raise UnknownCredential(credential_id)
        holder = lock_servant_or_raise(session, holder_id)
    row = session.execute(
        select(CredentialRow).where(CredentialRow.id == credential_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise UnknownCredential(credential_id)
    if holder is not None and holder.status != "active":
        raise InvalidTransition(
            f"cannot reinstate credential {row.id}: the holder is not active in HR"
        )
    return transition(session, row, action, reason=reason, actor=actor, now=now)


def apply_holder_statuses(
    session: Session, statuses: dict[str, str], *, actor: str, now: datetime
) -> int:
    """Make people's live credentials follow their HR status changes (one query for all of
    them); return how many credentials changed."""
    if not statuses:
        return 0
    rows = (
        session.execute(
            select(CredentialRow)
            .where(
                CredentialRow.employee_id.in_(list(statuses)),
                CredentialRow.state.in_(LIVE_STATES),
            )
            .with_for_update()
        )
        .scalars()
        .all()
    )
    changed = 0
    for row in rows:
        status = statuses[row.employee_id]
        if status in ENDED_STATUSES:
            transition(session, row, "revoke", reason=f"hr: {status}", actor=actor, now=now)
        elif status == "suspended" and row.state == "live":
            transition(session, row, "suspend", reason=HR_SUSPENSION, actor=actor, now=now)
        elif status == "active" and row.state == "suspended" and row.state_reason == HR_SUSPENSION:
            transition(session, row, "reinstate", reason="hr: active again", actor=actor, now=now)
        else:
            continue
        changed += 1
    return changed
