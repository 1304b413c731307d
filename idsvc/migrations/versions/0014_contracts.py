"""Payroll controls: contract ends, national ID numbers, identity keys, the bank of an account

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

- ``civil_servants.contract_end``: the last day of a contract official's, contract teacher's or
  temporary staff member's contract. The sweep turns it into a status change on that day.
- ``civil_servants.national_id``: the national ID number (normalised: capitals and digits),
  indexed so that the payroll check finds two employee records of one person with an index
  scan. Both nullable: rows imported before keep their content hash.
- ``civil_servants.name_key``: the Latin name as compared for duplicates, filled here for the
  rows already stored, with an index on (name_key, date_of_birth, sex).
- ``status_history.recorded_at`` indexed: the monthly controls report reads one period.
- ``payroll_accounts.client_id``: the bank that sent an account (NULL for rows from before),
  indexed with the employee: a person's accounts at one bank, in the order they were first
  seen, tell when a salary moved (the ``ACCOUNT_CHANGED`` flag).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# The rule as it stands when this revision runs; rows imported later get it from the import.
from idsvc.formats.text_rules import name_key

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("civil_servants") as batch:
        batch.add_column(sa.Column("contract_end", sa.Date(), nullable=True))
        batch.add_column(sa.Column("national_id", sa.String(length=32), nullable=True))
        batch.create_index("ix_civil_servants_national_id", ["national_id"], unique=False)
        batch.add_column(sa.Column("name_key", sa.String(length=255), nullable=True))
    people = sa.table(
        "civil_servants", sa.column("employee_id", sa.String), sa.column("name_latin", sa.String)
    )
    keyed = sa.table("civil_servants", sa.column("employee_id"), sa.column("name_key"))
    connection = op.get_bind()
    rows = connection.execute(sa.select(people.c.employee_id, people.c.name_latin)).all()
    for start in range(0, len(rows), 5000):
        connection.execute(
            keyed.update()
            .where(keyed.c.employee_id == sa.bindparam("id"))
            .values(name_key=sa.bindparam("key")),
            [{"id": e, "key": name_key(n)} for e, n in rows[start : start + 5000]],
        )
    op.create_index(
        "ix_civil_servants_identity",
        "civil_servants",
        ["name_key", "date_of_birth", "sex"],
        unique=False,
    )
    op.create_index(
        "ix_status_history_recorded_at", "status_history", ["recorded_at"], unique=False
    )
    with op.batch_alter_table("payroll_accounts") as batch:
        batch.add_column(sa.Column("client_id", sa.String(length=32), nullable=True))
        batch.create_index(
            "ix_payroll_accounts_client_employee", ["client_id", "employee_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payroll_accounts") as batch:
        batch.drop_index("ix_payroll_accounts_client_employee")
        batch.drop_column("client_id")
    op.drop_index("ix_status_history_recorded_at", table_name="status_history")
    op.drop_index("ix_civil_servants_identity", table_name="civil_servants")
    with op.batch_alter_table("civil_servants") as batch:
        batch.drop_column("name_key")
        batch.drop_index("ix_civil_servants_national_id")
        batch.drop_column("national_id")
        batch.drop_column("contract_end")
