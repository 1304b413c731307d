"""Card key attestation

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

- ``credentials``: ``key_attestation`` (how the card key was proven to be generated on the
  card: ``piv-attest``, or NULL when not checked) and ``key_attested_by`` (the subject of the
  maker CA the attestation chained to). Nullable: credentials issued before, and those issued
  where no attestation CA is configured, say nothing about their key's origin.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("key_attestation", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("key_attested_by", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("key_attested_by")
        batch.drop_column("key_attestation")
