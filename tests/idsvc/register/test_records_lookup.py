"""What an import reads of the register: an API batch looks up its own ids only, a whole HR
export scans once; both apply the same rules (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from idsvc.register import records as register
from idsvc.register.hr_sync import HrSync
from idsvc.services import Services
from idsvc.storage.tables import CivilServantRow
from tests.support.payroll import csv_of, sample_records
from tests.support.settings import NOW


@contextmanager
def register_reads(service: Services) -> Iterator[list[tuple[str, Any]]]:
    """(SQL, parameters) of every statement that reads the civil_servants table."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM civil_servants" in statement:
            seen.append((statement, params))

    event.listen(service.infra.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(service.infra.db.engine, "before_cursor_execute", record)


def test_an_api_batch_reads_only_its_own_people(
    service: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(register, "_CHUNK", 2)  # several chunks from a few records
    records = sample_records()[:5]
    records[1] = records[1] | {"grade": "K9"}  # changed, in the first chunk
    records[4] = records[4] | {"unit": "Moved"}  # changed, in the last chunk
    records.append(records[0] | {"employee_id": "LA-MOHA-009001"})  # new
    with register_reads(service) as reads:
        answer = (
            HrSync(service.infra.db)
            .upsert(records, client_id="c1", client_name="hr", idempotency_key=None, now=NOW)
            .body
        )
    assert (answer["created"], answer["updated"], answer["unchanged"]) == (1, 2, 3)
    assert answer["rejected"] == []
    # Every read names ids: no statement without a WHERE, none asking for anyone else.
    assert reads and all("WHERE" in sql for sql, _ in reads)
    asked = {v for _, params in reads for v in _values(params)}
    assert asked <= {r["employee_id"] for r in records}
    with service.infra.db.transaction() as session:
        moved = session.get(CivilServantRow, records[4]["employee_id"])
        assert moved is not None and moved.unit == "Moved"
        assert session.get(CivilServantRow, "LA-MOHA-009001") is not None


def test_a_whole_export_scans_once_and_a_repeat_changes_nothing(service: Services) -> None:
    records = sample_records()
    with register_reads(service) as reads:
        report = service.register.import_hr(
            csv_of(records), source_name="again.csv", actor="hr", now=NOW
        )
    assert report.unchanged == len(records) and report.created == report.updated == 0
    assert sum("WHERE" not in sql for sql, _ in reads) == 1


def _values(params: Any) -> list[str]:
    if isinstance(params, dict):
        return [v for v in params.values() if isinstance(v, str)]
    return [v for v in params if isinstance(v, str)]
