"""The register feature: HR imports, HR sync from the ministry's system, and hand corrections
of a person's HR status. One method per command or route, one transaction each.

A hand correction is sensitive: it goes through the maker-checker gate
(``idsvc.staff.maker_checker``), which performs it with ``perform_hr_correction``, whether at
once or once approved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cached_property
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from idsvc.credentials.infrastructure import Infrastructure
from idsvc.errors import CorrectionRefused, NotPermitted
from idsvc.formats.hr_csv import EmploymentStatus
from idsvc.register import records
from idsvc.register.hr_sync import HrSync
from idsvc.staff import approval_actions
from idsvc.staff.maker_checker import Done, MakerChecker, Pending
from idsvc.staff.operators import Actor


class Register:
    def __init__(self, infra: Infrastructure, gate: MakerChecker) -> None:
        self.infra = infra
        self.gate = gate

    @cached_property
    def hr_sync(self) -> HrSync:
        """HR sync (``PUT /hr/records``): idempotent upserts from the ministry's system."""
        return HrSync(self.infra.db)

    def import_hr(
        self,
        data: bytes | BinaryIO,
        *,
        source_name: str,
        actor: str,
        now: datetime,
        progress: Callable[[int], None] | None = None,
    ) -> records.ImportReport:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return records.import_hr(
                session,
                data,
                source_name=source_name,
                actor=actor,
                now=now,
                progress=progress,
                max_file_bytes=self.infra.settings.hr_max_file_mb * 1024 * 1024,
            )

    def correct_status(
        self,
        employee_id: str,
        *,
        status: str,
        reason: str,
        by: Actor | None,
        now: datetime,
        status_date: date | None = None,
    ) -> str | Pending:
        """Correct a person's HR status by hand (their credentials follow at once)."""
        if status not in {s.value for s in EmploymentStatus}:
            raise NotPermitted(f"unknown employment status {status!r}")
        if len(reason.strip()) < records.MIN_REASON_CHARS:
            # Refuse at request time: an approver should never be handed an unusable request.
            raise CorrectionRefused(
                f"give the reason for the correction (at least {records.MIN_REASON_CHARS} "
                "characters)"
            )
        done = self.gate.act(
            "hr_correction",
            employee_id,
            {
                "status": status,
                "reason": reason,
                "status_date": (status_date or now.date()).isoformat(),
            },
            by=by,
            roles=approval_actions.ACTIONS["hr_correction"],
            now=now,
        )
        return done if isinstance(done, Pending) else done.outcome


def perform_hr_correction(
    infra: Infrastructure,
    session: Session,
    employee_id: str,
    params: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> Done:
    # One set of rules for every correction: the register's (reason, dates, hash, feed).
    status_date = date.fromisoformat(params.get("status_date") or now.date().isoformat())
    old, new = records.correct_status(
        session,
        employee_id,
        params["status"],
        status_date=status_date,
        reason=str(params.get("reason", "")),
        actor=actor,
        now=now,
    )
    return Done(f"{employee_id}: {old} -> {new}; credentials follow the new status", (old, new))
