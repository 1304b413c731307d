"""``POST /v1/hr/records`` over real HTTP (SQLite and PostgreSQL), issue 16: the optional
``office``, ``ministry_local`` and ``position_local`` members are stored, a change of office is
an update, invisible characters are refused per record without echoing the value, and an
unknown member is still refused."""

from __future__ import annotations

from idsvc.storage.tables import CivilServantRow
from tests.support.http import Api
from tests.support.payroll import RECORDS, hr, sample_records

PERSON = "LA-MOHA-000102"


def _office(api: Api) -> tuple[str | None, str | None, str | None]:
    with api.service.infra.db.transaction() as session:
        row = session.get(CivilServantRow, PERSON)
        assert row is not None
        return row.office, row.ministry_local, row.position_local


def test_offices_and_local_fields_over_http(api: Api) -> None:
    auth = hr(api)
    record = next(r for r in sample_records() if r["employee_id"] == PERSON)
    moved = record | {"office": "Savannakhet", "ministry_local": "ກະຊວງພາຍໃນ"}
    answer = api.http.post(RECORDS, json={"records": [moved]}, headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["updated"] == 1
    assert _office(api) == ("Savannakhet", "ກະຊວງພາຍໃນ", None)
    hidden = moved | {"position_local": "ຫົວ\u200bໜ້າ", "name_latin": "Boun\u061cchanh"}
    refused = api.http.post(RECORDS, json={"records": [hidden]}, headers=auth).json()
    assert refused["rejected"] == [
        {
            "record": 1,
            "employee_id": PERSON,
            "reason": "bidirectional control character in column name_latin",
        }
    ]
    hidden = moved | {"position_local": "ຫົວ\u200bໜ້າ"}
    refused = api.http.post(RECORDS, json={"records": [hidden]}, headers=auth).json()
    assert refused["rejected"][0]["reason"] == "invisible character U+200B in column position_local"
    assert "ຫົວ" not in str(refused)
    assert _office(api) == ("Savannakhet", "ກະຊວງພາຍໃນ", None)  # nothing changed
    unknown = api.http.post(RECORDS, json={"records": [moved | {"province": "X"}]}, headers=auth)
    assert unknown.status_code == 422 and "province" in unknown.text
