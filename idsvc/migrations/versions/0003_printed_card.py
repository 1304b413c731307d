"""printed card: Claim 169 payload and holder photos

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Adds ``credentials.qr_text``: the Claim 169 QR text made by the same issuance as the JWT
(docs/claim169.md). Nullable: credentials issued before it have no printed form.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot add or drop columns in place on every version we support.
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("qr_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("qr_text")
