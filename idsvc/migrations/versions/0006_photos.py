"""holder photos (card face and QR)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photos",
        sa.Column("employee_id", sa.String(length=64), nullable=False),
        sa.Column("face_jpeg", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("qr_image", sa.LargeBinary(), nullable=False),
        sa.Column("qr_media_type", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["employee_id"],
            ["civil_servants.employee_id"],
            name=op.f("fk_photos_employee_id_civil_servants"),
        ),
        sa.PrimaryKeyConstraint("employee_id", name=op.f("pk_photos")),
    )


def downgrade() -> None:
    op.drop_table("photos")
