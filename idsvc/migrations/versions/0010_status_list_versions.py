"""A content version per status list, so a published token is re-signed only when it changed

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant server default: instant on a live PostgreSQL table (no rewrite). Every
    # process keeps its signed tokens per version, so starting at 0 everywhere is right.
    op.add_column(
        "status_lists",
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("status_lists") as batch:
        batch.drop_column("version")
