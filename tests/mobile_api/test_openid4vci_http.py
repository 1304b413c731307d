"""Issue 19: the phone credential over OpenID4VCI 1.0, against the real server (SQLite and
PostgreSQL): metadata, an admin's offer, the token endpoint (pre-authorized code + transaction
code, attempt limit, single use, two workers racing), the nonce and credential endpoints (key
proof, one credential per token), and bad requests answered in the specs' error vocabulary with
nothing stored. The issued SD-JWT VC's signature is checked with joserfc, an independent JOSE
library, against the keys the issuer metadata publishes; every disclosure's digest is
recomputed here."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws
from joserfc.jwk import KeySet
from sqlalchemy import select

from idsvc.formats.openid4vci import PRE_AUTHORIZED_GRANT, make_proof
from idsvc.register.photos import Photos
from idsvc.storage.tables import CredentialRow
from idsvc.storage.wallet_tables import WalletOfferRow
from keys.file_signer import FileSigner
from keys.jwk import public_jwk
from tests.support.card_print import portrait_bytes
from tests.support.http import Api, assert_problem
from tests.support.payroll import add_client
from tests.support.settings import ACTIVE_EMPLOYEE, NOW

ISSUER_ID = "https://id.mcs.gov.kh"  # the test settings' public_url
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def admin(api: Api) -> dict[str, str]:
    _, secret = add_client(api.service, "HR console", "admin")
    return {"authorization": f"Bearer {secret}"}


@pytest.fixture
def wallet_key() -> FileSigner:
    return FileSigner(ec.generate_private_key(ec.SECP256R1()), path=Path("never-written.pem"))


def _jwk(signer: FileSigner) -> dict[str, Any]:
    return dict(public_jwk(signer.public_key()))


def _offer(api: Api, admin: dict[str, str]) -> tuple[str, str]:
    """(pre-authorized code, tx code) of a new offer made by the admin API."""
    Photos(api.service.infra.db).store(ACTIVE_EMPLOYEE, portrait_bytes(), actor="t", now=NOW)
    r = api.http.post("/v1/wallet/offers", json={"employee_id": ACTIVE_EMPLOYEE}, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"offer_uri", "tx_code", "expires_at"}
    assert body["expires_at"] == "2026-11-23T09:15:00Z"  # IDSVC_WALLET_OFFER_MINUTES=15
    assert len(body["tx_code"]) == 6 and body["tx_code"].isdigit()
    uri = urlsplit(body["offer_uri"])
    assert uri.scheme == "openid-credential-offer"
    offer = json.loads(parse_qs(uri.query)["credential_offer"][0])
    assert offer["credential_issuer"] == ISSUER_ID
    assert offer["credential_configuration_ids"] == [
        "civil_servant_sd_jwt",
        "civil_servant_vc_sd_jwt",
    ]
    grant = offer["grants"][PRE_AUTHORIZED_GRANT]
    assert grant["tx_code"]["length"] == 6 and grant["tx_code"]["input_mode"] == "numeric"
    assert body["tx_code"] not in body["offer_uri"]
    return grant["pre-authorized_code"], body["tx_code"]


def _token(api: Api, code: str, tx_code: str | None) -> httpx.Response:
    form = {"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code}
    if tx_code is not None:
        form["tx_code"] = tx_code
    return api.http.post("/v1/wallet/token", data=form, headers=FORM)


def _nonce(api: Api) -> str:
    r = api.http.post("/v1/wallet/nonce")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    nonce: str = r.json()["c_nonce"]
    return nonce


def _credential(
    api: Api,
    token: str,
    proof: str,
    configuration: str = "civil_servant_sd_jwt",
) -> httpx.Response:
    return api.http.post(
        "/v1/wallet/credential",
        json={"credential_configuration_id": configuration, "proofs": {"jwt": [proof]}},
        headers={"authorization": f"Bearer {token}"},
    )


def _access_token(api: Api, admin: dict[str, str]) -> str:
    code, tx_code = _offer(api, admin)
    r = _token(api, code, tx_code)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def _oauth_error(r: httpx.Response, status: int, error: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and body["error_description"]
    return str(body["error_description"])


def _phone_rows(api: Api) -> list[CredentialRow]:
    with api.service.infra.db.transaction() as session:
        rows = session.execute(select(CredentialRow).where(CredentialRow.kind == "phone"))
        return list(rows.scalars())


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_metadata_names_the_endpoints_and_both_configurations(api: Api) -> None:
    issuer = api.http.get("/.well-known/openid-credential-issuer")
    assert issuer.status_code == 200
    meta = issuer.json()
    assert meta["credential_issuer"] == ISSUER_ID
    assert meta["credential_endpoint"] == f"{ISSUER_ID}/v1/wallet/credential"
    assert meta["nonce_endpoint"] == f"{ISSUER_ID}/v1/wallet/nonce"
    configurations = meta["credential_configurations_supported"]
    assert {k: v["format"] for k, v in configurations.items()} == {
        "civil_servant_sd_jwt": "dc+sd-jwt",
        "civil_servant_vc_sd_jwt": "vc+sd-jwt",
    }
    for config in configurations.values():
        assert config["vct"] == f"{ISSUER_ID}/v1/wallet/types/civil-servant"
        assert config["cryptographic_binding_methods_supported"] == ["jwk"]
        assert config["proof_types_supported"] == {
            "jwt": {"proof_signing_alg_values_supported": ["ES256"]}
        }
        assert config["credential_signing_alg_values_supported"] == ["ES256"]
        paths = [c["path"] for c in config["credential_metadata"]["claims"]]
        assert ["photo"] in paths and ["name"] in paths
        locales = {d["locale"] for d in config["credential_metadata"]["display"]}
        assert locales == {"en", "lo", "km"}

    server = api.http.get("/.well-known/oauth-authorization-server").json()
    assert server["issuer"] == ISSUER_ID
    assert server["token_endpoint"] == f"{ISSUER_ID}/v1/wallet/token"
    assert PRE_AUTHORIZED_GRANT in server["grant_types_supported"]
    assert server["pre-authorized_grant_anonymous_access_supported"] is True

    # The SD-JWT VC issuer metadata lives at the well-known path + the path of `iss`.
    settings = api.service.settings
    vc_issuer = api.http.get(f"/.well-known/jwt-vc-issuer{urlsplit(settings.issuer).path}")
    assert vc_issuer.status_code == 200
    assert vc_issuer.json()["issuer"] == settings.issuer
    kids = {k["kid"] for k in vc_issuer.json()["jwks"]["keys"]}
    assert api.service.credentials.key_entries()[0].kid in kids

    vct = api.http.get("/v1/wallet/types/civil-servant").json()
    assert vct["vct"] == f"{ISSUER_ID}/v1/wallet/types/civil-servant"
    # Another path is not this issuer's metadata.
    assert api.http.get("/.well-known/openid-credential-issuer/other").status_code == 404
    assert api.http.get("/.well-known/jwt-vc-issuer/issuers/other").status_code == 404


def test_offer_token_nonce_credential(
    api: Api, admin: dict[str, str], wallet_key: FileSigner
) -> None:
    card = api.service.credentials.issue(ACTIVE_EMPLOYEE, actor="test-desk", now=NOW)
    code, tx_code = _offer(api, admin)
    r = _token(api, code, tx_code)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    granted = r.json()
    assert granted["token_type"] == "Bearer" and granted["expires_in"] == 300
    # The code is single use.
    _oauth_error(_token(api, code, tx_code), 400, "invalid_grant")

    proof = make_proof(wallet_key, _jwk(wallet_key), audience=ISSUER_ID, nonce=_nonce(api), now=NOW)
    r = _credential(api, granted["access_token"], proof)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    (issued,) = r.json()["credentials"]
    sd_jwt: str = issued["credential"]
    issuer_jwt, *disclosures, kb = sd_jwt.split("~")
    assert kb == "" and disclosures

    # joserfc checks the signature with the keys of the SD-JWT VC issuer metadata.
    keys = api.http.get("/.well-known/jwt-vc-issuer/issuers/default").json()["jwks"]
    registry = jws.JWSRegistry(algorithms=["ES256"])
    registry.max_header_length = 4096  # joserfc's default (512) is below any header with x5c
    checked = jws.deserialize_compact(issuer_jwt, KeySet.import_key_set(keys), registry=registry)
    header, payload = checked.headers(), json.loads(checked.payload)
    assert header["typ"] == "dc+sd-jwt"
    assert header["kid"] == card.kid  # the same key and kid as the card's JWT
    assert payload["iss"] == api.service.settings.issuer
    assert payload["sub"] == ACTIVE_EMPLOYEE
    assert payload["vct"] == f"{ISSUER_ID}/v1/wallet/types/civil-servant"
    assert payload["cnf"] == {"jwk": _jwk(wallet_key)}
    assert payload["_sd_alg"] == "sha-256"
    assert payload["exp"] <= int(card.expires_at.timestamp())
    status = payload["status"]["status_list"]
    assert status["uri"].startswith(f"{ISSUER_ID}/status-lists/")
    # Every disclosure's digest is in _sd (recomputed here), nothing personal is in clear.
    disclosed: dict[str, Any] = {}
    for d in disclosures:
        digest = base64.urlsafe_b64encode(hashlib.sha256(d.encode()).digest()).rstrip(b"=")
        assert digest.decode() in payload["_sd"]
        _, name, value = json.loads(_b64decode(d))
        disclosed[name] = value
    assert {"name", "name_latin", "birthdate", "ministry", "photo"} <= set(disclosed)
    assert disclosed["photo"].startswith("data:image/jpeg;base64,")
    assert not {"name", "name_latin", "birthdate", "photo"} & set(payload)

    rows = _phone_rows(api)
    assert [(r.id, r.state, r.status_idx, r.token) for r in rows] == [
        (payload["jti"], "live", status["idx"], sd_jwt)
    ]
    assert rows[0].cnf_jwk == _jwk(wallet_key) and rows[0].qr_text is None
    # The card is not superseded by the phone credential.
    assert api.service.credentials.credential(card.id).state == "live"

    # One credential per access token: the second request is a dead token (RFC 6750).
    again = make_proof(wallet_key, _jwk(wallet_key), audience=ISSUER_ID, nonce=_nonce(api), now=NOW)
    r = _credential(api, granted["access_token"], again)
    _oauth_error(r, 401, "invalid_token")
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert len(_phone_rows(api)) == 1


def test_older_wallets_get_vc_sd_jwt(
    api: Api, admin: dict[str, str], wallet_key: FileSigner
) -> None:
    token = _access_token(api, admin)
    proof = make_proof(wallet_key, _jwk(wallet_key), audience=ISSUER_ID, nonce=_nonce(api), now=NOW)
    # The older single `proof` member is accepted too.
    r = api.http.post(
        "/v1/wallet/credential",
        json={
            "credential_configuration_id": "civil_servant_vc_sd_jwt",
            "proof": {"proof_type": "jwt", "jwt": proof},
        },
        headers={"authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    header = json.loads(_b64decode(r.json()["credentials"][0]["credential"].split(".")[0]))
    assert header["typ"] == "vc+sd-jwt"


def test_wrong_transaction_codes_burn_the_offer(api: Api, admin: dict[str, str]) -> None:
    code, tx_code = _offer(api, admin)
    wrong = f"{(int(tx_code) + 1) % 1_000_000:06d}"
    assert "4 attempts left" in _oauth_error(_token(api, code, wrong), 400, "invalid_grant")
    # A missing code is a malformed request, not a guess: no attempt is spent.
    _oauth_error(_token(api, code, None), 400, "invalid_request")
    for _ in range(3):
        _oauth_error(_token(api, code, wrong), 400, "invalid_grant")
    assert "withdrawn" in _oauth_error(_token(api, code, wrong), 400, "invalid_grant")
    # Now even the right code gets nothing.
    _oauth_error(_token(api, code, tx_code), 400, "invalid_grant")
    with api.service.infra.db.transaction() as session:
        offer = session.execute(select(WalletOfferRow)).scalar_one()
        assert (offer.state, offer.attempts, offer.access_token_hash) == ("burned", 5, None)


def test_two_workers_redeeming_one_code_give_one_token(api: Api, admin: dict[str, str]) -> None:
    code, tx_code = _offer(api, admin)
    barrier = threading.Barrier(4)
    answers: list[int] = []

    def redeem() -> None:
        with httpx.Client(base_url=api.base_url, timeout=10) as http:
            barrier.wait()
            form = {
                "grant_type": PRE_AUTHORIZED_GRANT,
                "pre-authorized_code": code,
                "tx_code": tx_code,
            }
            answers.append(http.post("/v1/wallet/token", data=form, headers=FORM).status_code)

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 400, 400, 400]


def test_token_endpoint_errors_follow_rfc_6749(api: Api, admin: dict[str, str]) -> None:
    code, tx_code = _offer(api, admin)
    r = api.http.post(
        "/v1/wallet/token",
        json={"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": code, "tx_code": tx_code},
    )
    _oauth_error(r, 400, "invalid_request")  # not form-encoded
    r = api.http.post(
        "/v1/wallet/token",
        content=f"grant_type=authorization_code&code={code}",
        headers=FORM,
    )
    _oauth_error(r, 400, "unsupported_grant_type")
    twice = f"grant_type={PRE_AUTHORIZED_GRANT}&pre-authorized_code={code}&tx_code=1&tx_code=2"
    _oauth_error(
        api.http.post("/v1/wallet/token", content=twice, headers=FORM), 400, "invalid_request"
    )
    _oauth_error(_token(api, "not-a-code", tx_code), 400, "invalid_grant")
    # None of these spent an attempt: the right code still works.
    assert _token(api, code, tx_code).status_code == 200
    # Oversized: refused before it is read.
    r = api.http.post("/v1/wallet/token", content=b"a=" + b"x" * 20_000, headers=FORM)
    assert_problem(r, 413, "BODY_TOO_LARGE")


def test_bad_credential_requests_store_nothing(
    api: Api, admin: dict[str, str], wallet_key: FileSigner
) -> None:
    token = _access_token(api, admin)
    jwk = _jwk(wallet_key)

    # No credentials at all: the bare challenge, no error code (RFC 6750 §3.1).
    r = api.http.post("/v1/wallet/credential", json={})
    assert r.status_code == 401 and "error" not in r.json()
    assert r.headers["www-authenticate"] == "Bearer"
    r = _credential(api, "made-up", "x")
    _oauth_error(r, 401, "invalid_token")
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'

    other_aud = make_proof(
        wallet_key, jwk, audience="https://elsewhere.example", nonce=_nonce(api), now=NOW
    )
    assert "aud" in _oauth_error(_credential(api, token, other_aud), 400, "invalid_proof")
    unknown_nonce = make_proof(wallet_key, jwk, audience=ISSUER_ID, nonce="not-ours", now=NOW)
    _oauth_error(_credential(api, token, unknown_nonce), 400, "invalid_nonce")
    good = make_proof(wallet_key, jwk, audience=ISSUER_ID, nonce=_nonce(api), now=NOW)
    r = _credential(api, token, good, configuration="civil_servant_jwt")
    _oauth_error(r, 400, "unknown_credential_configuration")
    r = api.http.post(
        "/v1/wallet/credential",
        json={"credential_configuration_id": "civil_servant_sd_jwt"},
        headers={"authorization": f"Bearer {token}"},
    )
    _oauth_error(r, 400, "invalid_proof")
    r = api.http.post(
        "/v1/wallet/credential",
        json={
            "credential_configuration_id": "civil_servant_sd_jwt",
            "proofs": {"jwt": [good, good]},
        },
        headers={"authorization": f"Bearer {token}"},
    )
    _oauth_error(r, 400, "invalid_credential_request")
    r = api.http.post(
        "/v1/wallet/credential",
        content=b'{"credential_configuration_id": "a", "credential_configuration_id": "b"}',
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    assert r.status_code == 422  # duplicate members: the app's strict JSON, before the route
    assert _phone_rows(api) == []

    # None of it spent the token or the good proof's nonce.
    assert _credential(api, token, good).status_code == 200
    # A used nonce is refused: a fresh token, the same proof.
    second = _access_token(api, admin)
    _oauth_error(_credential(api, second, good), 400, "invalid_nonce")
    assert len(_phone_rows(api)) == 1


def test_admin_offers_need_the_admin_scope_and_an_eligible_person(
    api: Api, admin: dict[str, str]
) -> None:
    body = {"employee_id": ACTIVE_EMPLOYEE}
    assert api.http.post("/v1/wallet/offers", json=body).status_code == 401
    _, payroll = add_client(api.service, "Bank", "payroll")
    r = api.http.post(
        "/v1/wallet/offers", json=body, headers={"authorization": f"Bearer {payroll}"}
    )
    assert r.status_code == 403
    # No photo yet: the phone credential carries one.
    r = api.http.post("/v1/wallet/offers", json=body, headers=admin)
    assert "photo" in str(assert_problem(r, 409, "WALLET_OFFER_REFUSED")["title"])
    r = api.http.post("/v1/wallet/offers", json={"employee_id": "LA-NOBODY-1"}, headers=admin)
    assert_problem(r, 404, "UNKNOWN_EMPLOYEE")
    with api.service.infra.db.transaction() as session:
        assert session.execute(select(WalletOfferRow)).first() is None
