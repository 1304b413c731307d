"""The bank API over real HTTP (uvicorn on loopback), SQLite and PostgreSQL: payroll checks in
JSON and CSV, the change feed, the webhook key, and the errors a bank's integrator will meet."""

from __future__ import annotations

import base64
import csv
import io
import json

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.responses import JSONResponse

from mobile_api.schemas.payroll import PayrollChangesResponse, PayrollCheckResponse
from tests.support.http import PROBLEM, Api, assert_problem
from tests.support.payroll import add_client, set_status
from tests.support.settings import NOW

ACTIVE = "LA-MOHA-000101"
RETIRED = "LA-MOF-002210"
CHECKS = "/v1/payroll/checks"
CHANGES = "/v1/payroll/changes"


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def bank(api: Api, name: str = "Bank of Test", *scopes: str) -> dict[str, str]:
    _, secret = add_client(api.service, name, *(scopes or ("payroll",)))
    return bearer(secret)


def test_json_batch_answers_in_order(api: Api) -> None:
    auth = bank(api)
    items = [
        {"employee_id": RETIRED},
        {"employee_id": ACTIVE, "account": "KH-001"},
        {"employee_id": "KH-NOPE-000001"},
        {"employee_id": "LA-MOHA-000102", "account": "kh 001"},
    ]
    r = api.http.post(CHECKS, json={"items": items}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert [
        (x["employee_id"], x["status"], x["active_for_payroll"], x["reasons"])
        for x in r.json()["results"]
    ] == [
        (RETIRED, "retired", False, ["HOLDER_INACTIVE"]),
        (ACTIVE, "active", True, ["ACCOUNT_SHARED"]),
        ("KH-NOPE-000001", "unknown", False, ["UNKNOWN_EMPLOYEE"]),  # the bank's own id
        ("LA-MOHA-000102", "active", True, ["ACCOUNT_SHARED"]),
    ]
    # The check log names the bank (admin view).
    admin = bank(api, "Ministry Admin", "admin")
    log = api.http.get(f"/v1/holders/{RETIRED}/checks", headers=admin).json()["checks"]
    assert [(c["kind"], c["client_name"], c["reasons"]) for c in log] == [
        ("payroll", "Bank of Test", ["HOLDER_INACTIVE"])
    ]


def test_csv_in_and_out(api: Api) -> None:
    auth = bank(api)
    body = f"employee_id,account\r\n{RETIRED},\r\n{ACTIVE},123\r\nKH-NOPE-000001,\r\n"
    r = api.http.post(
        CHECKS,
        content=body.encode(),
        headers=auth | {"content-type": "text/csv", "accept": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows == [
        {"item": "1", "employee_id": RETIRED, "status": "retired", "active_for_payroll": "false",
         "reasons": "HOLDER_INACTIVE", "card_serial": "", "ref": ""},
        {"item": "2", "employee_id": ACTIVE, "status": "active", "active_for_payroll": "true",
         "reasons": "", "card_serial": "", "ref": ""},
        {"item": "3", "employee_id": "KH-NOPE-000001", "status": "unknown",
         "active_for_payroll": "false", "reasons": "UNKNOWN_EMPLOYEE", "card_serial": "",
         "ref": ""},
    ]  # fmt: skip
    # JSON in, CSV out when CSV is preferred; JSON when JSON is.
    r = api.http.post(
        CHECKS,
        json={"items": [{"employee_id": ACTIVE}]},
        headers=auth | {"accept": "application/json;q=0.5, text/csv"},
    )
    assert r.text.splitlines()[1] == f"1,{ACTIVE},active,true,,,"
    r = api.http.post(
        CHECKS,
        content=body.encode(),
        headers=auth | {"content-type": "text/csv", "accept": "text/csv;q=0.1, application/json"},
    )
    assert r.json()["results"][0]["status"] == "retired"
    bad = api.http.post(
        CHECKS, content=b"name\r\nx\r\n", headers=auth | {"content-type": "text/csv"}
    )
    assert "header" in assert_problem(bad, 422, "INVALID_CSV")["detail"]


def test_a_full_batch_fits_the_route_limit_not_the_global_one(api: Api) -> None:
    auth = bank(api)
    items = [{"employee_id": f"KH-GHOST-{i:06d}", "account": f"{i:012d}"} for i in range(10_000)]
    body = json.dumps({"items": items}).encode()
    assert len(body) > 64 * 1024
    r = api.http.post(
        CHECKS, content=body, headers=auth | {"content-type": "application/json"}, timeout=120
    )
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["results"]) == 10_000
    too_many = json.dumps({"items": [*items, {"employee_id": ACTIVE}]})
    r = api.http.post(CHECKS, content=too_many, headers=auth | {"content-type": "application/json"})
    assert_problem(r, 422, "INVALID_REQUEST")
    # Other routes keep the global 64 KiB limit.
    r = api.http.post(
        "/v1/verifications", content=b"{" + b" " * 70_000 + b"}",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert_problem(r, 413, "BODY_TOO_LARGE")
    r = api.http.post(
        CHECKS,
        content=b"x" * (16 * 1024 * 1024 + 1),
        headers=auth | {"content-type": "text/csv"},
        timeout=60,
    )
    assert_problem(r, 413, "BODY_TOO_LARGE")


def test_auth_scope_and_bad_requests(api: Api) -> None:
    one = {"items": [{"employee_id": ACTIVE}]}
    r = api.http.post(CHECKS, json=one)
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert "Bearer" in r.headers["www-authenticate"]
    verifier = bank(api, "Verifier App", "verify")
    assert api.http.post(CHECKS, json=one, headers=verifier).status_code == 403
    assert api.http.get(CHANGES, headers=verifier).status_code == 403
    auth = bank(api)
    for body, where in (
        ({"items": []}, "items"),
        ({"items": [{}]}, "exactly one"),
        ({"items": [{"employee_id": ACTIVE, "card_serial": "X"}]}, "exactly one"),
        ({"items": [{"employee_id": ACTIVE, "pay": 1}]}, "pay"),
        ({"rows": []}, "items"),
    ):
        detail = assert_problem(api.http.post(CHECKS, json=body, headers=auth), 422,
                                "INVALID_REQUEST")["detail"]  # fmt: skip
        assert where in detail, detail
    r = api.http.post(
        CHECKS, content=b"employee_id\nX\n", headers=auth | {"content-type": "text/plain"}
    )
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    dup = b'{"items": [{"employee_id": "A"}], "items": []}'
    r = api.http.post(CHECKS, content=dup, headers=auth | {"content-type": "application/json"})
    assert_problem(r, 422, "INVALID_REQUEST")


def test_change_feed_pages_and_cursors(api: Api) -> None:
    auth = bank(api)
    # A bank's feed holds the people its payroll checks named.
    named = {"items": [{"employee_id": ACTIVE}, {"employee_id": RETIRED}]}
    assert api.http.post(CHECKS, json=named, headers=auth).status_code == 200
    start = api.http.get(CHANGES, params={"since": "now"}, headers=auth).json()
    assert start["events"] == []
    cred = api.service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    set_status(api.service, ACTIVE, "deceased", "2026-11-21")
    set_status(api.service, RETIRED, "active", "2026-11-22")
    seen = []
    cursor = start["next_cursor"]
    for _ in range(4):
        page = api.http.get(CHANGES, params={"since": cursor, "limit": 1}, headers=auth).json()
        seen += page["events"]
        cursor = page["next_cursor"]
    assert [(e["type"], e["employee_id"]) for e in seen] == [
        ("employee.deceased", ACTIVE),
        ("credential.revoked", ACTIVE),
        ("employee.reinstated", RETIRED),
    ]
    assert seen[1]["credential_id"] == cred.id and seen[0]["effective_date"] == "2026-11-21"
    everything = api.http.get(CHANGES, headers=auth).json()
    assert everything["events"] == seen and everything["next_cursor"] == cursor
    r = api.http.get(CHANGES, params={"since": "garbage"}, headers=auth)
    assert_problem(r, 400, "INVALID_CURSOR")
    r = api.http.get(CHANGES, params={"limit": 0}, headers=auth)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


def test_json_answers_hold_to_the_documented_schemas(api: Api) -> None:
    # Both routes encode their JSON themselves, so FastAPI no longer checks it against their
    # response_model: the answers must still validate, byte for byte as JSONResponse sends.
    auth = bank(api)
    items = [
        {"employee_id": ACTIVE, "ref": "\u0ec0\u0e87\u0eb4\u0e99 1"},  # not escaped: UTF-8
        {"employee_id": "KH-NOPE-000001", "account": "001"},
        {"card_serial": "NOSUCHCARD01"},
    ]
    r = api.http.post(CHECKS, json={"items": items}, headers=auth)
    assert r.headers["content-type"] == "application/json"
    assert len(PayrollCheckResponse.model_validate_json(r.content).results) == 3
    assert r.content == JSONResponse(r.json()).body
    set_status(api.service, ACTIVE, "retired", "2026-11-21")
    r = api.http.get(CHANGES, headers=auth)
    assert r.headers["content-type"] == "application/json"
    assert PayrollChangesResponse.model_validate_json(r.content).events
    assert r.content == JSONResponse(r.json()).body


def test_webhook_public_key_is_a_usable_ed25519_key(api: Api) -> None:
    r = api.http.get("/v1/webhooks/public-key")
    assert r.status_code == 200
    body = r.json()
    assert body["scheme"] == "v1a" and body["public_key"].startswith("whpk_")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(body["public_key"][5:]))
    assert key is not None
    # Stable across requests and app restarts: it comes from the server secret file.
    secret_file = api.service.settings.resolved_server_secret_file
    assert secret_file.stat().st_mode & 0o077 == 0
    again = httpx.get(api.base_url + "/v1/webhooks/public-key").json()
    assert again == body


def test_answers_keep_the_banks_identifiers_and_flag_duplicates(api: Api) -> None:
    auth = bank(api)
    card = api.service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    items = [
        {"employee_id": ACTIVE, "account": "001\u00a0234", "ref": "pay-1"},
        {"card_serial": card.card_serial, "account": "\u0ed0\u0ed0\u0ed1\u0ed2\u0ed3\u0ed4"},
        {"employee_id": "LA-MOHA-000102", "account": "００１/２３４", "ref": "pay-3"},
        {"card_serial": "NOSUCHCARD01", "ref": "<b>pay-4</b>"},
        {"credential": "not a credential", "ref": "=1+2"},
    ]
    r = api.http.post(CHECKS, json={"items": items}, headers=auth)
    assert r.status_code == 200, r.text
    dup, shared = "DUPLICATE_IN_BATCH", "ACCOUNT_SHARED"
    assert r.json()["results"] == [
        {"employee_id": ACTIVE, "ref": "pay-1", "status": "active", "active_for_payroll": True,
         "reasons": [dup, shared]},
        {"employee_id": ACTIVE, "card_serial": card.card_serial, "status": "active",
         "active_for_payroll": True, "reasons": [dup, shared]},
        {"employee_id": "LA-MOHA-000102", "ref": "pay-3", "status": "active",
         "active_for_payroll": True, "reasons": [shared]},
        {"employee_id": None, "card_serial": "NOSUCHCARD01", "ref": "<b>pay-4</b>",
         "status": "unknown", "active_for_payroll": False, "reasons": ["UNKNOWN_CARD"]},
        {"employee_id": None, "ref": "=1+2", "status": "unknown", "active_for_payroll": False,
         "reasons": ["MALFORMED"]},
    ]  # fmt: skip
    assert r.headers["content-type"] == "application/json"  # never rendered as a page
    # CSV: the same, with a ref column in and out; a cell is never read as a formula.
    body = f"card_serial,ref\r\nNOSUCHCARD01,=HYPERLINK(1)\r\n{card.card_serial},l2\r\n"
    r = api.http.post(
        CHECKS,
        content=body.encode(),
        headers=auth | {"content-type": "text/csv", "accept": "text/csv"},
    )
    assert r.text.splitlines() == [
        "item,employee_id,status,active_for_payroll,reasons,card_serial,ref",
        "1,,unknown,false,UNKNOWN_CARD,NOSUCHCARD01,'=HYPERLINK(1)",
        f"2,{ACTIVE},active,true,,{card.card_serial},l2",
    ]
    r = api.http.post(CHECKS, json={"items": [{"employee_id": ACTIVE, "ref": "r" * 129}]},
                      headers=auth)  # fmt: skip
    assert_problem(r, 422, "INVALID_REQUEST")


def test_the_reason_codes_and_the_account_rule_are_documented(api: Api) -> None:
    schema = api.http.get("/openapi.json").json()
    result = schema["components"]["schemas"]["PayrollResult"]["properties"]
    assert "DUPLICATE_IN_BATCH" in result["reasons"]["description"]
    assert {"ref", "card_serial"} <= set(result)
    operation = schema["paths"][CHECKS]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    item = request["properties"]["items"]["items"]["properties"]
    assert "NFKC" in item["account"]["description"] and "ref" in item
    assert "DUPLICATE_IN_BATCH" in operation["description"]
