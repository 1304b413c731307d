"""OpenID4VP over HTTP: the official's page creates a request and polls it, the wallet fetches
the signed request object and posts its answer (form-encoded ``direct_post``). On a real server
with two workers, two answers racing to one request: exactly one is stored."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.parse
from typing import Any

import httpx
import pytest

from idsvc.audit.who_checked import checks_of
from idsvc.services import Services
from tests.support import spec_sd_jwt, spec_wallet
from tests.support.holder_phone import Phone, give_phone
from tests.support.http import PROBLEM, Api, assert_problem
from tests.support.serve import Conn, Served, service_now
from tests.support.settings import ACTIVE_EMPLOYEE, NOW

FORM = {"content-type": "application/x-www-form-urlencoded"}
REQUIRED = ("name", "name_latin", "photo")  # what the default request requires


@pytest.fixture
def phone(service: Services) -> Phone:
    return give_phone(service, ACTIVE_EMPLOYEE, now=NOW)


def local(url: str) -> str:
    """The path of one of the service's public URLs (the tests reach it on loopback)."""
    return urllib.parse.urlsplit(url).path


def form(presentation: str, state: str) -> str:
    vp_token = json.dumps({"civil_servant": [presentation]})
    return urllib.parse.urlencode({"vp_token": vp_token, "state": state})


def create(http: httpx.Client, body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = (
        http.post("/v1/presentation-requests", json=body)
        if body
        else http.post("/v1/presentation-requests")
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created: dict[str, Any] = r.json()
    return created


def request_object(
    service: Services, base_url: str, created: dict[str, Any], *, now: float
) -> dict[str, Any]:
    """The request object, fetched and checked by the tests' independent wallet
    (tests/support/spec_wallet.py) from the QR's ``openid4vp://`` URI, trusting the issuer's CA;
    the service's public https origin is routed to the test server."""
    with service.infra.db.transaction() as session:
        anchor = service.infra.issuer(session).ring.ca_certificate()
    origin = service.settings.public_url
    with httpx.Client(transport=spec_wallet.Loopback(origin, base_url)) as wallet_http:
        checked = spec_wallet.open_request(
            wallet_http, created["openid4vp_uri"], now=now, anchors=[anchor]
        )
    return checked.claims


def test_the_whole_exchange(api: Api, phone: Phone) -> None:
    created = create(api.http)
    assert set(created) == {"id", "openid4vp_uri", "request_uri", "expires_at", "poll_token"}
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(created["openid4vp_uri"]).query)
    claims = request_object(api.service, api.base_url, created, now=NOW.timestamp())
    assert query == {"client_id": [claims["client_id"]], "request_uri": [created["request_uri"]]}
    poll = {"presentation-poll-token": created["poll_token"]}
    pending = api.http.get(f"/v1/presentation-requests/{created['id']}", headers=poll)
    assert pending.json() == {
        "id": created["id"],
        "status": "pending",
        "expires_at": created["expires_at"],
        "result": None,
    }

    # The holder unticks the ministry, one of the two optional claims.
    text = phone.present(
        aud=claims["client_id"], nonce=claims["nonce"], now=NOW, disclose=(*REQUIRED, "position")
    )
    r = api.http.post(
        local(claims["response_uri"]), content=form(text, claims["state"]), headers=FORM
    )
    assert (r.status_code, r.json()) == (200, {})

    done = api.http.get(f"/v1/presentation-requests/{created['id']}", headers=poll).json()
    assert done["status"] == "answered"
    result = done["result"]
    assert (result["valid"], result["status"], result["reasons"]) == (True, "valid", [])
    assert set(result["disclosed"]) == {*REQUIRED, "position"}  # ministry was optional
    assert result["holder"]["name"] == result["disclosed"]["name"]
    assert result["checked_at"] == NOW.isoformat()

    again = api.http.post(
        local(claims["response_uri"]), content=form(text, claims["state"]), headers=FORM
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_request"
    # The request object of an answered request is no longer served.
    assert api.http.get(local(created["request_uri"])).json()["error"] == "invalid_request"


def test_the_result_is_only_for_the_poll_token(api: Api) -> None:
    created = create(api.http)
    path = f"/v1/presentation-requests/{created['id']}"
    assert_problem(api.http.get(path), 404, "UNKNOWN_PRESENTATION_REQUEST")
    wrong = {"presentation-poll-token": "x" * 43}
    assert_problem(api.http.get(path, headers=wrong), 404, "UNKNOWN_PRESENTATION_REQUEST")
    unknown = "/v1/presentation-requests/3f1c2a9e-8b7d-4e6f-9a1b-2c3d4e5f6a7b"
    token = {"presentation-poll-token": created["poll_token"]}
    assert_problem(api.http.get(unknown, headers=token), 404, "UNKNOWN_PRESENTATION_REQUEST")


def test_claims_asked_for(api: Api) -> None:
    created = create(api.http, {"claims": ["position", "photo"]})
    claims = request_object(api.service, api.base_url, created, now=NOW.timestamp())
    asked = claims["dcql_query"]["credentials"][0]["claims"]
    assert asked == [{"path": ["position"]}, {"path": ["photo"]}]
    r = api.http.post("/v1/presentation-requests", json={"claims": ["name", "national_id"]})
    body = assert_problem(r, 422, "UNKNOWN_CLAIM")
    assert "national_id" in body["detail"]
    r = api.http.post("/v1/presentation-requests", json={"claims": ["name"], "other": 1})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM

    created = create(api.http, {"claims": ["name", "photo"], "optional": ["grade"]})
    claims = request_object(api.service, api.base_url, created, now=NOW.timestamp())
    (query,) = claims["dcql_query"]["credentials"]
    assert query["claims"] == [
        {"id": "name", "path": ["name"]},
        {"id": "photo", "path": ["photo"]},
        {"id": "grade", "path": ["grade"]},
    ]
    assert query["claim_sets"] == [["name", "photo", "grade"], ["name", "photo"]]
    both = {"claims": ["name", "photo"], "optional": ["photo"]}
    body = assert_problem(
        api.http.post("/v1/presentation-requests", json=both), 422, "CLAIM_REQUIRED_AND_OPTIONAL"
    )
    assert "'photo'" in body["detail"]
    five = {"optional": ["unit", "grade", "category", "ministry", "position"]}
    assert_problem(
        api.http.post("/v1/presentation-requests", json=five), 422, "TOO_MANY_OPTIONAL_CLAIMS"
    )
    unknown = {"optional": ["salary"]}
    assert_problem(api.http.post("/v1/presentation-requests", json=unknown), 422, "UNKNOWN_CLAIM")


def test_a_presentation_without_a_required_claim_fails(api: Api, phone: Phone) -> None:
    created = create(api.http)
    claims = request_object(api.service, api.base_url, created, now=NOW.timestamp())
    text = phone.present(
        aud=claims["client_id"], nonce=claims["nonce"], now=NOW, disclose=("name", "ministry")
    )
    r = api.http.post(
        local(claims["response_uri"]), content=form(text, claims["state"]), headers=FORM
    )
    assert r.status_code == 400
    description = "the presentation leaves out claims the request requires: name_latin, photo"
    assert r.json() == {"error": "invalid_request", "error_description": description}
    poll = {"presentation-poll-token": created["poll_token"]}
    done = api.http.get(f"/v1/presentation-requests/{created['id']}", headers=poll).json()
    assert done["status"] == "failed"
    assert done["result"] == {
        "error": "invalid_request",
        "error_description": description,
        "missing": ["name_latin", "photo"],
    }


def test_bad_answers_speak_the_wallet_vocabulary(api: Api, phone: Phone) -> None:
    created = create(api.http)
    claims = request_object(api.service, api.base_url, created, now=NOW.timestamp())
    url = local(claims["response_uri"])
    text = phone.present(aud=claims["client_id"], nonce=claims["nonce"], now=NOW, disclose=REQUIRED)

    as_json = api.http.post(url, json={"vp_token": "x", "state": claims["state"]})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    wrong_state = api.http.post(url, content=form(text, "not-the-state"), headers=FORM)
    assert wrong_state.status_code == 400
    assert wrong_state.json()["error_description"] == "state does not match the request"
    twice = form(text, claims["state"]) + "&state=" + claims["state"]
    assert api.http.post(url, content=twice, headers=FORM).status_code == 400
    oversized = api.http.post(url, content="vp_token=" + "A" * 70_000, headers=FORM)
    assert oversized.status_code == 413
    unknown = "/v1/presentation-requests/3f1c2a9e-8b7d-4e6f-9a1b-2c3d4e5f6a7b/response"
    r = api.http.post(unknown, content=form(text, claims["state"]), headers=FORM)
    assert r.status_code == 404 and r.json()["error"] == "invalid_request"
    # None of these stored anything: the real answer is still taken.
    r = api.http.post(url, content=form(text, claims["state"]), headers=FORM)
    assert r.status_code == 200


def test_a_wallet_error_ends_the_request(api: Api) -> None:
    created = create(api.http)
    claims = request_object(api.service, api.base_url, created, now=NOW.timestamp())
    body = urllib.parse.urlencode(
        {"error": "access_denied", "error_description": "declined", "state": claims["state"]}
    )
    assert api.http.post(local(claims["response_uri"]), content=body, headers=FORM).json() == {}
    poll = {"presentation-poll-token": created["poll_token"]}
    done = api.http.get(f"/v1/presentation-requests/{created['id']}", headers=poll).json()
    assert done["status"] == "failed"
    assert done["result"] == {"error": "access_denied", "error_description": "declined"}


def test_openapi_documents_the_endpoints(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    paths = spec["paths"]
    create_op = paths["/v1/presentation-requests"]["post"]
    assert create_op["operationId"] == "createPresentationRequest"
    created_ref = create_op["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert created_ref.endswith("/PresentationRequestCreatedResponse")
    poll = paths["/v1/presentation-requests/{request_id}"]["get"]
    assert poll["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PresentationRequestResponse"
    )
    request_op = paths["/v1/presentation-requests/{request_id}/request"]["get"]
    assert "application/oauth-authz-req+jwt" in request_op["responses"]["200"]["content"]
    answer_op = paths["/v1/presentation-requests/{request_id}/response"]["post"]
    assert "application/x-www-form-urlencoded" in answer_op["requestBody"]["content"]
    result = spec["components"]["schemas"]["PresentationResult"]
    assert "disclosed" in result["properties"] and "reasons" in result["properties"]
    asked = spec["components"]["schemas"]["CreatePresentationRequest"]["properties"]
    assert "claim_sets" in asked["optional"]["description"]
    assert "missing" in spec["components"]["schemas"]["PresentationFailure"]["properties"]


def race(conns: tuple[Conn, Conn], path: str, body: str) -> list[int]:
    """POST the same body on both connections at the same moment; their statuses."""
    answers: list[int] = []
    start = threading.Barrier(2)

    def post(conn: Conn) -> None:
        start.wait()
        conn.http.request("POST", path, body=body, headers=FORM)
        reply = conn.http.getresponse()
        reply.read()
        answers.append(reply.status)

    threads = [threading.Thread(target=post, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_two_workers_racing_to_answer_store_one(
    served: Served, service: Services, phone: Phone
) -> None:
    first, second = served.two_workers()
    base = f"http://127.0.0.1:{served.port}"
    for _ in range(3):
        status, created = first.call("POST", "/v1/presentation-requests")
        assert status == 201
        # Whichever worker serves the request object signs with the same key and names the
        # same client id as the QR made by the first (open_request checks they agree).
        claims = request_object(service, base, created, now=time.time())
        second.http.request("GET", local(created["request_uri"]))
        reply = second.http.getresponse()
        assert reply.status == 200
        header, _, _, _ = spec_sd_jwt.jws_parts(reply.read().decode())
        leaf = hashlib.sha256(base64.b64decode(header["x5c"][0])).digest()
        assert claims["client_id"] == "x509_hash:" + spec_sd_jwt.b64u(leaf)
        text = phone.present(
            aud=claims["client_id"], nonce=claims["nonce"], now=service_now(), disclose=REQUIRED
        )
        body = form(text, claims["state"])
        answers = race((first, second), local(claims["response_uri"]), body)
        assert sorted(answers) == [200, 400]
        headers = {"presentation-poll-token": created["poll_token"]}
        status, done = second.call(
            "GET", f"/v1/presentation-requests/{created['id']}", None, headers
        )
        assert (status, done["status"], done["result"]["valid"]) == (200, "answered", True)
    with service.infra.db.transaction() as session:
        checks = checks_of(session, ACTIVE_EMPLOYEE)
    # One check per request, whichever worker won it.
    assert [c.result for c in checks] == ["valid"] * 3
