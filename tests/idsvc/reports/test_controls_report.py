"""The monthly controls report from a real register, on SQLite and PostgreSQL: a death reported
40 days late shows its lag, three pay periods at risk and counts as retroactive; the report is a
read (the register is byte for byte the same after) that leaves one audit event; and the
`idsvc report controls` command writes it as HTML, CSV and JSON (real processes)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from idsvc.errors import ReportRefused
from idsvc.services import Services
from idsvc.storage.tables import AuditEventRow, CivilServantRow, StatusHistoryRow
from tests.support.cli_runner import Cli
from tests.support.payroll import set_status
from tests.support.settings import NOW, PASSPHRASE, SAMPLE_CSV

LATE = "LA-MOHA-000102"  # died 40 days before HR said so
ON_TIME = "KH-MCS-010002"  # retired, reported two days later


@pytest.fixture
def reported(service: Services) -> Services:
    set_status(service, LATE, "deceased", (NOW.date() - timedelta(days=40)).isoformat())
    set_status(service, ON_TIME, "retired", (NOW.date() - timedelta(days=2)).isoformat())
    return service


def snapshot(service: Services) -> list[object]:
    with service.infra.db.transaction() as session:
        people = session.execute(select(CivilServantRow).order_by(CivilServantRow.employee_id))
        history = session.execute(select(StatusHistoryRow).order_by(StatusHistoryRow.id))
        return [
            [(p.employee_id, p.status, p.content_hash) for (p,) in people],
            [(h.id, h.status, h.status_date) for (h,) in history],
        ]


def test_a_late_death_shows_its_lag_and_the_pay_periods_paid_to_the_dead(
    reported: Services,
) -> None:
    before = snapshot(reported)
    report = reported.reports.controls(as_of=None, ministry=None, actor="controller", now=NOW)
    assert snapshot(reported) == before
    by_person = {c.employee_id: c for c in report.changes}
    assert set(by_person) == {LATE, ON_TIME}  # the first import records people, not changes
    late, on_time = by_person[LATE], by_person[ON_TIME]
    assert (late.lag_days, late.pay_periods_at_risk, late.retroactive) == (40, 3, True)
    assert (on_time.lag_days, on_time.pay_periods_at_risk, on_time.retroactive) == (2, 1, False)
    assert [c.employee_id for c in report.late] == [LATE]
    assert report.median_lag_days == 21.0 and report.p90_lag_days == 40.0
    assert report.retroactive_share == 0.5
    this_month = report.lag_by_month[-1]
    assert (this_month.month, this_month.changes) == (f"{NOW:%Y-%m}", 2)
    # Active people of the sample, per ministry, none enrolled yet (no photo, no card).
    assert report.total.active == sum(g.active for g in report.groups) > 0
    assert report.total.enrolled == 0
    with reported.infra.db.transaction() as session:
        events = session.scalars(
            select(AuditEventRow.action).where(AuditEventRow.action == "report.controls")
        ).all()
    assert events == ["report.controls"]


def test_a_report_of_a_day_to_come_is_refused(reported: Services) -> None:
    with pytest.raises(ReportRefused, match="in the future"):
        reported.reports.controls(
            as_of=NOW.date() + timedelta(days=1), ministry=None, actor="c", now=NOW
        )


def test_one_ministry_only(reported: Services) -> None:
    report = reported.reports.controls(
        as_of=None, ministry="Ministry of Home Affairs", actor="c", now=NOW
    )
    assert {g.ministry for g in report.groups} == {"Ministry of Home Affairs"}
    assert [c.employee_id for c in report.changes] == [LATE]


def test_the_command_writes_html_csv_and_json(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'idsvc.sqlite3'}")
    assert cli("init").returncode == 0
    assert cli("import-hr", str(SAMPLE_CSV)).returncode == 0
    for suffix in ("html", "csv", "json"):
        out = tmp_path / f"controls.{suffix}"
        done = cli("report", "controls", "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert "active" in done.stdout and out.stat().st_size > 0
    page = (tmp_path / "controls.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    rows = list(csv.DictReader(io.StringIO((tmp_path / "controls.csv").read_text("utf-8-sig"))))
    total = next(r for r in rows if r["section"] == "total")
    data = json.loads((tmp_path / "controls.json").read_text(encoding="utf-8"))
    assert int(total["active"]) == data["total"]["active"] > 0
    refused = cli("report", "controls", "-o", str(tmp_path / "controls.pdf"))
    assert refused.returncode == 1 and ".html, .csv, .json" in refused.stderr
    future = cli("report", "controls", "--as-of", "2999-01-01", "-o", str(tmp_path / "x.json"))
    assert future.returncode == 23 and "in the future" in future.stderr
    assert PASSPHRASE not in done.stdout + done.stderr
