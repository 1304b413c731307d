"""People's offices and local-script fields

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

- ``civil_servants``: ``office`` (operators act only for the people of their office),
  ``ministry_local`` and ``position_local`` (the card face's national-script lines). All
  nullable: rows imported before keep their content hash, and a person with no office recorded
  can be acted on by national operators only.
- ``desks``: ``failed_logins`` and ``login_locked_until``: a desk that sends too many failed
  logins is locked itself, before any operator account it tries.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("civil_servants") as batch:
        batch.add_column(sa.Column("office", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("ministry_local", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("position_local", sa.String(length=255), nullable=True))
    with op.batch_alter_table("desks") as batch:
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("login_locked_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("desks") as batch:
        batch.drop_column("login_locked_until")
        batch.drop_column("failed_logins")
    with op.batch_alter_table("civil_servants") as batch:
        batch.drop_column("position_local")
        batch.drop_column("ministry_local")
        batch.drop_column("office")
