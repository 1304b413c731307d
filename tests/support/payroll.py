"""Helpers shared by the payroll, change-feed, webhook and HR-sync tests."""

from __future__ import annotations

import csv
import io
from typing import Any

from idsvc.bank.server_secret import ServerKeys
from idsvc.clients.api_clients import ApiClients
from idsvc.service import IdService
from tests.conftest import NOW, SAMPLE_CSV

# Fixed, so that tests can recompute account hashes and webhook keys independently.
SERVER_SECRET = bytes(range(32))
KEYS = ServerKeys.from_secret(SERVER_SECRET)


def sample_records() -> list[dict[str, str]]:
    text = SAMPLE_CSV.read_text(encoding="utf-8")
    return [dict(row) for row in csv.DictReader(io.StringIO(text))]


def csv_of(records: list[dict[str, str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue().encode()


def with_status(employee_id: str, status: str, status_date: str) -> list[dict[str, str]]:
    records = sample_records()
    for r in records:
        if r["employee_id"] == employee_id:
            r["status"], r["status_date"] = status, status_date
    return records


def set_status(service: IdService, employee_id: str, status: str, day: str = "2026-11-20") -> Any:
    data = csv_of(with_status(employee_id, status, day))
    return service.import_hr(data, source_name="edit.csv", actor="test-hr", now=NOW)


def add_client(service: IdService, name: str, *scopes: str) -> tuple[str, str]:
    """(client id, bearer secret)."""
    view, secret = ApiClients(service.db).add(name, scopes or ("payroll",), NOW)
    return view.id, secret


def check_people(service: IdService, client_id: str, *employee_ids: str) -> None:
    """A payroll check of these people by this client: from then on they are in its change
    feed and webhooks (``idsvc.bank.change_feed.note_people_checked``)."""
    from datetime import timedelta

    from idsvc.audit.who_checked import CheckedBy
    from idsvc.bank.payroll import PayrollChecks, PayrollItem

    def no_credentials(text: str, now: Any) -> Any:
        raise AssertionError("items name employee ids only")

    checks = PayrollChecks(
        service.db,
        account_key=KEYS.account_key,
        account_window=timedelta(days=93),
        verify_credential=no_credentials,
    )
    checks.check(
        [PayrollItem(employee_id=e) for e in employee_ids],
        by=CheckedBy(client_id, "bank", "127.0.0.1"),
        now=NOW,
    )
