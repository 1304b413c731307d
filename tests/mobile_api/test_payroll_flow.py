"""The bank's whole story through ``idsvc serve --workers 2`` on loopback, SQLite and PostgreSQL.

HR retires a person through ``POST /v1/hr/records`` on one worker; the next payroll check on the
other worker says ``active_for_payroll: false``; the change feed shows it; the bank's webhook
receiver, down at first, gets a correctly signed event later (checked with the published public
key and with the independent ``standardwebhooks`` package). Then the change feed is paged on one
worker while HR writes through the other: nothing is missed or repeated.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import standardwebhooks

from idsvc.bank.change_feed import ChangeFeed
from idsvc.bank.server_secret import ServerKeys, load_server_secret
from idsvc.bank.webhook_delivery import WebhookDeliverer, http_post
from idsvc.clients.api_clients import ApiClients
from idsvc.services import Services
from tests.support.cli_runner import Cli
from tests.support.payroll import sample_records
from tests.support.serve import Served
from tests.support.webhook_receiver import free_port, receiver, verify_v1a

ACTIVE = "LA-MOHA-000101"


def _auth(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def test_retirement_reaches_payroll_feed_and_webhooks_and_paging_holds(
    service: Services,
    served: Served,
) -> None:
    now = datetime.now(UTC)
    clients = ApiClients(service.infra.db)
    _, hr_secret = clients.add("MoHA HR", ["hr:write"], now)
    _, bank_secret = clients.add("Bank of Laos", ["payroll"], now)

    # The bank subscribes (operator CLI); its receiver is down for now.
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/idsvc"
    cli = Cli(service.settings.home, service.settings.resolved_database_url)
    cli.env["IDSVC_WEBHOOK_PRIVATE_TARGETS"] = "1"  # the bank's receiver is on loopback
    added = cli("webhooks", "add", url, "--client", "Bank of Laos", "--events", "employee.*")
    assert added.returncode == 0, added.stderr
    hmac_add = cli(
        "webhooks", "add", url, "--client", "Bank of Laos", "--events", "employee.retired",
        "--hmac", "--json",
    )  # fmt: skip
    assert hmac_add.returncode == 0, hmac_add.stderr
    secret = json.loads(hmac_add.stdout)["secret"]

    # Connections to two different workers, opened now: the server closes idle keep-alive
    # connections after a few seconds.
    a, b = served.two_workers()
    status, before = b.call("POST", "/v1/payroll/checks", {"items": [{"employee_id": ACTIVE}]},
                            _auth(bank_secret))  # fmt: skip
    assert (status, before["results"][0]["active_for_payroll"]) == (200, True)
    status, start = b.call("GET", "/v1/payroll/changes?since=now", None, _auth(bank_secret))
    assert status == 200

    records = sample_records()
    records[0] |= {"status": "retired", "status_date": "2026-11-20"}
    assert records[0]["employee_id"] == ACTIVE
    status, answer = a.call("POST", "/v1/hr/records", {"records": records}, _auth(hr_secret))
    assert (status, answer["status_changes"], answer["rejected"]) == (200, 1, [])

    status, after = b.call("POST", "/v1/payroll/checks", {"items": [{"employee_id": ACTIVE}]},
                           _auth(bank_secret))  # fmt: skip
    assert after["results"][0] == {
        "employee_id": ACTIVE,
        "status": "retired",
        "active_for_payroll": False,
        "reasons": ["HOLDER_INACTIVE"],
    }
    status, page = a.call(
        "GET", f"/v1/payroll/changes?since={start['next_cursor']}", None, _auth(bank_secret)
    )
    assert [(e["type"], e["employee_id"]) for e in page["events"]] == [("employee.retired", ACTIVE)]

    # The deliverer runs while the receiver is down: nothing is lost, a retry is scheduled.
    down = cli("webhooks", "deliver", "--once", "--timeout", "2")
    assert down.returncode == 0 and "retrying 2" in down.stdout, down.stdout
    listed = json.loads(cli("webhooks", "list", "--json").stdout)
    assert [(w["pending"], w["delivered"]) for w in listed] == [(1, 0), (1, 0)]
    assert all("no answer" in (w["last_error"] or "") for w in listed)

    # The receiver comes back; the next pass after the back-off delivers.
    status, key = served.connect().call("GET", "/v1/webhooks/public-key")
    assert status == 200
    keys = ServerKeys.from_secret(
        load_server_secret(service.settings.resolved_server_secret_file, create=False)
    )
    later = datetime.now(UTC) + timedelta(seconds=90)  # past the first back-off (≈30 s)
    with receiver(port=port) as bank_side:
        WebhookDeliverer(
            service.infra.db, keys, http_post(5, private_targets=True), max_attempts=5
        ).run_once(later)
    assert len(bank_side.got) == 2
    by_scheme = {g.headers["webhook-signature"].split(",")[0]: g for g in bank_side.got}
    verify_v1a(key["public_key"], by_scheme["v1a"])
    event = standardwebhooks.Webhook(secret).verify(by_scheme["v1"].body, by_scheme["v1"].headers)
    assert event["type"] == "employee.retired"
    assert event["data"]["id"] == page["events"][0]["id"]
    assert by_scheme["v1a"].headers["webhook-id"] == f"msg_{event['data']['id']}"
    listed = json.loads(cli("webhooks", "list", "--json").stdout)
    assert [(w["pending"], w["delivered"]) for w in listed] == [(0, 1), (0, 1)]

    # Same server (starting two workers is the slow part): paging under concurrent HR writes.
    _page_while_hr_writes(service, served, hr_secret, bank_secret)


def _page_while_hr_writes(
    service: Services, server: Served, hr_secret: str, bank_secret: str
) -> None:
    """The change feed paged on one worker while HR writes through the other."""
    writer_conn, reader_conn = server.two_workers()
    code, head = reader_conn.call("GET", "/v1/payroll/changes?since=now", None,
                                  _auth(bank_secret))  # fmt: skip
    assert code == 200
    base = sample_records()
    base[0] |= {"status": "retired", "status_date": "2026-11-20"}  # as the first phase left it
    people = [r["employee_id"] for r in base if r["status"] == "active"][:4]
    rounds = 8
    errors: list[str] = []
    # The bank's feed holds the people it checked.
    code, _ = reader_conn.call("POST", "/v1/payroll/checks",
                               {"items": [{"employee_id": p} for p in people]},
                               _auth(bank_secret))  # fmt: skip
    assert code == 200

    def write() -> None:
        for i in range(rounds):
            records = [dict(r) for r in base]
            status = "suspended" if i % 2 == 0 else "active"
            for r in records:
                if r["employee_id"] in people:
                    r["status"], r["status_date"] = status, f"2026-11-{i + 1:02d}"
            code, answer = writer_conn.call(
                "POST", "/v1/hr/records", {"records": records}, _auth(hr_secret)
            )
            if code != 200 or answer["status_changes"] != len(people):
                errors.append(f"{code} {answer}")

    writer = threading.Thread(target=write)
    writer.start()
    seen: list[str] = []
    cursor = head["next_cursor"]
    while True:
        finished = not writer.is_alive()
        code, page = reader_conn.call("GET", f"/v1/payroll/changes?limit=3&since={cursor}",
                                      None, _auth(bank_secret))  # fmt: skip
        assert code == 200, page
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if finished and not page["events"]:
            break
    writer.join()
    assert not errors, errors
    expected = ChangeFeed(service.infra.db).page(head["next_cursor"], limit=10_000).events
    assert len(expected) == rounds * len(people)
    assert seen == [e.id for e in expected]  # each once, in order
