"""Issue 6, defect 3 and the register/storage/audit weaknesses, on SQLite and PostgreSQL:
a stale HR export cannot bring anyone back; leaving deceased/dismissed takes an audited
correction; bidi controls and oversized rows are rejected row by row; files are streamed and
capped; the audit chain vouches for stored state; read-only commands create nothing."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from idsvc.audit.chain import AuditStateMismatch
from idsvc.errors import CorrectionRefused, HolderNotEligible
from idsvc.formats.hr_csv import (
    COLUMNS,
    MAX_ROW_BYTES,
    OPTIONAL_COLUMNS,
    HrFileError,
    HrRow,
    read_hr_csv,
)
from idsvc.register.records import import_records
from idsvc.services import Services
from idsvc.storage.db import StorageReadOnly
from idsvc.storage.tables import CivilServantRow, CredentialRow
from idsvc.verification.rules import Reason
from tests.support.cli_runner import Cli
from tests.support.settings import NOW, make_service, make_settings

PERSON = "LA-MOHA-000200"
BASE = {
    "employee_id": PERSON,
    "name_local": "ບຸນມີ ສີຫາລາດ",
    "name_latin": "Bounmy Sihalath",
    "sex": "M",
    "date_of_birth": "1980-05-17",
    "ministry": "Ministry of Home Affairs",
    "unit": "Department of Personnel",
    "position": "Officer",
    "grade": "K3",
    "category": "civil_servant",
    "status": "active",
    "status_date": "2005-10-01",
    "hire_date": "2005-10-01",
    "office": "Vientiane",
    "ministry_local": "",
    "position_local": "",
    "contract_end": "",
    "national_id": "",
}


def csv_of(*rows: dict[str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([{**BASE, **r}[c] for c in COLUMNS])
    return out.getvalue().encode("utf-8")


def status_of(service: Services, employee_id: str = PERSON) -> str:
    with service.infra.db.transaction() as s:
        row = s.get(CivilServantRow, employee_id)
        assert row is not None
        return row.status


# -- defect 3: a stale export -----------------------------------------------------------------


def test_stale_export_cannot_bring_the_dead_back(service: Services) -> None:
    old = csv_of({"status": "active", "status_date": "2005-10-01"})
    death = csv_of({"status": "deceased", "status_date": "2026-01-01"})
    service.register.import_hr(old, source_name="old.csv", actor="hr", now=NOW)
    view = service.credentials.issue(PERSON, actor="desk", now=NOW)
    service.register.import_hr(death, source_name="death.csv", actor="hr", now=NOW)
    assert service.verification.verify(view.token, now=NOW).reasons == (
        Reason.REVOKED,
        Reason.HOLDER_INACTIVE,
    )

    report = service.register.import_hr(old, source_name="old.csv", actor="hr", now=NOW)
    assert status_of(service) == "deceased"
    assert [(r.line, r.employee_id) for r in report.rejects] == [(2, PERSON)]
    assert "older than the register" in report.rejects[0].reason
    with pytest.raises(HolderNotEligible):
        service.credentials.issue(PERSON, actor="desk", now=NOW)


def test_newer_dated_row_cannot_leave_deceased_or_dismissed(service: Services) -> None:
    for final in ("deceased", "dismissed"):
        person = {"employee_id": f"LA-MOHA-00030{len(final)}"}
        service.register.import_hr(
            csv_of(person | {"status": final, "status_date": "2026-01-01"}),
            source_name="a.csv",
            actor="hr",
            now=NOW,
        )
        report = service.register.import_hr(
            csv_of(person | {"status": "active", "status_date": "2026-06-01"}),
            source_name="b.csv",
            actor="hr",
            now=NOW,
        )
        assert len(report.rejects) == 1 and "correct-status" in report.rejects[0].reason
        assert status_of(service, person["employee_id"]) == final


def test_a_newer_export_still_applies(service: Services) -> None:
    service.register.import_hr(csv_of({}), source_name="a.csv", actor="hr", now=NOW)
    report = service.register.import_hr(
        csv_of({"status": "retired", "status_date": "2026-02-01"}),
        source_name="b.csv",
        actor="hr",
        now=NOW,
    )
    assert report.rejects == [] and report.status_changes == 1
    assert status_of(service) == "retired"


def test_correction_with_a_reason_is_the_way_out_and_is_audited(service: Services) -> None:
    service.register.import_hr(
        csv_of({"status": "deceased", "status_date": "2026-01-01"}),
        source_name="d",
        actor="hr",
        now=NOW,
    )
    with pytest.raises(CorrectionRefused, match="reason"):
        service.register.correct_status(
            PERSON, status="active", status_date=NOW.date(), reason=" ", by=None, now=NOW
        )
    with pytest.raises(CorrectionRefused, match="future"):
        service.register.correct_status(
            PERSON,
            status="active",
            status_date=NOW.date() + timedelta(days=1),
            reason="death record was for a namesake",
            by=None,
            now=NOW,
        )
    with pytest.raises(CorrectionRefused, match="older"):
        service.register.correct_status(
            PERSON,
            status="active",
            status_date=date(2025, 1, 1),
            reason="death record was for a namesake",
            by=None,
            now=NOW,
        )
    assert status_of(service) == "deceased"
    done = service.register.correct_status(
        PERSON,
        status="active",
        status_date=NOW.date(),
        reason="death record was for a namesake",
        by=None,
        now=NOW,
    )
    assert done == f"{PERSON}: deceased -> active; credentials follow the new status"
    assert service.credentials.issue(PERSON, actor="desk", now=NOW).state == "live"
    # The wrong file again: older than the correction, so refused as stale.
    report = service.register.import_hr(
        csv_of({"status": "deceased", "status_date": "2026-01-01"}),
        source_name="d",
        actor="hr",
        now=NOW,
    )
    assert len(report.rejects) == 1 and status_of(service) == "active"
    service.audit.verify_chain()  # the correction is in the chain and the state agrees with it


# -- the same use case for parsed records (the HR API) ------------------------------------------


def test_import_records_applies_the_same_rules_with_positions(service: Services) -> None:
    rows: list[HrRow] = [
        (1, BASE | {"employee_id": "LA-MOHA-000401"}),
        (2, BASE | {"employee_id": "LA-MOHA-000402", "name_latin": "Evil\u202eName"}),
        (3, BASE | {"employee_id": "LA-MOHA-000401"}),
        (4, BASE | {"employee_id": "LA-MOHA-000403", "grade": 7}),
        (5, {k: v for k, v in BASE.items() if k != "status"} | {"employee_id": "LA-MOHA-000404"}),
    ]
    with service.infra.db.transaction() as session:
        report = import_records(
            session,
            rows,
            source_id="api-batch-1",
            source_name="POST /v1/hr/records",
            actor="hr",
            now=NOW,
        )
    assert report.created == 1 and report.rows == 5
    assert [(r.line, r.reason) for r in report.rejects] == [
        (2, "bidirectional control character in column name_latin"),
        (3, "duplicate employee_id (first on line 1)"),
        (4, "grade must be text"),
        (5, "missing status"),
    ]


# -- bidi, long fields, row and file caps --------------------------------------------------------


@pytest.mark.parametrize(
    "char",
    ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"],
)
def test_bidirectional_controls_are_rejected_in_hr_rows(char: str) -> None:
    data = csv_of({"name_local": f"ສົມ{char}ພອນ"}, {"employee_id": "LA-MOHA-000201"})
    items = list(read_hr_csv(io.BytesIO(data)))
    from idsvc.formats.hr_csv import check_rows

    checked = list(check_rows(items, today=NOW.date()))
    assert checked[0].reason == "bidirectional control character in column name_local"  # type: ignore[union-attr]
    assert checked[1][1].employee_id == "LA-MOHA-000201"  # type: ignore[index]


def test_a_huge_field_rejects_its_row_only(service: Services) -> None:
    huge = "x" * (200 * 1024)
    data = csv_of(
        {"employee_id": "LA-MOHA-000501"},
        {"employee_id": "LA-MOHA-000502", "unit": huge},
        {"employee_id": "LA-MOHA-000503"},
    )
    report = service.register.import_hr(data, source_name="big.csv", actor="hr", now=NOW)
    assert report.created == 2
    assert [(r.line, r.reason) for r in report.rejects] == [
        (3, f"row longer than {MAX_ROW_BYTES} bytes")
    ]


def test_file_over_the_cap_is_refused_whole_and_nothing_lands(
    tmp_path: Path, sqlite_url: str
) -> None:
    svc = make_service(make_settings(tmp_path / "home", sqlite_url, hr_max_file_mb=1))
    svc.credentials.init(now=NOW, actor="admin")
    rows = [{"employee_id": f"LA-MOHA-{i:06d}"} for i in range(1, 7000)]
    data = csv_of(*rows)
    assert len(data) > 1024 * 1024
    with pytest.raises(HrFileError, match="larger than 1 MiB"):
        svc.register.import_hr(io.BytesIO(data), source_name="huge.csv", actor="hr", now=NOW)
    with svc.infra.db.transaction() as s:
        assert s.execute(select(CivilServantRow)).first() is None
    svc.infra.db.dispose()


def _generated(rows: int) -> Iterator[bytes]:
    yield (",".join(COLUMNS) + "\n").encode()
    for i in range(rows):
        yield (
            ",".join({**BASE, "employee_id": f"LA-MOHA-{i:07d}"}[c] for c in COLUMNS) + "\n"
        ).encode()


def test_reading_streams_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("wb") as f:
        for chunk in _generated(25_000):
            f.write(chunk)
    size = path.stat().st_size
    assert size > 4 * 1024 * 1024
    tracemalloc.start()
    with path.open("rb") as f:
        count = sum(1 for _ in read_hr_csv(f))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 25_000
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte file"


# -- the audit chain vouches for state ------------------------------------------------------------


def test_audit_verify_names_a_credential_edited_in_the_database(service: Services) -> None:
    view = service.credentials.issue("LA-MOHA-000101", actor="desk", now=NOW)
    service.credentials.revoke(view.id, reason="card stolen", by=None, now=NOW)
    service.audit.verify_chain()
    with service.infra.db.transaction() as s:
        # an edit made in the database itself, not through the service's session
        s.connection().execute(
            update(CredentialRow).where(CredentialRow.id == view.id).values(state="live")
        )
    assert service.verification.verify(
        view.token, now=NOW
    ).valid  # the tampering fools verification...
    with pytest.raises(AuditStateMismatch) as info:
        service.audit.verify_chain()  # ...but not the audit
    assert f"credential {view.id}" in str(info.value) and "'revoked'" in str(info.value)


def test_audit_verify_names_a_person_edited_in_the_database(service: Services) -> None:
    service.register.import_hr(
        csv_of({"status": "deceased", "status_date": "2026-01-01"}),
        source_name="d",
        actor="hr",
        now=NOW,
    )
    with service.infra.db.transaction() as s:
        s.execute(
            update(CivilServantRow)
            .where(CivilServantRow.employee_id == PERSON)
            .values(status="active")
        )
    with pytest.raises(AuditStateMismatch, match=f"person {PERSON} is stored as 'active'"):
        service.audit.verify_chain()


def test_audit_verify_names_a_forged_status_history(service: Services) -> None:
    with service.infra.db.transaction() as s:
        s.execute(
            text("UPDATE status_history SET status = 'active' WHERE employee_id = 'LA-MOF-002210'")
        )
        s.execute(
            update(CivilServantRow)
            .where(CivilServantRow.employee_id == "LA-MOF-002210")
            .values(status="active")
        )
    with pytest.raises(AuditStateMismatch, match="status history of import"):
        service.audit.verify_chain()


def test_cli_audit_verify_exits_16_for_tampered_state(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path / "home", sqlite_url)
    svc = make_service(settings)
    svc.credentials.init(now=NOW, actor="admin")
    svc.register.import_hr(csv_of({}), source_name="a", actor="hr", now=NOW)
    view = svc.credentials.issue(PERSON, actor="desk", now=NOW)
    with svc.infra.db.transaction() as s:
        s.connection().execute(
            update(CredentialRow).where(CredentialRow.id == view.id).values(state="suspended")
        )
    svc.infra.db.dispose()
    r = Cli(tmp_path / "home", sqlite_url)("audit", "verify")
    assert r.returncode == 16, r.stderr
    assert view.id in r.stderr


# -- storage: only init creates a database; read-only is said as such -----------------------------


def test_read_only_command_on_a_mistyped_path_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "idsvc.sqlite3"
    svc = make_service(make_settings(tmp_path / "home", f"sqlite:///{missing}"))
    with pytest.raises(Exception, match="run `idsvc init`"):
        svc.credentials.credentials_of(PERSON)
    svc.infra.db.dispose()
    assert not missing.parent.exists()
    r = Cli(tmp_path / "home", f"sqlite:///{missing}")("credentials", PERSON)
    assert r.returncode == 3, r.stderr
    assert not missing.parent.exists()


def test_read_only_database_is_named_and_data_stays(tmp_path: Path, db_url: str) -> None:
    svc = make_service(make_settings(tmp_path / "home", db_url))
    svc.credentials.init(now=NOW, actor="admin")
    svc.register.import_hr(csv_of({}), source_name="a", actor="hr", now=NOW)
    svc.infra.db.dispose()
    if db_url.startswith("sqlite"):
        path = db_url.removeprefix("sqlite:///")
        ro_url = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:
        ro_url = db_url + "%20-cdefault_transaction_read_only%3Don"
    ro = make_service(make_settings(tmp_path / "home", ro_url))
    with pytest.raises(StorageReadOnly, match="read-only"):
        ro.credentials.issue(PERSON, actor="desk", now=NOW)
    ro.infra.db.dispose()
    again = make_service(make_settings(tmp_path / "home", db_url))
    assert again.credentials.credentials_of(PERSON) == []
    assert status_of(again) == "active"
    again.infra.db.dispose()


# -- offices and the local-script fields (issue 16) ---------------------------------------------


def _person(service: Services, employee_id: str = PERSON) -> CivilServantRow:
    with service.infra.db.transaction() as s:
        row = s.get(CivilServantRow, employee_id)
        assert row is not None
        s.expunge(row)
        return row


def test_office_and_local_fields_are_stored_and_a_change_of_office_is_imported(
    service: Services,
) -> None:
    fields = {"ministry_local": "ກະຊວງພາຍໃນ", "position_local": "ພະນັກງານ"}
    first = service.register.import_hr(csv_of(fields), source_name="hr.csv", actor="hr", now=NOW)
    assert first.created == 1
    row = _person(service)
    assert (row.office, row.ministry_local, row.position_local) == (
        "Vientiane",
        "ກະຊວງພາຍໃນ",
        "ພະນັກງານ",
    )
    again = service.register.import_hr(csv_of(fields), source_name="hr.csv", actor="hr", now=NOW)
    assert again.unchanged == 1 and again.updated == 0
    moved = service.register.import_hr(
        csv_of(fields | {"office": "Savannakhet"}), source_name="hr.csv", actor="hr", now=NOW
    )
    assert moved.updated == 1 and _person(service).office == "Savannakhet"
    renamed = service.register.import_hr(
        csv_of(fields | {"office": "Savannakhet", "position_local": "ຫົວໜ້າ"}),
        source_name="hr.csv",
        actor="hr",
        now=NOW,
    )
    assert renamed.updated == 1 and _person(service).position_local == "ຫົວໜ້າ"


def test_an_export_without_the_new_columns_keeps_importing_unchanged(service: Services) -> None:
    """A file with the 13 columns of before imports as it did; its people have no office
    recorded (None, not ""), and a second import of it changes nothing."""
    old_header = [c for c in COLUMNS if c not in OPTIONAL_COLUMNS]
    person = BASE | {"employee_id": "LA-MOHA-000209"}
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([old_header, [person[c] for c in old_header]])
    data = out.getvalue().encode()
    created = service.register.import_hr(data, source_name="old.csv", actor="hr", now=NOW)
    assert created.created == 1 and created.rejects == []
    row = _person(service, "LA-MOHA-000209")
    assert (row.office, row.ministry_local, row.position_local) == (None, None, None)
    assert (
        service.register.import_hr(data, source_name="old.csv", actor="hr", now=NOW).unchanged == 1
    )


def test_json_records_carry_the_office_and_refuse_invisible_characters(
    service: Services,
) -> None:
    rows = [
        (1, BASE | {"employee_id": "LA-MOHA-000501", "office": "Luang Prabang"}),
        (2, BASE | {"employee_id": "LA-MOHA-000502", "name_latin": "Boun\u200fmy"}),
        (3, BASE | {"employee_id": "LA-MOHA-000503", "office": "Vientiane\u200b"}),
        (4, BASE | {"employee_id": "LA-MOHA-000504", "office": "*"}),
        (5, {k: v for k, v in BASE.items() if k != "office"} | {"employee_id": "LA-MOHA-000505"}),
    ]
    with service.infra.db.transaction() as session:
        report = import_records(
            session, rows, source_id="api-batch-2", source_name="api", actor="hr", now=NOW
        )
    assert [(r.line, r.reason) for r in report.rejects] == [
        (2, "bidirectional control character in column name_latin"),
        (3, "invisible character U+200B in column office"),
        (4, "office must be 1-64 characters: letters, digits, space, '.', '_', '-'"),
    ]
    assert _person(service, "LA-MOHA-000501").office == "Luang Prabang"
    assert _person(service, "LA-MOHA-000505").office is None
