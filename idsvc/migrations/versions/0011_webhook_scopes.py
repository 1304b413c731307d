"""Webhook secret rotation and per-client feed scope

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, so adding them is instant on PostgreSQL: existing subscriptions keep their
    # secret (v1) or the deployment's key (v1a) until their first rotation.
    for name in ("signing_box", "previous_box"):
        op.add_column("webhook_subscriptions", sa.Column(name, sa.LargeBinary(), nullable=True))
    op.add_column(
        "webhook_subscriptions", sa.Column("previous_until", sa.DateTime(), nullable=True)
    )
    op.create_table(
        "client_people",
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("employee_id", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "employee_id", name=op.f("pk_client_people")),
        # The key is the table on SQLite (the first payroll check inserts every person).
        sqlite_with_rowid=False,
    )
    # Existing clients keep seeing the people they already checked: the check log holds who
    # checked whom (one row per payroll item with a known person).
    op.execute(
        "INSERT INTO client_people (client_id, employee_id, first_seen_at) "
        "SELECT client_id, employee_id, MIN(checked_at) FROM holder_checks "
        "WHERE kind = 'payroll' AND client_id IS NOT NULL AND employee_id IS NOT NULL "
        "GROUP BY client_id, employee_id"
    )
    # The feed's reason becomes a stable code (idsvc.bank.change_events.REASON_CODES): the free
    # text an operator typed stays in the audit log, not in what every bank reads.
    op.execute(
        "UPDATE change_events SET reason = CASE "
        "WHEN type LIKE 'employee.%' THEN 'HR_STATUS_CHANGE' "
        "WHEN type = 'credential.superseded' THEN 'CARD_REPLACED' "
        "WHEN reason LIKE 'hr:%' THEN 'HR_STATUS_CHANGE' "
        "WHEN reason LIKE 'lost:%' THEN 'CARD_LOST' "
        "ELSE 'OPERATOR_DECISION' END"
    )


def downgrade() -> None:
    # The reason codes stay: the free text they replaced is gone (the audit log still has it).
    op.drop_table("client_people")
    with op.batch_alter_table("webhook_subscriptions") as batch:
        for name in ("previous_until", "previous_box", "signing_box"):
            batch.drop_column(name)
