"""The controls report as files: JSON (for programs), CSV (for spreadsheets) and HTML (to read).

JSON is the report's fields as they are (dates ISO 8601, rates as fractions). CSV is one table a
spreadsheet can filter, a ``section`` column telling the rows apart:

    summary   one row per ministry and office, and ``total``: active, enrolled, rate, flags
    flag      one row per flagged person and flag
    change    one row per status change of the period, latest reported first
    approval  one row per maker-checker action and outcome, with its count

Every text cell is ``spreadsheet_safe``: a register value never runs as a formula.
The HTML page is ``controls_html``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date
from typing import Any, Final

from idsvc.formats.text_rules import spreadsheet_safe
from idsvc.reports.controls import FLAGS, ControlsReport, Group

CSV_COLUMNS: Final = (
    "section",
    "ministry",
    "office",
    "employee_id",
    "code",
    "count",
    "active",
    "enrolled",
    "enrolment_rate",
    "status",
    "status_date",
    "recorded_on",
    "lag_days",
    "pay_periods_at_risk",
    "retroactive",
)


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def as_json(report: ControlsReport) -> dict[str, Any]:
    """The report as JSON-ready data (``GET /v1/reports/controls``)."""
    data = _plain(dataclasses.asdict(report))
    for group, source in zip(
        [*data["groups"], data["total"]], [*report.groups, report.total], strict=True
    ):
        group["enrolment_rate"] = round(source.enrolment_rate, 4)
    data["late"] = [_plain(dataclasses.asdict(c)) for c in report.late]
    return dict(data)


def _summary(section: str, group: Group) -> dict[str, object]:
    row: dict[str, object] = {
        "section": section,
        "ministry": group.ministry,
        "office": group.office,
        "active": group.active,
        "enrolled": group.enrolled,
        "enrolment_rate": f"{group.enrolment_rate:.4f}",
    }
    row["count"] = sum(group.flags.values())
    row["code"] = " ".join(f"{f}={group.flags[f]}" for f in FLAGS if f in group.flags)
    return row


def as_csv(report: ControlsReport) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n", restval="")
    writer.writeheader()
    rows: list[dict[str, object]] = [_summary("summary", g) for g in report.groups]
    rows.append(_summary("total", report.total))
    rows += [
        {
            "section": "flag",
            "ministry": f.ministry,
            "office": f.office,
            "employee_id": f.employee_id,
            "code": f.flag,
        }
        for f in report.flagged
    ]
    rows += [
        {
            "section": "change",
            "ministry": c.ministry,
            "office": c.office,
            "employee_id": c.employee_id,
            "status": c.status,
            "status_date": c.status_date.isoformat(),
            "recorded_on": c.recorded_on.isoformat(),
            "lag_days": c.lag_days,
            "pay_periods_at_risk": c.pay_periods_at_risk,
            "retroactive": "yes" if c.retroactive else "no",
        }
        for c in report.changes
    ]
    rows += [
        {"section": "approval", "code": f"{action}:{outcome}", "count": count}
        for action, outcomes in report.approvals.items()
        for outcome, count in outcomes.items()
    ]
    for row in rows:
        writer.writerow(
            {k: spreadsheet_safe(v) if isinstance(v, str) else v for k, v in row.items()}
        )
    # A BOM, so that a spreadsheet opens Lao and Khmer names as UTF-8.
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")
