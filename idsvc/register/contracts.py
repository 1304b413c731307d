"""Contracts that end: the day after a contract's last day, its holder stops being active.

Contract officials, contract teachers and temporary staff are employed until a date HR gives
(``contract_end`` in the HR export). Nobody has to import a file on that day: the sweep
(``idsvc sweep``) finds every active person whose contract has ended and records the change
through the one HR import (``idsvc.register.records.import_records``), exactly as if HR had
sent the row with status ``contract_ended``: the same locks, status history, audit event,
change-feed event (``employee.contract_ended``), webhook and credential revocation.

The status date is the first day without a contract (the day after ``contract_end``), so the
reporting lag of such a change is the sweep's own delay. A contract that HR extends before the
date changes the stored ``contract_end`` and the sweep leaves the person alone; one extended
after the sweep makes the person active again (``records._refusal`` lets a later end date in).

Dates are compared with the UTC date of ``now``, as every status date of the register is.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.formats.hr_csv import COLUMNS, EmploymentStatus, HrRecord, HrRow
from idsvc.register.records import ImportReport, import_records, record_of
from idsvc.storage.person_locks import lock_servants
from idsvc.storage.tables import CivilServantRow

SOURCE = "sweep: contracts ended"
BATCH = 500


def ended_contracts(session: Session, *, now: datetime, limit: int = BATCH) -> list[str]:
    """Employee ids of active people whose contract ended before ``now``'s date, oldest first."""
    return list(
        session.execute(
            select(CivilServantRow.employee_id)
            .where(
                CivilServantRow.status == EmploymentStatus.ACTIVE,
                CivilServantRow.contract_end < now.date(),
            )
            .order_by(CivilServantRow.contract_end, CivilServantRow.employee_id)
            .limit(limit)
        ).scalars()
    )


def _as_row(record: HrRecord) -> dict[str, str]:
    values = {column: getattr(record, column) for column in COLUMNS}
    return {
        column: value.isoformat() if hasattr(value, "isoformat") else (value or "")
        for column, value in values.items()
    }


def _ended_rows(session: Session, employee_ids: list[str], *, now: datetime) -> Iterator[HrRow]:
    # Locked before they are read: an HR extension or a death that commits between the search
    # and here is what the row is built from, and such a person is left alone.
    locked = lock_servants(session, employee_ids)
    position = 0
    for employee_id in sorted(locked):
        row = locked[employee_id]
        end = row.contract_end
        if row.status != EmploymentStatus.ACTIVE or end is None or end >= now.date():
            continue
        values = _as_row(record_of(row))
        values["status"] = EmploymentStatus.CONTRACT_ENDED.value
        # The first day without a contract; or a later status date HR already gave the person
        # (an export must never go back before what the register holds).
        values["status_date"] = max(end + timedelta(days=1), row.status_date).isoformat()
        position += 1
        yield position, values


def end_contracts_batch(
    session: Session, *, actor: str, now: datetime, limit: int = BATCH
) -> ImportReport | None:
    """End one batch of contracts that are over, as an HR import would; None when none is due.

    Each person is locked before being read, so an HR change that lands first (an extension,
    a death) is what this batch sees, and such a person is left alone."""
    due = ended_contracts(session, now=now, limit=limit)
    if not due:
        return None
    return import_records(
        session,
        _ended_rows(session, due, now=now),
        source_id=f"contracts-{now:%Y%m%dT%H%M%S}",
        source_name=SOURCE,
        actor=actor,
        now=now,
    )
