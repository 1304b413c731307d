"""Expire issuances that were begun and never confirmed (a desk crashed or a card was pulled),
and approvals nobody decided in time.

Without a sweeper such a credential stays ``pending`` until the person's next issuance. The
sweeper closes every overdue one as ``abandoned`` ("expired unconfirmed"), each with its own
audit event, in batches so that one run never holds many row locks. On PostgreSQL the rows are
taken with ``SKIP LOCKED``: two sweepers (two machines) split the work instead of waiting, and a
confirmation racing the sweeper keeps its row.

A pending approval past its time limit is closed as ``expired`` (``approval.expire`` in the
audit, with who asked for what): it could not be approved any more anyway, and closing it
keeps the supervisors' list to what they can still decide.

Holder sessions and wallet nonces past their end are deleted (``delete_expired_wallet_rows``):
neither can be used any more, and a nonce is refused once expired whether its row is there or
not, so deleting it opens no replay.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.credentials.issuance import abandon_issuance
from idsvc.staff import approvals
from idsvc.storage.tables import CredentialRow
from idsvc.wallet import holder, nonces

EXPIRED_REASON = "expired unconfirmed"
SWEEP_BATCH = 500


def overdue_pending(session: Session, *, now: datetime, limit: int = SWEEP_BATCH) -> list[str]:
    """Ids of pending credentials past their confirmation deadline (locked for this session)."""
    return list(
        session.execute(
            select(CredentialRow.id)
            .where(CredentialRow.state == "pending", CredentialRow.pending_until < now)
            .order_by(CredentialRow.pending_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def sweep_batch(session: Session, *, actor: str, now: datetime, limit: int = SWEEP_BATCH) -> int:
    """Abandon one batch of overdue issuances; return how many were closed."""
    ids = overdue_pending(session, now=now, limit=limit)
    for credential_id in ids:
        abandon_issuance(session, credential_id, reason=EXPIRED_REASON, actor=actor, now=now)
    return len(ids)


def expire_approvals_batch(
    session: Session, *, actor: str, now: datetime, limit: int = SWEEP_BATCH
) -> int:
    """Close one batch of pending approvals past their time limit; return how many."""
    return approvals.expire_due(session, now=now, actor=actor, limit=limit)


def delete_expired_wallet_rows(session: Session, *, now: datetime) -> int:
    """Delete the holder sessions and wallet nonces past their end; return how many."""
    return holder.delete_expired_sessions(session, now=now) + nonces.purge(session, now)
