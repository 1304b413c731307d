"""The reports feature: the monthly payroll-controls report, for the CLI and the API.

A report is a read: one transaction that changes nothing in the register, and one audit event
(``report.controls``) that says who produced which report, so that who looked at the lists of
flagged people is on record.
"""

from __future__ import annotations

from datetime import date, datetime

from idsvc.audit import chain as audit
from idsvc.bank.payroll_controls import PayrollControls
from idsvc.credentials.infrastructure import Infrastructure
from idsvc.errors import ReportRefused
from idsvc.reports.controls import ControlsReport, build_report


class Reports:
    def __init__(self, infra: Infrastructure) -> None:
        self.infra = infra

    def controls(
        self, *, as_of: date | None, ministry: str | None, actor: str, now: datetime
    ) -> ControlsReport:
        """The report as of ``as_of`` (default: ``now``'s date; a later day is refused)."""
        day = as_of or now.date()
        if day > now.date():
            raise ReportRefused(
                f"--as-of {day.isoformat()} is in the future: a report is of days past"
            )
        self.infra.require_ready()
        settings = self.infra.settings
        with self.infra.db.transaction() as session:
            report = build_report(
                session,
                as_of=day,
                controls=PayrollControls.from_settings(settings),
                ministry=ministry,
                pay_period_days=settings.pay_period_days,
            )
            audit.record(
                session,
                at=now,
                actor=actor,
                action="report.controls",
                target_type="report",
                target_id=f"controls:{day.isoformat()}",
                details={
                    "ministry": ministry,
                    "active": report.total.active,
                    "flagged": len(report.flagged),
                    "changes": len(report.changes),
                },
            )
        return report
