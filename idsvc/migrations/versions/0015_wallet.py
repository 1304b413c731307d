"""The civil servant's phone: credential kinds, offers, nonces, presentations, holder sessions,
correction requests

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

- ``credentials.kind``: ``card`` for every row so far, ``phone`` for an SD-JWT VC held in a
  wallet. The one-live index becomes one live credential per person *and kind*: a phone
  credential never supersedes the card, nor the card the phone.
- ``wallet_offers``, ``wallet_nonces``: OpenID4VCI pre-authorized offers and the nonces of key
  proofs and of the holder page, every secret stored as its SHA-256.
- ``presentation_requests``: an official's OpenID4VP requests and their results.
- ``holder_sessions``, ``correction_requests``: the holder's own page and their reports of
  errors in their record.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_LIVE = sa.text("state IN ('live', 'suspended')")


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=8), nullable=False, server_default=sa.text("'card'"))
        )
        batch.drop_index("uq_credentials_one_live", sqlite_where=_LIVE, postgresql_where=_LIVE)
        batch.create_index(
            "uq_credentials_one_live",
            ["employee_id", "kind"],
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )
    op.create_table(
        "wallet_offers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("employee_id", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("tx_code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("access_token_hash", sa.String(length=64), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(), nullable=True),
        sa.Column("credential_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["employee_id"],
            ["civil_servants.employee_id"],
            name=op.f("fk_wallet_offers_employee_id_civil_servants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_offers")),
        sa.UniqueConstraint("access_token_hash", name=op.f("uq_wallet_offers_access_token_hash")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_wallet_offers_code_hash")),
    )
    op.create_index(
        op.f("ix_wallet_offers_employee_id"), "wallet_offers", ["employee_id"], unique=False
    )
    op.create_table(
        "wallet_nonces",
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("nonce_hash", name=op.f("pk_wallet_nonces")),
    )
    op.create_index(
        op.f("ix_wallet_nonces_expires_at"), "wallet_nonces", ["expires_at"], unique=False
    )
    op.create_table(
        "presentation_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("state_token", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("poll_token_hash", sa.String(length=64), nullable=False),
        sa.Column("claims", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presentation_requests")),
    )
    op.create_index(
        op.f("ix_presentation_requests_expires_at"),
        "presentation_requests",
        ["expires_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_presentation_requests_requested_by"),
        "presentation_requests",
        ["requested_by"],
        unique=False,
    )
    op.create_table(
        "holder_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("employee_id", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["employee_id"],
            ["civil_servants.employee_id"],
            name=op.f("fk_holder_sessions_employee_id_civil_servants"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_holder_sessions")),
    )
    op.create_index(
        op.f("ix_holder_sessions_expires_at"), "holder_sessions", ["expires_at"], unique=False
    )
    op.create_table(
        "correction_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("employee_id", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.String(length=36), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["employee_id"],
            ["civil_servants.employee_id"],
            name=op.f("fk_correction_requests_employee_id_civil_servants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction_requests")),
    )
    op.create_index(
        op.f("ix_correction_requests_employee_id"),
        "correction_requests",
        ["employee_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_correction_requests_status"), "correction_requests", ["status"], unique=False
    )


def downgrade() -> None:
    for table, indexes in (
        (
            "correction_requests",
            ("ix_correction_requests_status", "ix_correction_requests_employee_id"),
        ),
        ("holder_sessions", ("ix_holder_sessions_expires_at",)),
        (
            "presentation_requests",
            ("ix_presentation_requests_requested_by", "ix_presentation_requests_expires_at"),
        ),
        ("wallet_nonces", ("ix_wallet_nonces_expires_at",)),
        ("wallet_offers", ("ix_wallet_offers_employee_id",)),
    ):
        for index in indexes:
            op.drop_index(index, table_name=table)
        op.drop_table(table)
    # A person with a live card and a live phone credential cannot keep both under the old
    # index: the phone credentials go first (a downgrade loses the phone, never the card).
    op.execute("DELETE FROM credentials WHERE kind = 'phone'")
    with op.batch_alter_table("credentials") as batch:
        batch.drop_index("uq_credentials_one_live", sqlite_where=_LIVE, postgresql_where=_LIVE)
        batch.create_index(
            "uq_credentials_one_live",
            ["employee_id"],
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )
        batch.drop_column("kind")
