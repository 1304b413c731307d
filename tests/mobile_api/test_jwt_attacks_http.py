"""The JWT attacks of ``tests/idsvc/verification/test_jwt_attacks.py``, sent to ``POST
/v1/verifications``
over real HTTP: each is a 200 answer with ``valid: false`` and the same single reason code as
the library gives, no holder data, and nothing that looks like a stack trace. Oversized input
is refused before verification: 422 ``INVALID_REQUEST`` over the field limit, 413
``BODY_TOO_LARGE`` over the body limit."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from idsvc.formats.credentials import CREDENTIAL_TYP
from mobile_api.app import MAX_BODY
from tests.support.http import Api, api_for, assert_problem
from tests.support.jwt_forgery import Forger, claims_of
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

ACTIVE = "LA-MOHA-000101"
FIELD_LIMIT = 16384  # VerificationRequest.credential's max_length


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Forger, str]]:
    home = tmp_path_factory.mktemp("attacks")
    # Many requests from one address: the anonymous rate limit is not what is tested here.
    settings = make_settings(
        home, f"sqlite:///{home / 'idsvc.sqlite3'}", rate_limit_anonymous=100_000
    )
    svc = make_service(settings)
    svc.credentials.init(now=NOW, actor="test-admin")
    svc.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test", now=NOW
    )
    token = svc.credentials.issue(ACTIVE, actor="desk", now=NOW).token
    with svc.infra.db.transaction() as session:
        issuer = svc.infra.issuer(session)
        signer = svc.infra.signer(issuer)
        public = issuer.ring.public_keys()[signer.kid]
    forger = Forger(
        typ=CREDENTIAL_TYP,
        kid=signer.kid,
        issuer_sign=signer.sign,
        alg=signer.alg,
        issuer_public=public,
        genuine=claims_of(token),
    )
    with api_for(svc) as api:
        yield api, forger, token
    svc.infra.db.dispose()


def _post(api: Api, credential: str) -> dict[str, object]:
    r = api.http.post("/v1/verifications", json={"credential": credential})
    assert r.status_code == 200, r.text
    assert "Traceback" not in r.text and 'File "' not in r.text
    body: dict[str, object] = r.json()
    return body


def test_genuine_token_is_valid_over_http(served: tuple[Api, Forger, str]) -> None:
    api, forger, token = served
    for t in (token, forger.genuine_token()):
        body = _post(api, t)
        assert (body["valid"], body["reasons"]) == (True, [])


def test_every_attack_is_refused_over_http_with_its_code(
    served: tuple[Api, Forger, str],
) -> None:
    api, forger, _ = served
    attacks = [a for a in forger.every_attack(FIELD_LIMIT) if len(a[1]) <= FIELD_LIMIT]
    assert len(attacks) > 40
    wrong = {}
    for name, token, expected in attacks:
        body = _post(api, token)
        got = (body["valid"], body["reasons"], body["holder"], body["credential_id"])
        if got != (False, [str(expected)], None, None):
            wrong[name] = got
    assert not wrong, wrong


def test_oversized_token_over_the_field_limit_is_422(served: tuple[Api, Forger, str]) -> None:
    api, forger, _ = served
    big = forger.oversized(FIELD_LIMIT + 1)
    assert FIELD_LIMIT < len(big) < MAX_BODY
    r = api.http.post("/v1/verifications", json={"credential": big})
    assert_problem(r, 422, "INVALID_REQUEST")


def test_oversized_token_over_the_body_limit_is_413(served: tuple[Api, Forger, str]) -> None:
    api, forger, _ = served
    huge = forger.oversized(MAX_BODY + 1)
    r = api.http.post(
        "/v1/verifications",
        content=json.dumps({"credential": huge}).encode(),
        headers={"content-type": "application/json"},
    )
    assert_problem(r, 413, "BODY_TOO_LARGE")


def test_duplicate_member_in_the_request_body_is_refused(
    served: tuple[Api, Forger, str],
) -> None:
    # The JSON body itself: {"credential": <attack>, "credential": <genuine>} must not let a
    # proxy and the service disagree on which one was checked.
    api, _, token = served
    content = f'{{"credential": "x.y.z", "credential": {json.dumps(token)}}}'.encode()
    r = api.http.post(
        "/v1/verifications", content=content, headers={"content-type": "application/json"}
    )
    assert_problem(r, 422, "INVALID_REQUEST")


def test_status_list_served_over_http_is_not_accepted_as_credential(
    served: tuple[Api, Forger, str],
) -> None:
    api, forger, _ = served
    uri = str(forger.genuine["status"]["status_list"]["uri"])
    list_token = api.http.get("/status-lists/" + uri.rsplit("/", 1)[-1]).text
    assert list_token.count(".") == 2
    body = _post(api, list_token)
    assert (body["valid"], body["reasons"]) == (False, ["MALFORMED"])
