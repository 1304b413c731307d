"""API clients bound to a TLS client certificate (mutual TLS at the proxy)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, so adding it is instant on a live PostgreSQL table (no rewrite): existing
    # clients keep authenticating with their secret alone.
    op.add_column("api_clients", sa.Column("cert_sha256", sa.String(length=64), nullable=True))
    # Unique: the proxy's certificate header must name one client, never two.
    op.create_index("ix_api_clients_cert_sha256", "api_clients", ["cert_sha256"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_api_clients_cert_sha256", table_name="api_clients")
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_column("cert_sha256")
