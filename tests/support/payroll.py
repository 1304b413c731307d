"""Helpers shared by the payroll, change-feed, webhook and HR-sync tests: people of the sample
HR file, clients with scopes, records edited from the sample file, payroll checks."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from idsvc.audit.who_checked import CheckedBy
from idsvc.bank.payroll import PayrollChecks, PayrollItem
from idsvc.bank.server_secret import ServerKeys
from idsvc.clients.api_clients import ApiClients
from idsvc.services import Services
from tests.support.settings import NOW, SAMPLE_CSV

if TYPE_CHECKING:  # the HR helpers take an Api; the payroll tests need no HTTP server
    from tests.support.http import Api

# Fixed, so that tests can recompute account hashes and webhook keys independently.
SERVER_SECRET = bytes(range(32))
KEYS = ServerKeys.from_secret(SERVER_SECRET)

# People of the sample HR file: three active on NOW, one retired.
ACTIVE = "LA-MOHA-000101"
OTHER = "LA-MOHA-000102"
THIRD = "KH-MCS-010002"
RETIRED = "LA-MOF-002210"

RECORDS = "/v1/hr/records"


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


def set_status(service: Services, employee_id: str, status: str, day: str = "2026-11-20") -> Any:
    data = csv_of(with_status(employee_id, status, day))
    return service.register.import_hr(data, source_name="edit.csv", actor="test-hr", now=NOW)


def add_client(service: Services, name: str, *scopes: str) -> tuple[str, str]:
    """(client id, bearer secret)."""
    view, secret = ApiClients(service.infra.db).add(name, scopes or ("payroll",), NOW)
    return view.id, secret


def check_people(service: Services, client_id: str, *employee_ids: str) -> None:
    """A payroll check of these people by this client: from then on they are in its change
    feed and webhooks (``idsvc.bank.change_feed.note_people_checked``)."""

    def no_credentials(text: str, now: Any) -> Any:
        raise AssertionError("items name employee ids only")

    checks = PayrollChecks(
        service.infra.db,
        account_key=KEYS.account_key,
        account_window=timedelta(days=93),
        verify_credential=no_credentials,
    )
    checks.check(
        [PayrollItem(employee_id=e) for e in employee_ids],
        by=CheckedBy(client_id, "bank", "127.0.0.1"),
        now=NOW,
    )


def checks(service: Services, window_days: int = 90) -> PayrollChecks:
    """The payroll use case over ``service``, with credentials verified by it."""
    return PayrollChecks(
        service.infra.db,
        account_key=KEYS.account_key,
        account_window=timedelta(days=window_days),
        verify_credential=lambda text, now: service.verification.verify(text, now=now),
    )


def bank(service: Services, name: str = "bank-a") -> CheckedBy:
    """A new payroll client, as the checker a payroll batch is logged under."""
    client_id, _ = add_client(service, name)
    return CheckedBy(client_id, name, "127.0.0.1")


def hr(api: Api, name: str = "MoEYS HR") -> dict[str, str]:
    """Headers of a new HR client (scope ``hr:write``) of ``api``."""
    _, secret = add_client(api.service, name, "hr:write")
    return {"authorization": f"Bearer {secret}"}
