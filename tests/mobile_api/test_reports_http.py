"""``GET /v1/reports/controls`` over real HTTP (SQLite and PostgreSQL): admin clients only, JSON
by default and CSV on ``Accept: text/csv``, the same numbers both ways."""

from __future__ import annotations

import csv
import io

from tests.support.http import Api, assert_problem
from tests.support.payroll import add_client


def test_the_report_for_admins_as_json_and_csv(api: Api) -> None:
    _, admin = add_client(api.service, "controller", "admin")
    _, bank = add_client(api.service, "bank-a", "payroll")
    auth = {"authorization": f"Bearer {admin}"}
    r = api.http.get("/v1/reports/controls", headers=auth)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["total"]["active"] > 0 and data["period_start"].endswith("-01")
    as_csv = api.http.get("/v1/reports/controls", headers=auth | {"accept": "text/csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert (
        int(next(r for r in rows if r["section"] == "total")["active"]) == (data["total"]["active"])
    )
    assert_problem(
        api.http.get("/v1/reports/controls", headers={"authorization": f"Bearer {bank}"}),
        403,
        "INSUFFICIENT_SCOPE",
    )
    assert_problem(
        api.http.get("/v1/reports/controls", params={"as_of": "2999-01-01"}, headers=auth),
        409,
        "REPORT_REFUSED",
    )
