"""``GET /v1/payroll/changes`` through ``idsvc serve --workers 2``, SQLite and PostgreSQL: each
bank reads only the people its payroll checks named (admin clients: everyone), reasons are
codes, and a cursor the feed did not hand out is ``400 INVALID_CURSOR`` (documented)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from idsvc.clients.api_clients import ApiClients
from idsvc.services import Services
from tests.support.payroll import set_status
from tests.support.serve import Served

ACTIVE = "LA-MOHA-000101"
OTHER = "LA-MOHA-000102"


def _auth(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"cf1:{position}".encode()).decode().rstrip("=")


def test_feed_scope_and_cursor_checks_over_http(
    service: Services,
    served: Served,
) -> None:
    now = datetime.now(UTC)
    clients = ApiClients(service.infra.db)
    _, bank_a = clients.add("Bank A", ["payroll"], now)
    _, bank_b = clients.add("Bank B", ["payroll"], now)
    _, ministry = clients.add("Ministry", ["payroll", "admin"], now)
    a, b = served.two_workers()
    status, _ = a.call("POST", "/v1/payroll/checks", {"items": [{"employee_id": ACTIVE}]},
                       _auth(bank_a))  # fmt: skip
    assert status == 200
    status, _ = b.call("POST", "/v1/payroll/checks", {"items": [{"employee_id": OTHER}]},
                       _auth(bank_b))  # fmt: skip
    assert status == 200
    set_status(service, ACTIVE, "retired")
    set_status(service, OTHER, "dismissed")

    seen = {}
    for name, secret, conn in (("a", bank_a, b), ("b", bank_b, a), ("ministry", ministry, a)):
        status, page = conn.call("GET", "/v1/payroll/changes", None, _auth(secret))
        assert status == 200, page
        seen[name] = [(e["type"], e["employee_id"], e["reason"]) for e in page["events"]]
        head = page["next_cursor"]
    assert seen == {
        "a": [("employee.retired", ACTIVE, "HR_STATUS_CHANGE")],
        "b": [("employee.dismissed", OTHER, "HR_STATUS_CHANGE")],
        "ministry": [
            ("employee.retired", ACTIVE, "HR_STATUS_CHANGE"),
            ("employee.dismissed", OTHER, "HR_STATUS_CHANGE"),
        ],
    }
    assert head == _cursor(2)

    status, page = a.call("GET", f"/v1/payroll/changes?since={head}", None, _auth(bank_a))
    assert (status, page["events"], page["next_cursor"]) == (200, [], head)
    for bad in (_cursor(3), _cursor(10**17), "Y2YxOi0x", "not-a-cursor"):
        status, problem = b.call("GET", f"/v1/payroll/changes?since={bad}", None, _auth(bank_a))
        assert (status, problem["code"]) == (400, "INVALID_CURSOR"), problem

    status, schema = a.call("GET", "/openapi.json")
    assert status == 200
    operation = schema["paths"]["/v1/payroll/changes"]["get"]
    assert "INVALID_CURSOR" in operation["responses"]["400"]["description"]
    assert "admin" in operation["description"] and "payroll checks" in operation["description"]
