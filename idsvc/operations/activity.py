"""Totals an operator graphs, read from the database: credential events and webhook deliveries.

They come from the database, not from counters in a process, because the work happens in many
processes (the CLI issues and revokes, desks and the webhook deliverer run elsewhere) and must
survive restarts: the audit chain is append-only, so its per-action counts only grow and are
true Prometheus counters. The queries use ``ix_audit_events_action`` and
``ix_webhook_deliveries_due``; callers cache the answer for a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event, func, select

from idsvc.storage.db import Database
from idsvc.storage.payroll_tables import WebhookDeliveryRow
from idsvc.storage.tables import AuditEventRow

CREDENTIAL_ACTIONS = ("issue", "revoke", "suspend", "reinstate")
DELIVERY_STATES = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class ActivityTotals:
    credential_events: dict[str, int]  # issue, revoke, suspend, reinstate -> events so far
    webhook_deliveries: dict[str, int]  # pending, delivered, failed -> deliveries now
    webhook_attempts: int  # attempts made so far, successful or not


def activity_totals(db: Database) -> ActivityTotals:
    actions = [f"credential.{a}" for a in CREDENTIAL_ACTIONS]
    with db.transaction() as session:
        events = dict.fromkeys(CREDENTIAL_ACTIONS, 0)
        rows = session.execute(
            select(AuditEventRow.action, func.count())
            .where(AuditEventRow.action.in_(actions))
            .group_by(AuditEventRow.action)
        ).all()
        for action, count in rows:
            events[str(action).removeprefix("credential.")] = int(count)
        deliveries = dict.fromkeys(DELIVERY_STATES, 0)
        attempts = 0
        for state, count, tries in session.execute(
            select(
                WebhookDeliveryRow.state,
                func.count(),
                func.coalesce(func.sum(WebhookDeliveryRow.attempts), 0),
            ).group_by(WebhookDeliveryRow.state)
        ).all():
            deliveries[str(state)] = int(count)
            attempts += int(tries)
    return ActivityTotals(events, deliveries, attempts)


def watch_pool(
    db: Database, checked_out: Callable[[], None], checked_in: Callable[[], None]
) -> int:
    """Call ``checked_out``/``checked_in`` as connections leave and return to the engine's
    pool; return how many connections the pool may hold (0 when it does not say)."""
    event.listen(db.engine, "checkout", lambda *_: checked_out())
    event.listen(db.engine, "checkin", lambda *_: checked_in())
    pool = db.engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    return int(size()) + max(int(overflow), 0) if callable(size) else 0
