"""``POST /v1/hr/records`` over real HTTP, SQLite and PostgreSQL: the same rules and reasons as
``idsvc import-hr``, idempotency keys, scopes."""

from __future__ import annotations

from pathlib import Path

from idsvc.services import Services
from tests.support.http import Api, assert_problem
from tests.support.payroll import RECORDS, add_client, csv_of, hr, sample_records
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

ACTIVE = "LA-MOHA-000101"


def messy_records() -> list[dict[str, str]]:
    """Good changes mixed with rows that break rules (the reasons must match import-hr's)."""
    records = sample_records()
    records[0] = records[0] | {"status": "retired", "status_date": "2026-11-20"}
    records[1] = records[1] | {"date_of_birth": "1971-13-02"}
    records[2] = records[2] | {"name_latin": "=HYPERLINK(1)"}
    records[3] = records[3] | {"employee_id": "not-an-id"}
    records.append(dict(records[4]))  # the same person twice
    records.append(records[5] | {"employee_id": "KH-NEW-000777", "hire_date": "2027-01-01"})
    return records


def test_same_rows_and_reasons_as_import_hr(api: Api, tmp_path: Path) -> None:
    records = messy_records()
    r = api.http.post(RECORDS, json={"records": records}, headers=hr(api))
    assert r.status_code == 200, r.text
    answer = r.json()

    # The reference: the CSV importer on a second, identical register.
    other = make_service(make_settings(tmp_path / "ref", f"sqlite:///{tmp_path / 'ref.sqlite3'}"))
    other.credentials.init(now=NOW, actor="t")
    other.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="t", now=NOW
    )
    report = other.register.import_hr(csv_of(records), source_name="x.csv", actor="t", now=NOW)
    other.infra.db.dispose()
    counts = ("created", "updated", "unchanged", "status_changes")
    assert [answer[k] for k in counts] == [getattr(report, k) for k in counts]
    # Same reasons; a position inside a reason is the record number here, the file's line there
    # (the header is line 1), so "first on line 6" in the file is record 5 in the request.
    assert [(x["employee_id"], x["reason"]) for x in answer["rejected"]] == [
        (rej.employee_id, rej.reason.replace("first on line 6", "first on line 5"))
        for rej in report.rejects
    ]
    assert "first on line 5" in answer["rejected"][3]["reason"]
    # Record numbers point into the request (1-based), not into a file.
    assert [x["record"] for x in answer["rejected"]] == [2, 3, 4, len(records) - 1, len(records)]
    assert (
        api.service.credentials.credentials_of(ACTIVE) == []
    )  # no credential, but the register moved:
    checks = api.http.post(
        "/v1/payroll/checks",
        json={"items": [{"employee_id": ACTIVE}]},
        headers={"authorization": f"Bearer {add_client(api.service, 'Bank', 'payroll')[1]}"},
    )
    assert checks.json()["results"][0]["status"] == "retired"


def test_idempotency_key_replays_and_refuses_another_body(api: Api) -> None:
    auth = hr(api)
    records = sample_records()
    records[0]["status"], records[0]["status_date"] = "suspended", "2026-11-20"
    key = {"idempotency-key": "batch-2026-11-25-001"}
    first = api.http.post(RECORDS, json={"records": records}, headers=auth | key)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    assert first.json()["status_changes"] == 1
    again = api.http.post(RECORDS, json={"records": records}, headers=auth | key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # the first answer, not "12 unchanged"
    without_key = api.http.post(RECORDS, json={"records": records}, headers=auth)
    assert without_key.json()["unchanged"] == len(records)
    records[1]["grade"] = "K8"
    conflict = api.http.post(RECORDS, json={"records": records}, headers=auth | key)
    assert_problem(conflict, 422, "IDEMPOTENCY_CONFLICT")
    # Keys are per client: another HR system may use the same key for its own batch.
    other = api.http.post(RECORDS, json={"records": records}, headers=hr(api, "MoH HR") | key)
    assert other.status_code == 200 and other.json()["updated"] == 1


def test_scope_and_shape(api: Api, service: Services) -> None:
    records = sample_records()
    _, bank_secret = add_client(service, "Bank", "payroll")
    r = api.http.post(
        RECORDS, json={"records": records}, headers={"authorization": f"Bearer {bank_secret}"}
    )
    assert r.status_code == 403
    auth = hr(api)
    r = api.http.post(RECORDS, json={"records": [records[0] | {"salary": "1"}]}, headers=auth)
    assert "salary" in assert_problem(r, 422, "INVALID_HR_RECORDS")["detail"]
    r = api.http.post(RECORDS, json={"records": []}, headers=auth)
    assert_problem(r, 422, "INVALID_REQUEST")
    r = api.http.post(RECORDS, json={"records": [records[0] | {"grade": 7}]}, headers=auth)
    assert_problem(r, 422, "INVALID_REQUEST")
    r = api.http.post(
        RECORDS, content=b"employee_id\n", headers=auth | {"content-type": "text/csv"}
    )
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_record_that_names_nobody_or_omits_new_members_is_judged_like_a_file_row(
    api: Api,
) -> None:
    teacher = next(r for r in sample_records() if r["category"] == "contract_teacher")
    records = [
        {},  # no member at all: rejected by number, like a file row with an empty id
        teacher,  # no contract_end member (an HR system from before it existed): imports
        teacher | {"employee_id": "LA-MOES-009999", "contract_end": ""},  # given empty
    ]
    r = api.http.post(RECORDS, json={"records": records}, headers=hr(api))
    assert r.status_code == 200, r.text
    rejected = {(x["record"], x["reason"]) for x in r.json()["rejected"]}
    assert rejected == {
        (1, "missing employee_id"),
        (3, "missing contract_end (required for category contract_teacher)"),
    }
