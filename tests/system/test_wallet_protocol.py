"""The phone credential, end to end, against a wallet written from the specifications
(``tests/support/spec_wallet.py`` and ``spec_sd_jwt.py``: OpenID4VCI 1.0, RFC 9901, SD-JWT VC,
OpenID4VP 1.0, no code of the server) over a real ``idsvc serve --workers 2`` on loopback,
SQLite and PostgreSQL.

The wallet reaches the service by its public https URL (``Loopback`` plays the TLS proxy), so
every URL it uses is the one the specs derive from the identifiers the server publishes. A
rule the server breaks fails as ``SpecViolation`` naming the rule; a refusal the test expects
is a ``Refused`` with the spec's error code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from idsvc.clients.api_clients import ApiClients
from idsvc.register.photos import Photos
from idsvc.services import Services
from tests.support.card_print import portrait_bytes
from tests.support.serve import Launch, Server, launching, service_now
from tests.support.settings import (
    ACTIVE_EMPLOYEE,
    NOW,
    OTHER_ACTIVE_EMPLOYEE,
    SAMPLE_CSV,
    make_service,
    make_settings,
)
from tests.support.spec_sd_jwt import (
    Held,
    HolderKey,
    b64u,
    hs256_token,
    library_check,
    sd_hash,
    unb64u,
    with_kb,
)
from tests.support.spec_wallet import (
    Issuer,
    Loopback,
    Offer,
    Refused,
    SpecWallet,
    Token,
    VpRequest,
    answer,
    check_response_ok,
    open_request,
    parse_offer_uri,
    respond,
)

PUBLIC = "https://id.mcs.gov.kh"  # tests.support.settings: the service's public_url
SD = "civil_servant_sd_jwt"
VC_SD = "civil_servant_vc_sd_jwt"
DISCLOSABLE = {
    "name",
    "name_latin",
    "birthdate",
    "ministry",
    "ministry_local",
    "unit",
    "position",
    "position_local",
    "grade",
    "category",
    "photo",
}
DEFAULT_ASKED = {"name", "name_latin", "photo"}


@dataclass
class Bench:
    service: Services
    server: Server
    http: httpx.Client
    admin: dict[str, str]
    anchors: list[x509.Certificate]

    def wallet(self) -> SpecWallet:
        # x5c required: the issuer's chain to its CA (the trust anchor), leaf = the kid's key.
        return SpecWallet(self.http, trust_anchors=self.anchors, require_x5c=True)

    def offer(self, employee: str) -> tuple[str, str]:
        r = self.http.post(
            f"{PUBLIC}/v1/wallet/offers", json={"employee_id": employee}, headers=self.admin
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return body["offer_uri"], body["tx_code"]

    def ask(self, claims: list[str] | None = None) -> dict[str, Any]:
        """The official's page asks for the phone credential."""
        body = None if claims is None else {"claims": claims}
        r = self.http.post(f"{PUBLIC}/v1/presentation-requests", json=body)
        assert r.status_code == 201, r.text
        asked: dict[str, Any] = r.json()
        return asked

    def open(self, asked: dict[str, Any]) -> VpRequest:
        """The phone scans the official's QR: the checked request object."""
        return open_request(
            self.http, asked["openid4vp_uri"], now=time.time(), anchors=self.anchors
        )

    def outcome(self, asked: dict[str, Any]) -> dict[str, Any]:
        r = self.http.get(
            f"{PUBLIC}/v1/presentation-requests/{asked['id']}",
            headers={"Presentation-Poll-Token": asked["poll_token"]},
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@contextmanager
def serving(service: Services, start: Launch) -> Iterator[Bench]:
    photos = Photos(service.infra.db)
    for person in (ACTIVE_EMPLOYEE, OTHER_ACTIVE_EMPLOYEE):
        photos.store(person, portrait_bytes(), actor="test-desk", now=service_now())
    _, secret = ApiClients(service.infra.db).add("Ministry Admin", ["admin"], service_now())
    # The wallet endpoints are anonymous: a budget the tests cannot exhaust.
    server = start(IDSVC_RATE_LIMIT_ANONYMOUS="1000")
    # The trust anchor a ministry would publish (a trusted list entry): the issuer CA.
    anchors = [
        x509.load_pem_x509_certificate(p.read_bytes())
        for p in service.settings.keys_dir.glob("*/ca.pem")
    ]
    assert anchors
    with httpx.Client(transport=Loopback(PUBLIC, server.base), timeout=20.0) as http:
        yield Bench(service, server, http, {"Authorization": f"Bearer {secret}"}, anchors)


@pytest.fixture
def bench(service: Services, start: Launch) -> Iterator[Bench]:
    with serving(service, start) as b:
        yield b


def redeem(bench: Bench, wallet: SpecWallet, employee: str) -> tuple[Offer, Issuer, Token]:
    uri, tx_code = bench.offer(employee)
    offer = parse_offer_uri(uri)
    assert offer.credential_issuer == PUBLIC
    assert set(offer.configuration_ids) <= {SD, VC_SD}
    assert offer.tx_code is not None and offer.tx_code.get("length") == len(tx_code)
    issuer = wallet.discover(offer)
    return offer, issuer, wallet.token(issuer, offer, tx_code)


def issue(bench: Bench, wallet: SpecWallet, employee: str, config: str = SD) -> Held:
    _, issuer, token = redeem(bench, wallet, employee)
    proof = wallet.proof(issuer, wallet.nonce(issuer))
    credential = wallet.request_credential(issuer, token, config, [proof])
    return wallet.receive(issuer, config, credential)


def holder_nonce(bench: Bench) -> str:
    r = bench.http.post(f"{PUBLIC}/v1/holder/nonce")
    assert r.status_code in (200, 201), r.text
    return str(r.json()["nonce"])


def refused(call: Any, *args: Any, **kw: Any) -> Refused:
    with pytest.raises(Refused) as caught:
        call(*args, **kw)
    return caught.value


# -- Issuance ---------------------------------------------------------------------------


def test_issuance_by_the_specs(bench: Bench) -> None:
    wallet = bench.wallet()
    _, issuer, token = redeem(bench, wallet, ACTIVE_EMPLOYEE)
    proof = wallet.proof(issuer, wallet.nonce(issuer))
    credential = wallet.request_credential(issuer, token, SD, [proof])
    held = wallet.receive(issuer, SD, credential)  # signature, x5c, digests, cnf, vct, status

    # The independent implementation agrees on the signature and on every disclosed claim.
    jwk = wallet.issuer_jwk(held.header, held.payload, x5c=True)
    assert library_check(credential, jwk) == held.claims
    assert held.payload["sub"] == ACTIVE_EMPLOYEE
    names = {d.name for d in held.disclosures}
    assert {"name", "photo"} <= names <= DISCLOSABLE
    assert str(held.claims["photo"]).startswith("data:image/jpeg;base64,")
    assert not names & set(held.payload), "a disclosable claim is also in the clear"
    assert wallet.type_metadata(held)["vct"] == held.payload["vct"]
    # §12.2.2: unsigned metadata is always available, whatever else the wallet accepts.
    r = bench.http.get(
        f"{PUBLIC}/.well-known/openid-credential-issuer",
        headers={"Accept": "application/jwt, application/json;q=0.5"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert wallet.status(held) == 0

    # The access token gives one credential.
    again = refused(
        wallet.request_credential, issuer, token, SD, [wallet.proof(issuer, wallet.nonce(issuer))]
    )
    # RFC 6750 §3.1: a spent token is "expired, revoked ... or invalid".
    assert (again.status, again.error) == (401, "invalid_token"), again

    # Issue 19: other wallets trust the issuer through its certificate chain in x5c (checked
    # by receive() when present: chain to the issuer CA, leaf = the JWKS key of this kid).
    assert "x5c" in held.header, "the SD-JWT VC carries no x5c chain to the issuer CA"


def test_code_used_twice_is_invalid_grant(bench: Bench) -> None:
    wallet = bench.wallet()
    uri, tx_code = bench.offer(ACTIVE_EMPLOYEE)
    offer = parse_offer_uri(uri)
    issuer = wallet.discover(offer)
    wallet.token(issuer, offer, tx_code, some_future_parameter="1")  # ignored (RFC 6749 §3.2)
    assert refused(wallet.token, issuer, offer, tx_code).error == "invalid_grant"


def test_bad_proofs_are_refused_and_the_token_still_serves(bench: Bench) -> None:
    wallet = bench.wallet()
    _, issuer, token = redeem(bench, wallet, OTHER_ACTIVE_EMPLOYEE)

    def proof_error(proofs: list[str] | None, **kw: Any) -> str:
        return refused(wallet.request_credential, issuer, token, VC_SD, proofs, **kw).error

    now = time.time()
    key = HolderKey()
    private_jwk = key.jwk | {"d": "AAAA"}

    def fresh(**kw: Any) -> str:  # a proof over a fresh c_nonce
        return wallet.proof(issuer, wallet.nonce(issuer), **kw)

    hs256 = hs256_token(
        {"typ": "openid4vci-proof+jwt", "alg": "HS256", "jwk": key.jwk},
        {"aud": PUBLIC, "iat": int(now), "nonce": wallet.nonce(issuer)},
        b"0" * 32,
    )
    cases = {
        "wrong aud": (fresh(aud=f"{PUBLIC}/other"), "invalid_proof"),
        "a nonce never issued": (wallet.proof(issuer, "bm90LWlzc3VlZA"), "invalid_nonce"),
        "no nonce": (wallet.proof(issuer, None), "invalid_proof"),
        "HS256": (hs256, "invalid_proof"),
        "typ JWT": (fresh(typ="JWT"), "invalid_proof"),
        "an hour old": (fresh(iat=now - 3600), "invalid_proof"),
        "an hour ahead": (fresh(iat=now + 3600), "invalid_proof"),
        "private key in jwk": (fresh(header={"jwk": private_jwk}), "invalid_proof"),
        "kid beside jwk": (fresh(header={"kid": "k1"}), "invalid_proof"),
        "signed by another key": (fresh(key=key, header={"jwk": wallet.key.jwk}), "invalid_proof"),
        "a holder-page nonce": (wallet.proof(issuer, holder_nonce(bench)), "invalid_nonce"),
    }
    got = {name: proof_error([proof]) for name, (proof, _) in cases.items()}
    assert got == {name: code for name, (_, code) in cases.items()}
    assert proof_error(None) == "invalid_proof"  # OpenID4VCI §8.3.1.2: proofs missing
    good = wallet.proof(issuer, wallet.nonce(issuer))
    assert (
        refused(wallet.request_credential, issuer, token, "no_such_configuration", [good]).error
        == "unknown_credential_configuration"
    )
    bad_json = wallet.credential_response(issuer, token, b'{"credential_configuration_id":')
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "invalid_credential_request"
    # Without or with a wrong access token: RFC 6750 §3.
    for bearer in (None, Token("not-a-token", "Bearer", {})):
        r = wallet.credential_response(issuer, bearer, {"credential_configuration_id": VC_SD})
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].lower().startswith("bearer")

    # §8.2: credential_identifier only after authorization_details in the token response.
    assert (
        proof_error([fresh()], extra={"credential_identifier": "x"}) == "invalid_credential_request"
    )

    # None of that spent the token: a good proof gets the credential (the older vc+sd-jwt);
    # a parameter the issuer does not know is ignored (§8.2).
    nonce = wallet.nonce(issuer)
    credential = wallet.request_credential(
        issuer, token, VC_SD, [wallet.proof(issuer, nonce)], extra={"future_parameter": 1}
    )
    held = wallet.receive(issuer, VC_SD, credential)
    assert held.header["typ"] == "vc+sd-jwt"

    # That c_nonce is spent: another offer's token cannot reuse it.
    other = bench.wallet()
    _, issuer2, token2 = redeem(bench, other, ACTIVE_EMPLOYEE)
    reused = refused(other.request_credential, issuer2, token2, SD, [other.proof(issuer2, nonce)])
    assert reused.error == "invalid_nonce"
    # The older single "proof" form is accepted too (the contract: older wallets).
    legacy = {"proof": {"proof_type": "jwt", "jwt": other.proof(issuer2, other.nonce(issuer2))}}
    credential = other.request_credential(issuer2, token2, SD, None, extra=legacy)
    other.receive(issuer2, SD, credential)


def wrong(code: str) -> str:
    """A code of the same length that differs from ``code`` everywhere."""
    return "".join("2" if c == "1" else "1" for c in code)


def test_transaction_code_attempts(bench: Bench) -> None:
    wallet = bench.wallet()
    uri, tx_code = bench.offer(ACTIVE_EMPLOYEE)
    offer = parse_offer_uri(uri)
    issuer = wallet.discover(offer)
    assert refused(wallet.token, issuer, offer, None).error == "invalid_request"
    for _ in range(5):  # the contract: at 5 wrong codes the offer is burned
        assert refused(wallet.token, issuer, offer, wrong(tx_code)).error == "invalid_grant"
    burned = refused(wallet.token, issuer, offer, tx_code)
    assert burned.error == "invalid_grant", burned

    # Four wrong codes leave the offer usable.
    uri, tx_code = bench.offer(OTHER_ACTIVE_EMPLOYEE)
    offer = parse_offer_uri(uri)
    for _ in range(4):
        assert refused(wallet.token, issuer, offer, wrong(tx_code)).error == "invalid_grant"
    wallet.token(issuer, offer, tx_code)

    forged = Offer(PUBLIC, (SD,), "no-such-code", {}, None)
    assert refused(wallet.token, issuer, forged, "123456").error == "invalid_grant"
    r = bench.http.post(issuer.as_metadata["token_endpoint"], data={"grant_type": "password"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


# -- Presentation -------------------------------------------------------------------------


def test_presentation_valid_then_revoked(bench: Bench) -> None:
    wallet = bench.wallet()
    held = issue(bench, wallet, ACTIVE_EMPLOYEE)
    jwk = wallet.issuer_jwk(held.header, held.payload, x5c=True)

    asked = bench.ask()
    request = bench.open(asked)
    _, claims = request.asked(held.payload["vct"])  # the first claim set, if there are sets
    assert DEFAULT_ASKED <= set(claims) <= DISCLOSABLE
    r, presentation = answer(bench.http, wallet.key, request, held, now=time.time())
    check_response_ok(r)
    # The presentation itself passes the independent library (KB-JWT, sd_hash, aud, nonce).
    disclosed = library_check(presentation, jwk, aud=request.client_id, nonce=request.nonce)
    result = bench.outcome(asked)
    assert result["status"] == "answered", result
    verdict = result["result"]
    assert (verdict["valid"], verdict["status"], verdict["reasons"]) == (True, "valid", [])
    assert verdict["disclosed"] == {k: disclosed[k] for k in claims}

    # Answered once: the same answer again is refused and changes nothing.
    again = respond(bench.http, request, {request.asked(held.payload["vct"])[0]: [presentation]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_request"
    assert bench.outcome(asked)["result"] == verdict

    # Replayed to another request (another nonce and state): never VALID.
    other = bench.ask()
    request2 = bench.open(other)
    query_id = request2.asked(held.payload["vct"])[0]
    check_response_ok(respond(bench.http, request2, {query_id: [presentation]}))
    replayed = bench.outcome(other)["result"]
    assert (replayed["valid"], replayed["reasons"]) == (False, ["HOLDER_BINDING_INVALID"])

    # The phone is lost: after revocation the status list says so, and so does the service.
    revoked = bench.service.credentials.revoke(
        held.credential_id, reason="phone lost", by=None, now=service_now()
    )
    assert getattr(revoked, "state", None) == "revoked"  # not held for an approval
    assert wallet.status(held) == 1
    late = bench.ask()
    request4 = bench.open(late)
    check_response_ok(answer(bench.http, wallet.key, request4, held, now=time.time())[0])
    verdict = bench.outcome(late)["result"]
    assert verdict["valid"] is False and verdict["status"] == "revoked", verdict
    assert "REVOKED" in verdict["reasons"]

    # A new phone: a new offer, a new key, a new credential that presents as VALID.
    phone = bench.wallet()
    fresh = issue(bench, phone, ACTIVE_EMPLOYEE)
    assert fresh.credential_id != held.credential_id and phone.status(fresh) == 0
    asked = bench.ask(["name"])
    check_response_ok(answer(bench.http, phone.key, bench.open(asked), fresh, now=time.time())[0])
    assert bench.outcome(asked)["result"]["valid"] is True
    assert wallet.status(held) == 1


def test_only_what_was_asked_is_seen(bench: Bench) -> None:
    """OpenID4VP §6.4.1: the wallet sends only the claims of one claim set (the holder may
    leave out the optional ones); the official's answer holds no more than the holder disclosed
    (nothing filled in from the register), and less than a claim set is not an answer."""
    wallet = bench.wallet()
    held = issue(bench, wallet, ACTIVE_EMPLOYEE)

    def outcome_of(names: list[str], claims: list[str] | None = None) -> dict[str, Any]:
        asked = bench.ask(claims)
        request = bench.open(asked)
        answer(bench.http, wallet.key, request, held, now=time.time(), names=names)
        return bench.outcome(asked)

    def seen_only(outcome: dict[str, Any], names: list[str]) -> None:
        assert outcome["result"]["disclosed"] == {n: held.claims[n] for n in names}
        text = json.dumps(outcome, ensure_ascii=False)
        for claim in DISCLOSABLE - set(names):
            value = held.claims.get(claim)
            if isinstance(value, str) and len(value) > 3:
                assert value not in text, f"{claim} reached the official without being disclosed"

    only_name = outcome_of(["name"], ["name"])
    assert only_name["result"]["valid"] is True
    seen_only(only_name, ["name"])

    # The default request: every claim set holds the defaults; the smallest set will do.
    query = bench.open(bench.ask()).claims["dcql_query"]["credentials"][0]
    claim_sets = query.get("claim_sets") or [[c["path"][0] for c in query["claims"]]]
    assert all(set(one) >= DEFAULT_ASKED for one in claim_sets)
    smallest = min(claim_sets, key=len)
    fewest = outcome_of(smallest)
    assert fewest["result"]["valid"] is True, fewest
    seen_only(fewest, smallest)
    # Less than any claim set (the photo left out) is not an answer to the request.
    short = outcome_of(sorted(DEFAULT_ASKED - {"photo"}))
    assert short["result"] is None or short["result"].get("valid") is not True


def test_presentations_that_must_never_be_valid(bench: Bench) -> None:
    wallet = bench.wallet()
    held = issue(bench, wallet, ACTIVE_EMPLOYEE)
    now = time.time()

    def kb(request: VpRequest, sd_jwt: str | None = None, **kw: Any) -> str:
        args: dict[str, Any] = {"aud": request.client_id, "nonce": request.nonce, "iat": now}
        return with_kb(kw.pop("key", wallet.key), sd_jwt or held.sd_jwt(["name"]), **args | kw)

    def tampered(request: VpRequest) -> str:
        forged = b64u(json.dumps(["c2FsdHNhbHRzYWx0c2FsdA", "name", "Someone Else"]).encode())
        others = [d.encoded for d in held.disclosures if d.name == "photo"]
        return kb(request, "~".join([held.issuer_jwt, forged, *others]) + "~")

    def other_sd_hash(request: VpRequest) -> str:
        signed = kb(request, held.sd_jwt(["name", "photo"]))
        return held.sd_jwt(["name"]) + signed.rsplit("~", 1)[1]

    def kb_as(request: VpRequest, header: dict[str, Any], drop: str = "") -> str:
        sd_jwt = held.sd_jwt(["name"])
        claims = {"iat": int(now), "aud": request.client_id, "nonce": request.nonce}
        claims["sd_hash"] = sd_hash(sd_jwt)
        claims.pop(drop, None)
        signed = wallet.key.sign(header, claims)
        if header.get("alg") == "none":
            signed = signed.rsplit(".", 1)[0] + "."
        return sd_jwt + signed

    def twice(request: VpRequest) -> str:
        name = next(d.encoded for d in held.disclosures if d.name == "name")
        return kb(request, "~".join([held.issuer_jwt, name, name]) + "~")

    def altered_issuer_jwt(request: VpRequest) -> str:
        head, body, signature = held.issuer_jwt.split(".")
        payload = json.loads(unb64u(body)) | {"exp": held.payload["exp"] + 10 * 365 * 86400}
        forged = ".".join([head, b64u(json.dumps(payload).encode()), signature])
        names = [d.encoded for d in held.disclosures if d.name == "name"]
        return kb(request, "~".join([forged, *names]) + "~")

    binding = "HOLDER_BINDING_INVALID"
    cases: dict[str, tuple[Any, str]] = {
        "no KB-JWT": (lambda r: held.sd_jwt(["name"]), binding),
        "KB-JWT an hour old": (lambda r: kb(r, iat=now - 3600), binding),
        "KB-JWT an hour ahead": (lambda r: kb(r, iat=now + 3600), binding),
        "KB-JWT for another audience": (lambda r: kb(r, aud="x509_hash:someone-else"), binding),
        "KB-JWT with another nonce": (lambda r: kb(r, nonce="another-nonce"), binding),
        "KB-JWT by another key": (lambda r: kb(r, key=HolderKey()), binding),
        "KB-JWT typ JWT": (lambda r: kb_as(r, {"typ": "JWT", "alg": "ES256"}), binding),
        "KB-JWT alg none": (lambda r: kb_as(r, {"typ": "kb+jwt", "alg": "none"}), binding),
        "KB-JWT without sd_hash": (
            lambda r: kb_as(r, {"typ": "kb+jwt", "alg": "ES256"}, "sd_hash"),
            binding,
        ),
        "a disclosure twice": (twice, "BAD_SIGNATURE"),
        "issuer JWT altered": (altered_issuer_jwt, "BAD_SIGNATURE"),
        "sd_hash of other disclosures": (other_sd_hash, binding),
        "a forged disclosure": (tampered, "BAD_SIGNATURE"),
    }
    seen = {}
    for name, (build, _) in cases.items():
        asked = bench.ask(["name"])
        request = bench.open(asked)
        query_id = request.asked(held.payload["vct"])[0]
        r = respond(bench.http, request, {query_id: [build(request)]})
        assert r.status_code in (200, 400), (name, r.text)
        result = bench.outcome(asked)["result"]
        seen[name] = None if result is None else (result["valid"], result["reasons"])
    assert seen == {name: (False, [reason]) for name, (_, reason) in cases.items()}

    # §8.1: one presentation per query (multiple is not set), as a JSON object: else refused.
    for shape in ("two presentations", "a bare string"):
        asked = bench.ask(["name"])
        request = bench.open(asked)
        query_id, one = request.asked(held.payload["vct"])[0], kb(request)
        vp_token = {query_id: [one, one]} if shape == "two presentations" else one
        r = respond(bench.http, request, vp_token)
        assert r.status_code in (200, 400), r.text
        result = bench.outcome(asked)["result"]
        assert result is None or result.get("valid") is not True, shape

    # §8.2: a wallet's error answer (the holder declined) is processed: 200, request failed.
    asked = bench.ask(["name"])
    request = bench.open(asked)
    form = {"error": "access_denied", "state": str(request.state)}
    check_response_ok(bench.http.post(request.claims["response_uri"], data=form))
    assert bench.outcome(asked)["status"] == "failed"
    # Only the page holding the poll token reads the answer.
    r = bench.http.get(
        f"{PUBLIC}/v1/presentation-requests/{asked['id']}",
        headers={"Presentation-Poll-Token": "not-the-token"},
    )
    assert r.status_code == 404

    # A wrong state is refused and stores nothing: the right answer still counts.
    asked = bench.ask(["name"])
    request = bench.open(asked)
    query_id, _ = request.asked(held.payload["vct"])
    form = {"vp_token": json.dumps({query_id: [kb(request)]}), "state": "not-the-state"}
    r = bench.http.post(request.claims["response_uri"], data=form)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert bench.outcome(asked)["status"] == "pending"
    check_response_ok(answer(bench.http, wallet.key, request, held, now=time.time())[0])
    assert bench.outcome(asked)["result"]["valid"] is True


def test_races_across_workers(bench: Bench) -> None:
    """One c_nonce, one pre-authorized code, one presentation request: used once, even by
    requests racing on the two workers."""
    wallet = bench.wallet()
    offers = [redeem(bench, wallet, person) for person in (ACTIVE_EMPLOYEE, OTHER_ACTIVE_EMPLOYEE)]
    issuer = offers[0][1]
    nonce = wallet.nonce(issuer)

    def spend(token: Token) -> str:
        try:
            credential = wallet.request_credential(issuer, token, SD, [wallet.proof(issuer, nonce)])
        except Refused as refusal:
            return refusal.error
        wallet.receive(issuer, SD, credential)
        return "issued"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(spend, [token for _, _, token in offers]))
    assert outcomes == ["invalid_nonce", "issued"]

    uri, tx_code = bench.offer(ACTIVE_EMPLOYEE)
    offer = parse_offer_uri(uri)

    def redeem_code(_: int) -> str:
        try:
            wallet.token(issuer, offer, tx_code)
        except Refused as refusal:
            return refusal.error
        return "token"

    with ThreadPoolExecutor(4) as pool:
        tokens = sorted(pool.map(redeem_code, range(4)))
    assert tokens == ["invalid_grant"] * 3 + ["token"]

    held = issue(bench, wallet, ACTIVE_EMPLOYEE)
    asked = bench.ask(["name"])
    request = bench.open(asked)

    def reply(_: int) -> int:
        return answer(bench.http, wallet.key, request, held, now=time.time())[0].status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(reply, range(4)))
    assert statuses == [200, 400, 400, 400]
    assert bench.outcome(asked)["result"]["valid"] is True


def test_an_ed25519_issuer(tmp_path: Path, db_url: str) -> None:
    """The same protocol with an issuer whose keys are Ed25519 (``IDSVC_KEY_ALG=EdDSA``): the
    SD-JWT VC, its x5c chain and the status list are checked by the wallet and the library."""
    service = make_service(make_settings(tmp_path / "home", db_url, key_alg="EdDSA"))
    service.credentials.init(now=NOW, actor="test-admin")
    service.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="hr.csv", actor="hr", now=NOW)
    try:
        with launching(service) as start, serving(service, start) as bench:
            wallet = bench.wallet()
            _, issuer, token = redeem(bench, wallet, ACTIVE_EMPLOYEE)
            proof = wallet.proof(issuer, wallet.nonce(issuer))
            credential = wallet.request_credential(issuer, token, SD, [proof])
            held = wallet.receive(issuer, SD, credential)
            assert held.header["alg"] == "EdDSA" and "x5c" in held.header
            jwk = wallet.issuer_jwk(held.header, held.payload, x5c=True)
            assert library_check(credential, jwk) == held.claims
            assert wallet.status(held) == 0
            asked = bench.ask()
            request = bench.open(asked)
            check_response_ok(answer(bench.http, wallet.key, request, held, now=time.time())[0])
            assert bench.outcome(asked)["result"]["valid"] is True
    finally:
        service.infra.db.dispose()


# -- Bad input ----------------------------------------------------------------------------


def test_oversized_bodies_are_refused_and_store_nothing(bench: Bench) -> None:
    wallet = bench.wallet()
    _, issuer, token = redeem(bench, wallet, ACTIVE_EMPLOYEE)
    big = "a" * (2 * 1024 * 1024)
    r = bench.http.post(issuer.as_metadata["token_endpoint"], data={"grant_type": big})
    assert r.status_code == 413, r.status_code
    body = json.dumps({"credential_configuration_id": SD, "padding": big}).encode()
    assert wallet.credential_response(issuer, token, body).status_code == 413
    # The token was not spent by the refused request.
    proof = wallet.proof(issuer, wallet.nonce(issuer))
    held = wallet.receive(issuer, SD, wallet.request_credential(issuer, token, SD, [proof]))

    asked = bench.ask()
    request = bench.open(asked)
    r = respond(bench.http, request, {"x": [big]})
    assert r.status_code == 413, r.status_code
    assert bench.outcome(asked)["status"] == "pending"
    check_response_ok(answer(bench.http, wallet.key, request, held, now=time.time())[0])
    assert bench.outcome(asked)["result"]["valid"] is True


# -- The holder's own page ----------------------------------------------------------------


def test_holder_session_by_key_binding(bench: Bench) -> None:
    wallet = bench.wallet()
    held = issue(bench, wallet, ACTIVE_EMPLOYEE)
    aud = f"{PUBLIC}/v1/holder"

    def session(presentation: str) -> httpx.Response:
        return bench.http.post(f"{PUBLIC}/v1/holder/sessions", json={"presentation": presentation})

    def nonce() -> str:
        return holder_nonce(bench)

    # An official checks the phone first: the holder will see it.
    asked = bench.ask(["name"])
    check_response_ok(answer(bench.http, wallet.key, bench.open(asked), held, now=time.time())[0])

    presentation = with_kb(wallet.key, held.sd_jwt([]), aud=aud, nonce=nonce(), iat=time.time())
    r = session(presentation)
    assert r.status_code in (200, 201), r.text
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    me = bench.http.get(f"{PUBLIC}/v1/holder/me", headers=bearer)
    assert me.status_code == 200, me.text
    assert {c["id"] for c in me.json()["credentials"]} >= {held.credential_id}
    checks = bench.http.get(f"{PUBLIC}/v1/holder/who-checked", headers=bearer)
    assert checks.status_code == 200, checks.text
    assert [(c["caller"], c["result"]) for c in checks.json()["checks"]] == [("anonymous", "valid")]
    assert session(presentation).status_code in (400, 401, 403)  # the nonce is spent
    elsewhere = with_kb(wallet.key, held.sd_jwt([]), aud=PUBLIC, nonce=nonce(), iat=time.time())
    assert session(elsewhere).status_code in (400, 401, 403)
    c_nonce = wallet.nonce(wallet.discover(parse_offer_uri(bench.offer(OTHER_ACTIVE_EMPLOYEE)[0])))
    issuance_nonce = with_kb(wallet.key, held.sd_jwt([]), aud=aud, nonce=c_nonce, iat=time.time())
    assert session(issuance_nonce).status_code in (400, 401, 403)  # a nonce has one purpose
    thief = with_kb(HolderKey(), held.sd_jwt([]), aud=aud, nonce=nonce(), iat=time.time())
    assert session(thief).status_code in (400, 401, 403)

    # A revoked phone credential opens no page.
    bench.service.credentials.revoke(
        held.credential_id, reason="phone lost", by=None, now=service_now()
    )
    late = with_kb(wallet.key, held.sd_jwt([]), aud=aud, nonce=nonce(), iat=time.time())
    assert session(late).status_code in (400, 401, 403)
