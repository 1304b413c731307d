"""Contract ends and national ID numbers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

- ``civil_servants.contract_end``: the last day of a contract official's, contract teacher's or
  temporary staff member's contract. The sweep turns it into a status change on that day.
- ``civil_servants.national_id``: the national ID number (normalised: capitals and digits),
  indexed so that the payroll check finds two employee records of one person with an index
  scan. Both nullable: rows imported before keep their content hash.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("civil_servants") as batch:
        batch.add_column(sa.Column("contract_end", sa.Date(), nullable=True))
        batch.add_column(sa.Column("national_id", sa.String(length=32), nullable=True))
        batch.create_index("ix_civil_servants_national_id", ["national_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("civil_servants") as batch:
        batch.drop_index("ix_civil_servants_national_id")
        batch.drop_column("national_id")
        batch.drop_column("contract_end")
