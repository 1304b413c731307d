"""API clients, access log, card challenges, rate limits

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("scopes", sa.String(length=255), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("secret_rotated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("name", name=op.f("uq_api_clients_name")),
    )
    op.create_table(
        "holder_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("employee_id", sa.String(length=64), nullable=True),
        sa.Column("credential_id", sa.String(length=36), nullable=True),
        sa.Column("client_id", sa.String(length=32), nullable=True),
        sa.Column("client_name", sa.String(length=128), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("reasons", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holder_checks")),
    )
    op.create_index(
        op.f("ix_holder_checks_checked_at"), "holder_checks", ["checked_at"], unique=False
    )
    op.create_index("ix_holder_checks_employee_at", "holder_checks", ["employee_id", "checked_at"])
    op.create_table(
        "card_challenges",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_challenges")),
    )
    op.create_index(
        op.f("ix_card_challenges_expires_at"), "card_challenges", ["expires_at"], unique=False
    )
    op.create_table(
        "rate_windows",
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window", name=op.f("pk_rate_windows")),
    )


def downgrade() -> None:
    op.drop_table("rate_windows")
    op.drop_index(op.f("ix_card_challenges_expires_at"), table_name="card_challenges")
    op.drop_table("card_challenges")
    op.drop_index("ix_holder_checks_employee_at", table_name="holder_checks")
    op.drop_index(op.f("ix_holder_checks_checked_at"), table_name="holder_checks")
    op.drop_table("holder_checks")
    op.drop_table("api_clients")
