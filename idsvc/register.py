"""The register of civil servants, fed by HR exports.

Importing is idempotent (unchanged rows are recognised by their content hash), all-or-nothing
for the rows that parse (one transaction), and a status change in HR reaches the person's live
credentials in that same transaction: retired, dismissed and deceased revoke; suspended
suspends; active again reinstates what an HR suspension had suspended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc import audit
from idsvc.credential_state import HR_SUSPENSION, apply_holder_status
from idsvc.errors import UnknownEmployee
from idsvc.hr_csv import HrRecord, RowReject, parse_hr_csv
from idsvc.storage.tables import CivilServantRow, StatusHistoryRow

ACTIVE = "active"
INACTIVE_STATUSES = frozenset({"retired", "dismissed", "deceased"})
_CHUNK = 500

__all__ = ["ACTIVE", "HR_SUSPENSION", "INACTIVE_STATUSES", "ImportReport", "import_hr"]


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    status_changes: int = 0
    credentials_changed: int = 0
    rejects: list[RowReject] = field(default_factory=list)
    file_sha256: str = ""


def _apply(row: CivilServantRow, rec: HrRecord, digest: str, now: datetime) -> None:
    row.name_local = rec.name_local
    row.name_latin = rec.name_latin
    row.sex = rec.sex
    row.date_of_birth = rec.date_of_birth
    row.ministry = rec.ministry
    row.unit = rec.unit
    row.position = rec.position
    row.grade = rec.grade
    row.category = str(rec.category)
    row.status = str(rec.status)
    row.status_date = rec.status_date
    row.hire_date = rec.hire_date
    row.content_hash = digest
    row.updated_at = now


def _chunks(records: list[HrRecord]) -> Iterable[list[HrRecord]]:
    for start in range(0, len(records), _CHUNK):
        yield records[start : start + _CHUNK]


def import_hr(
    session: Session,
    data: bytes,
    *,
    source_name: str,
    actor: str,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Parse and store an HR export; rejects are reported, good rows land."""
    parsed = parse_hr_csv(data, today=now.date())
    report = ImportReport(
        rows=len(parsed.records) + len(parsed.rejects),
        rejects=list(parsed.rejects),
        file_sha256=hashlib.sha256(data).hexdigest(),
    )
    source = f"hr-import:{report.file_sha256[:16]}"
    for chunk in _chunks(parsed.records):
        existing = {
            row.employee_id: row
            for row in session.execute(
                select(CivilServantRow).where(
                    CivilServantRow.employee_id.in_([r.employee_id for r in chunk])
                )
            ).scalars()
        }
        for rec in chunk:
            digest = rec.content_hash()
            row = existing.get(rec.employee_id)
            if row is not None and row.content_hash == digest:
                report.unchanged += 1
                continue
            old_status = row.status if row is not None else None
            if row is None:
                row = CivilServantRow(employee_id=rec.employee_id, created_at=now)
                _apply(row, rec, digest, now)
                session.add(row)
                report.created += 1
            else:
                _apply(row, rec, digest, now)
                report.updated += 1
            if old_status != row.status:
                session.add(
                    StatusHistoryRow(
                        employee_id=rec.employee_id,
                        status=row.status,
                        status_date=rec.status_date,
                        recorded_at=now,
                        source=source,
                    )
                )
                if old_status is not None:
                    report.status_changes += 1
                    session.flush()
                    report.credentials_changed += apply_holder_status(
                        session, rec.employee_id, row.status, actor=actor, now=now
                    )
        if progress is not None:
            progress(len(chunk))
    audit.record(
        session,
        at=now,
        actor=actor,
        action="hr.import",
        target_type="hr_file",
        target_id=report.file_sha256,
        details={
            "source": source_name[-120:],
            "rows": report.rows,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": len(report.rejects),
            "status_changes": report.status_changes,
            "credentials_changed": report.credentials_changed,
        },
    )
    return report


def get_servant(session: Session, employee_id: str) -> CivilServantRow:
    row = session.get(CivilServantRow, employee_id)
    if row is None:
        raise UnknownEmployee(employee_id)
    return row
