"""Issue 19: the phone credential as a credential of its own (kind ``phone``), on SQLite and
PostgreSQL: the card's key and rules, a contract's end capping ``exp``, its own supersession
(never the card's), HR status changes and ``idsvc revoke`` acting on it through the same status
list, and a holder who stopped being eligible between the offer and the credential request."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store
from sqlalchemy import select

from idsvc.credentials.status_lists import status_at
from idsvc.errors import WalletRequestRefused
from idsvc.formats import sd_jwt
from idsvc.formats.jws import verify_compact
from idsvc.formats.openid4vci import PRE_AUTHORIZED_GRANT, make_proof
from idsvc.register.photos import Photos
from idsvc.services import Services
from idsvc.storage.tables import CivilServantRow, CredentialRow
from keys.file_signer import FileSigner
from keys.jwk import public_jwk
from tests.support.card_print import portrait_bytes
from tests.support.settings import ACTIVE_EMPLOYEE, NOW

REVOKED = 1  # Token Status List: VALID 0, INVALID 1, SUSPENDED 2


@pytest.fixture
def pictured(service: Services) -> Services:
    Photos(service.infra.db).store(ACTIVE_EMPLOYEE, portrait_bytes(), actor="t", now=NOW)
    return service


def _phone(
    service: Services,
    *,
    configuration: str = "civil_servant_sd_jwt",
    now: datetime = NOW,
    before_request: Any = None,
) -> str:
    """Offer, token, nonce and credential through the use cases, as the routes call them."""
    holder = FileSigner(ec.generate_private_key(ec.SECP256R1()), path=Path("never-written.pem"))
    offer = service.wallet.offer(ACTIVE_EMPLOYEE, actor=None, now=now)
    text = parse_qs(urlsplit(offer.offer_uri).query)["credential_offer"][0]
    code = json.loads(text)["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
    token = service.wallet.token(code=code, tx_code=offer.tx_code, now=now).access_token
    if before_request is not None:
        before_request()
    proof = make_proof(
        holder,
        dict(public_jwk(holder.public_key())),
        audience=service.wallet.credential_issuer,
        nonce=service.wallet.vci_nonce(now=now),
        now=now,
    )
    return service.wallet.issue_phone_credential(
        token, configuration_id=configuration, proof_jwt=proof, now=now
    )


def _payload(service: Services, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) of the issuer JWT, its signature checked with the issuer's keys."""
    ring = service.credentials.key_entries()
    assert ring
    issuer_jwt = sd_jwt.parse(text)
    with service.infra.db.transaction() as session:
        keys = service.infra.issuer(session).ring
    checked = verify_compact(
        issuer_jwt.jwt, key_for=lambda h: keys.public_key(h["kid"]), expected_typ=None
    )
    return checked.header, checked.payload


def _row(service: Services, credential_id: str) -> CredentialRow:
    with service.infra.db.transaction() as session:
        row = session.get(CredentialRow, credential_id)
        assert row is not None
        session.expunge(row)
        return row


def test_the_card_rules_and_key(pictured: Services) -> None:
    card = pictured.credentials.issue(ACTIVE_EMPLOYEE, actor="desk", now=NOW)
    header, payload = _payload(pictured, _phone(pictured))
    assert header["kid"] == card.kid and header["typ"] == "dc+sd-jwt"
    assert len(header["x5c"]) == 2  # the chain to the issuer CA: test_x5c_chains_to_the_issuer_ca
    row = _row(pictured, payload["jti"])
    assert (row.kind, row.state, row.kid, row.employee_id) == (
        "phone",
        "live",
        card.kid,
        ACTIVE_EMPLOYEE,
    )
    assert row.card_serial and row.card_serial != card.card_serial
    # `idsvc credentials` (and its --json) tell the two apart.
    kinds = {
        v.id: v.as_dict()["kind"] for v in pictured.credentials.credentials_of(ACTIVE_EMPLOYEE)
    }
    assert kinds == {card.id: "card", row.id: "phone"}
    assert row.expires_at == card.expires_at  # the same validity policy
    assert payload["exp"] == int(card.expires_at.timestamp())
    # The status slot is its own, in the same lists as the card's.
    card_row = _row(pictured, card.id)
    assert row.status_list_id == card_row.status_list_id and row.status_idx != card_row.status_idx
    _, vc_payload = _payload(pictured, _phone(pictured, configuration="civil_servant_vc_sd_jwt"))
    assert _row(pictured, vc_payload["jti"]).state == "live"
    # A new phone credential supersedes the previous one, never the card.
    assert _row(pictured, payload["jti"]).state == "superseded"
    assert _row(pictured, card.id).state == "live"


def test_x5c_chains_to_the_issuer_ca(pictured: Services) -> None:
    """Another wallet's check (SD-JWT VC, X.509): the leaf of ``x5c`` certifies the key that
    signed the issuer JWT, names ``iss``, and is issued by the ministry's CA; the card's JWT
    keeps finding its key by ``kid`` alone."""
    text = _phone(pictured)
    header, payload = _payload(pictured, text)
    leaf, top = (x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"])
    with pictured.infra.db.transaction() as session:
        anchor = pictured.infra.issuer(session).ring.ca_certificate()
    assert top == anchor
    # The leaf's own key verifies the signature (no JWKS needed).
    leaf_key = leaf.public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    checked = verify_compact(
        sd_jwt.parse(text).jwt, key_for=lambda h: leaf_key, expected_typ="dc+sd-jwt"
    )
    assert checked.payload == payload
    verifier = (
        PolicyBuilder()
        .store(Store([anchor]))
        .time(NOW)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
        )
        .build_client_verifier()
    )
    assert verifier.verify(leaf, []).chain == [leaf, anchor]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [payload["iss"]]
    # The same chain for the next credential (every worker reads the one certificate).
    again, _ = _payload(pictured, _phone(pictured, configuration="civil_servant_vc_sd_jwt"))
    assert again["x5c"] == header["x5c"]
    card = pictured.credentials.issue(ACTIVE_EMPLOYEE, actor="desk", now=NOW)
    assert "x5c" not in jwt.get_unverified_header(card.token)


def test_a_contract_end_caps_exp(pictured: Services) -> None:
    with pictured.infra.db.transaction() as session:
        person = session.get(CivilServantRow, ACTIVE_EMPLOYEE)
        assert person is not None
        person.contract_end = date(2027, 3, 31)
    _, payload = _payload(pictured, _phone(pictured))
    assert payload["exp"] == int(datetime(2027, 4, 1, tzinfo=UTC).timestamp())


def test_death_revokes_the_phone_credential_in_the_status_list(pictured: Services) -> None:
    card = pictured.credentials.issue(ACTIVE_EMPLOYEE, actor="desk", now=NOW)
    _, payload = _payload(pictured, _phone(pictured))
    later = NOW + timedelta(days=1)
    pictured.register.correct_status(
        ACTIVE_EMPLOYEE, status="deceased", reason="death certificate 123", by=None, now=later
    )
    status = payload["status"]["status_list"]
    with pictured.infra.db.transaction() as session:
        assert status_at(session, status["uri"], status["idx"]) == REVOKED
        rows = session.execute(
            select(CredentialRow.kind, CredentialRow.state).where(
                CredentialRow.employee_id == ACTIVE_EMPLOYEE
            )
        ).all()
    assert sorted(rows) == [("card", "revoked"), ("phone", "revoked")]
    assert _row(pictured, card.id).state == "revoked"


def test_revoke_acts_on_the_phone_credential_alone(pictured: Services) -> None:
    card = pictured.credentials.issue(ACTIVE_EMPLOYEE, actor="desk", now=NOW)
    _, payload = _payload(pictured, _phone(pictured))
    pictured.credentials.revoke(payload["jti"], reason="phone lost", by=None, now=NOW)
    status = payload["status"]["status_list"]
    with pictured.infra.db.transaction() as session:
        assert status_at(session, status["uri"], status["idx"]) == REVOKED
    assert _row(pictured, card.id).state == "live"
    # A new offer can be made and redeemed for the new phone.
    _, again = _payload(pictured, _phone(pictured))
    assert _row(pictured, again["jti"]).state == "live"


def test_a_holder_no_longer_eligible_gets_nothing(pictured: Services) -> None:
    def retire() -> None:
        pictured.register.correct_status(
            ACTIVE_EMPLOYEE, status="retired", reason="retired early", by=None, now=NOW
        )

    with pytest.raises(WalletRequestRefused) as refused:
        _phone(pictured, before_request=retire)
    assert refused.value.error == "credential_request_denied"
    with pictured.infra.db.transaction() as session:
        assert session.execute(select(CredentialRow)).first() is None
