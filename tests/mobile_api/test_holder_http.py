"""The holder's own page over HTTP (real uvicorn on loopback; mobile_api/routes/holder.py):
nonce → session by a presentation of the phone credential → the record, the who-checked log, a
correction request; replays, bad proofs, a revoked phone and a missing session answer
problem+json with their own codes; an admin client reads the queue and decides a request."""

from __future__ import annotations

from typing import Any

import httpx

from idsvc.credentials.views import CredentialView
from tests.support.holder_phone import Phone, give_phone
from tests.support.http import Api, assert_problem
from tests.support.payroll import add_client
from tests.support.settings import ACTIVE_EMPLOYEE, NOW

AUD = "https://id.mcs.gov.kh/v1/holder"  # the test settings' public URL + /v1/holder


def _nonce(api: Api) -> str:
    r = api.http.post("/v1/holder/nonce")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, str] = r.json()
    assert body["expires_at"] == "2026-11-23T09:05:00+00:00"
    return body["nonce"]


def _session(api: Api, phone: Phone, **present: Any) -> httpx.Response:
    proof = phone.present(aud=AUD, nonce=_nonce(api), now=NOW, **present)
    return api.http.post("/v1/holder/sessions", json={"presentation": proof})


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_the_holder_sees_the_record_who_checked_and_reports_an_error(
    api: Api, credential: CredentialView
) -> None:
    phone = give_phone(api.service, ACTIVE_EMPLOYEE, now=NOW)
    # An official checks the card: the holder will see it.
    checked = api.http.post("/v1/verifications", json={"credential": credential.token})
    assert checked.json()["valid"] is True

    opened = _session(api, phone, disclose=("photo",))  # a photo fits the larger body limit
    assert opened.status_code == 201, opened.text
    assert opened.headers["cache-control"] == "no-store"
    session = opened.json()
    assert session["expires_at"] == "2026-11-23T09:05:00+00:00"
    me = api.http.get("/v1/holder/me", headers=_bearer(session["token"]))
    assert me.status_code == 200, me.text
    page = me.json()
    assert page["record"]["employee_id"] == ACTIVE_EMPLOYEE
    assert page["record"]["ministry"] == "Ministry of Home Affairs"
    assert "national_id" not in page["record"]
    assert {(c["kind"], c["state"]) for c in page["credentials"]} == {
        ("card", "live"),
        ("phone", "live"),
    }

    who = api.http.get("/v1/holder/who-checked", headers=_bearer(session["token"]))
    assert who.status_code == 200, who.text
    (check,) = who.json()["checks"]
    assert (check["kind"], check["caller"], check["by"], check["result"]) == (
        "verification",
        "anonymous",
        None,
        "valid",
    )
    assert "127.0.0.1" not in who.text  # the official's address is not the holder's to see

    made = api.http.post(
        "/v1/holder/corrections",
        json={"field": "unit", "text": "My unit is the Department of Training."},
        headers=_bearer(session["token"]),
    )
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    assert made.json()["status"] == "open"

    _, admin = add_client(api.service, "HR registrars", "admin")
    queue = api.http.get("/v1/corrections", headers=_bearer(admin))
    assert queue.status_code == 200, queue.text
    assert [(c["id"], c["employee_id"], c["field"]) for c in queue.json()["corrections"]] == [
        (request_id, ACTIVE_EMPLOYEE, "unit")
    ]
    decision = {"decision": "reject", "answer": "HR's file shows your unit as recorded."}
    url = f"/v1/corrections/{request_id}/decision"
    decided = api.http.post(url, json=decision, headers=_bearer(admin))
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["decided_by"]) == (
        "rejected",
        "client:HR registrars",
    )
    assert_problem(
        api.http.post(url, json=decision, headers=_bearer(admin)), 409, "CORRECTION_ALREADY_DECIDED"
    )
    assert_problem(
        api.http.post("/v1/corrections/nope/decision", json=decision, headers=_bearer(admin)),
        404,
        "UNKNOWN_CORRECTION_REQUEST",
    )
    again = api.http.get("/v1/holder/me", headers=_bearer(session["token"])).json()
    assert [(c["status"], c["answer"]) for c in again["corrections"]] == [
        ("rejected", "HR's file shows your unit as recorded.")
    ]


def test_refusals_have_their_own_codes(api: Api) -> None:
    phone = give_phone(api.service, ACTIVE_EMPLOYEE, now=NOW)
    # A replayed presentation: the nonce is spent.
    proof = phone.present(aud=AUD, nonce=_nonce(api), now=NOW)
    assert api.http.post("/v1/holder/sessions", json={"presentation": proof}).status_code == 201
    replay = api.http.post("/v1/holder/sessions", json={"presentation": proof})
    assert_problem(replay, 401, "HOLDER_NONCE_INVALID")
    # A key-binding JWT for an official's request, not for the holder page.
    wrong = phone.present(aud="x509_hash:abc", nonce=_nonce(api), now=NOW)
    body = assert_problem(
        api.http.post("/v1/holder/sessions", json={"presentation": wrong}),
        401,
        "HOLDER_PROOF_INVALID",
    )
    assert "HOLDER_BINDING_INVALID" in body["detail"]
    assert_problem(
        api.http.post("/v1/holder/sessions", json={"presentation": "not an SD-JWT"}),
        401,
        "HOLDER_PROOF_INVALID",
    )
    # No session, or not a session token.
    missing = api.http.get("/v1/holder/me")
    assert_problem(missing, 401, "HOLDER_SESSION_INVALID")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in missing.headers["www-authenticate"]
    assert_problem(
        api.http.get("/v1/holder/who-checked", headers=_bearer("made-up")),
        401,
        "HOLDER_SESSION_INVALID",
    )
    # A bad correction request.
    token = _session(api, phone).json()["token"]
    bad = api.http.post(
        "/v1/holder/corrections", json={"field": "national_id", "text": "x"}, headers=_bearer(token)
    )
    assert (
        "field must be one of" in assert_problem(bad, 422, "CORRECTION_REQUEST_INVALID")["detail"]
    )
    # The phone reported lost: the open session and any new one are refused.
    api.service.credentials.revoke(phone.credential_id, reason="phone lost", by=None, now=NOW)
    assert_problem(
        api.http.get("/v1/holder/me", headers=_bearer(token)), 403, "HOLDER_CREDENTIAL_NOT_LIVE"
    )
    assert_problem(_session(api, phone), 403, "HOLDER_CREDENTIAL_NOT_LIVE")


def test_the_queue_is_for_admin_clients(web: Api) -> None:
    assert web.http.get("/v1/corrections").status_code == 401
    _, verifier = add_client(web.service, "District office", "verify")
    refused = web.http.get("/v1/corrections", headers=_bearer(verifier))
    assert refused.status_code == 403
    assert 'scope="admin"' in refused.headers["www-authenticate"]
