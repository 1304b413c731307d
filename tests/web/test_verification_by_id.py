"""``GET /v1/credentials/{credential_id}/verification``: what the verifier page asks when a
card's link reached it without its QR fragment (``/v/<credential id>`` only). Real HTTP on
loopback, SQLite and PostgreSQL: the same verdict and reason codes as the scanned card, the
minimal public view without the photo (an id proves nobody holds the card), a clear 404 for
an id the service never issued, the anonymous verification budget, the who-checked log (also
under ``idsvc serve --workers 2``)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Literal, cast

import httpx
import pytest

from idsvc.audit.who_checked import checks_of
from idsvc.clients.api_clients import ApiClients
from idsvc.credentials.views import CredentialView
from idsvc.register.photos import Photos
from idsvc.services import Services
from tests.support.card_print import portrait_bytes
from tests.support.http import Api, api_for, assert_problem
from tests.support.serve import Served, service_now
from tests.support.settings import ACTIVE_EMPLOYEE, NOW, SAMPLE_CSV, make_service, make_settings

MINIMAL = {"name", "name_latin", "ministry", "position"}
SAME = ("valid", "status", "reasons", "credential_id", "issuer", "expires_at", "checked_at")


def by_id(api: Api, credential_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return api.http.get(f"/v1/credentials/{credential_id}/verification", headers=headers)


def scanned(api: Api, text: str) -> dict[str, Any]:
    r = api.http.post("/v1/verifications", json={"credential": text})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def credential_like() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def api(service: Services) -> Any:
    service.settings.verify_cache_ttl = 0  # a state change shows in the very next check
    with api_for(service) as a:
        yield a


@pytest.fixture
def credential(service: Services) -> CredentialView:
    return service.credentials.issue(ACTIVE_EMPLOYEE, actor="test-desk", now=NOW)


def test_an_id_gets_the_scanned_cards_verdict_and_the_minimal_view_without_photo(
    api: Api, service: Services, credential: CredentialView
) -> None:
    Photos(service.infra.db).store(credential.employee_id, portrait_bytes(), actor="t", now=NOW)
    assert credential.qr_text is not None
    card = scanned(api, credential.qr_text)
    assert card["valid"] is True and "photo" in card["holder"]
    r = by_id(api, credential.id)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert {k: body[k] for k in SAME} == {k: card[k] for k in SAME}
    assert body["holder"] == {k: v for k, v in card["holder"].items() if k != "photo"}
    assert set(body["holder"]) == MINIMAL
    # A client whose scope shows it ids and the photo for a presented card sees no more here.
    _, secret = ApiClients(service.infra.db).add("Bank", ["verify"], NOW)
    scoped = by_id(api, credential.id, {"authorization": f"Bearer {secret}"}).json()
    assert scoped["holder"] == body["holder"] and scoped["valid"] is True


def test_an_id_follows_suspension_and_revocation_like_the_card(
    api: Api, service: Services, credential: CredentialView
) -> None:
    assert credential.qr_text is not None
    for action, reasons in (("suspend", ["SUSPENDED"]), ("reinstate", []), ("revoke", ["REVOKED"])):
        if action == "revoke":
            service.credentials.revoke(credential.id, reason="test", by=None, now=NOW)
        else:
            state = cast(Literal["suspend", "reinstate"], action)
            service.credentials.change_state(
                credential.id, state, reason="test", actor="test", now=NOW
            )
        body = by_id(api, credential.id).json()
        assert body["reasons"] == reasons, action
        card = scanned(api, credential.qr_text)
        assert {k: body[k] for k in SAME} == {k: card[k] for k in SAME}, action


def test_an_id_never_issued_is_unknown_not_an_error(api: Api) -> None:
    body = assert_problem(by_id(api, str(uuid.uuid4())), 404, "UNKNOWN_CREDENTIAL")
    assert body["title"] == "no such credential"
    # Ids that no issuance makes are unknown too, without reaching the database.
    for absurd in ("x" * 65, "%00", "a%27%20OR%201=1", "%E2%80%AE" + credential_like()):
        assert_problem(by_id(api, absurd), 404, "UNKNOWN_CREDENTIAL")


def test_a_check_by_id_is_in_the_who_checked_log(
    service: Services, credential: CredentialView
) -> None:
    with api_for(service) as api:  # leaving it writes what the server buffered
        assert by_id(api, credential.id).status_code == 200
        assert by_id(api, str(uuid.uuid4())).status_code == 404
    with service.infra.db.transaction() as session:
        checks = checks_of(session, credential.employee_id)
    assert [(c.kind, c.credential_id, c.result, c.address, c.client_id) for c in checks] == [
        ("verification", credential.id, "valid", "127.0.0.1", None)
    ]


def test_checks_by_id_spend_the_anonymous_verification_budget(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "home", f"sqlite:///{tmp_path / 'db.sqlite3'}", rate_limit_anonymous=3
    )
    service = make_service(settings)
    service.credentials.init(now=NOW, actor="test")
    service.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="hr.csv", actor="test", now=NOW)
    credential = service.credentials.issue(ACTIVE_EMPLOYEE, actor="test-desk", now=NOW)
    try:
        with api_for(service) as api:
            assert scanned(api, credential.token)["valid"] is True
            assert by_id(api, credential.id).status_code == 200
            assert by_id(api, str(uuid.uuid4())).status_code == 404  # guesses count too
            r = by_id(api, credential.id)
            assert_problem(r, 429, "RATE_LIMITED")
            assert 1 <= int(r.headers["retry-after"]) <= 60
            posted = api.http.post("/v1/verifications", json={"credential": credential.token})
            assert_problem(posted, 429, "RATE_LIMITED")
    finally:
        service.infra.db.dispose()


def test_the_operation_is_in_the_openapi_document(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    operation = spec["paths"]["/v1/credentials/{credential_id}/verification"]["get"]
    assert operation["operationId"] == "getCredentialVerification"
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/VerificationResponse")
    assert {"404", "429"} <= set(operation["responses"])
    assert "photo" in operation["description"]
    # Authenticated or not, like the verification of a presented credential.
    posted = spec["paths"]["/v1/verifications"]["post"]
    assert operation.get("security") == posted.get("security")


def test_two_workers_answer_by_id_and_log_each_check(
    service: Services,
    served: Served,
) -> None:
    credential = service.credentials.issue(ACTIVE_EMPLOYEE, actor="test-desk", now=service_now())
    a, b = served.two_workers()
    path = f"/v1/credentials/{credential.id}/verification"
    answers = [conn.call("GET", path) for conn in (a, b)]
    assert [(status, body["valid"], body["reasons"]) for status, body in answers] == [
        (200, True, []),
        (200, True, []),
    ]
    assert a.call("GET", f"/v1/credentials/{uuid.uuid4()}/verification")[0] == 404
    _, secret = ApiClients(service.infra.db).add("Ministry Admin", ["admin"], service_now())
    time.sleep(1.5)  # each worker's log writes behind (at most 1 s)
    status, log = a.call(
        "GET",
        f"/v1/holders/{ACTIVE_EMPLOYEE}/checks",
        headers={"authorization": f"Bearer {secret}"},
    )
    assert status == 200
    assert [(c["kind"], c["credential_id"], c["result"]) for c in log["checks"]] == [
        ("verification", credential.id, "valid")
    ] * 2
