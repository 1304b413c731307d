"""``idsvc report controls``: the monthly payroll-controls report, as a file.

The format follows the file's extension: ``.html`` (one self-contained page to open from a USB
stick, read on a phone or print on A4), ``.csv`` (one table for a spreadsheet) or ``.json``.
Producing a report is recorded in the audit log (``report.controls``). Exit codes: 23 for an
``--as-of`` day in the future, 1 for an output name with another extension, and as for every
command (3 not initialised, 10 database unavailable).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from idsvc.cli.app import app
from idsvc.cli.common import actor, console, err_console, now, services
from idsvc.cli.errors import reported

report_app = typer.Typer(
    help="Reports for the ministry's payroll controllers.", no_args_is_help=True
)
app.add_typer(report_app, name="report")

FORMATS = (".html", ".csv", ".json")


@report_app.command("controls")
def controls(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="file to write: .html, .csv or .json")
    ],
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="the day reported on (default today)"),
    ] = None,
    ministry: Annotated[
        str | None, typer.Option("--ministry", help="only this ministry, as HR names it")
    ] = None,
) -> None:
    """Payroll controls of the month up to a day: enrolment, ghost-worker flags, late status
    changes and their pay periods at risk, retroactive changes, maker-checker outcomes."""
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        err_console.print(f"error: the output must end in {', '.join(FORMATS)}")
        raise typer.Exit(1)
    with reported():
        svc = services()
        at = now()
        day: date | None = as_of.date() if as_of else None
        report = svc.reports.controls(
            as_of=day, ministry=ministry, actor=actor(svc.settings), now=at
        )
        from idsvc.reports import controls_output

        if suffix == ".csv":
            data = controls_output.as_csv(report)
        elif suffix == ".json":
            import json

            data = json.dumps(controls_output.as_json(report), ensure_ascii=False).encode()
        else:
            from idsvc.reports.controls_html import as_html

            data = as_html(report, issuer_name=svc.settings.issuer_name, generated_at=at)
        output.write_bytes(data)
        total = report.total
        console.print(
            f"{output}: {total.active} active, {total.enrolled} enrolled, "
            f"{len(report.flagged)} flags, {len(report.changes)} status changes "
            f"({len(report.late)} reported late)"
        )
