"""Card challenges over real HTTP, answered by the project's virtual PIV card in-process.

The card is personalised by the desk code (``personalise_card``) against the real service; the
terminal's half (read certificate and credential, sign the nonce with GENERAL AUTHENTICATE in
slot 9E) uses ``PivSession``, the same code that drives a real reader.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from idsvc.services import Services
from mobile_api.app import create_app
from tests.support.http import live_server
from tests.support.settings import ACTIVE_EMPLOYEE, NOW, OTHER_ACTIVE_EMPLOYEE
from tests.support.virtual_card import Card, issue_card


@dataclass
class Terminal:
    http: httpx.Client
    clock: list[datetime]

    def challenge(self) -> dict[str, str]:
        r = self.http.post("/v1/card-challenges")
        assert r.status_code == 201, r.text
        body: dict[str, str] = r.json()
        return body

    def answer(
        self, challenge_id: str, certificate: bytes, credential: str, signature: bytes
    ) -> dict[str, object]:
        r = self.http.post(
            "/v1/card-verifications",
            json={
                "challenge_id": challenge_id,
                "certificate": base64.b64encode(certificate).decode(),
                "credential": credential,
                "signature": base64.b64encode(signature).decode(),
            },
        )
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        return body

    def prove(self, card: Card) -> dict[str, object]:
        ch = self.challenge()
        signature = card.sign(base64.b64decode(ch["nonce"]))
        return self.answer(ch["challenge_id"], card.certificate, card.credential, signature)


@pytest.fixture
def terminal(service: Services) -> Iterator[Terminal]:
    clock = [NOW]
    with (
        live_server(create_app(service, clock=lambda: clock[0])) as base_url,
        httpx.Client(base_url=base_url, timeout=10.0) as http,
    ):
        yield Terminal(http, clock)


def test_genuine_card_verifies_once(service: Services, terminal: Terminal) -> None:
    card = issue_card(service, ACTIVE_EMPLOYEE, 10000001)
    ch = terminal.challenge()
    assert len(base64.b64decode(ch["nonce"])) == 32
    assert datetime.fromisoformat(ch["expires_at"]) > NOW
    signature = card.sign(base64.b64decode(ch["nonce"]))
    first = terminal.answer(ch["challenge_id"], card.certificate, card.credential, signature)
    assert first["valid"] is True, first
    assert first["reasons"] == []
    # The same answer again: the challenge is spent.
    again = terminal.answer(ch["challenge_id"], card.certificate, card.credential, signature)
    assert again["valid"] is False
    assert again["reasons"] == ["CHALLENGE_INVALID"]


def test_unknown_and_expired_challenges_are_invalid(service: Services, terminal: Terminal) -> None:
    card = issue_card(service, ACTIVE_EMPLOYEE, 10000002)
    unknown = terminal.answer("0" * 32, card.certificate, card.credential, card.sign(bytes(32)))
    assert unknown["reasons"] == ["CHALLENGE_INVALID"]
    ch = terminal.challenge()
    terminal.clock[0] = NOW + timedelta(seconds=service.settings.card_challenge_ttl + 1)
    late = terminal.answer(
        ch["challenge_id"],
        card.certificate,
        card.credential,
        card.sign(base64.b64decode(ch["nonce"])),
    )
    assert late["reasons"] == ["CHALLENGE_INVALID"]


def test_cloned_certificate_and_credential_are_not_genuine(
    service: Services, terminal: Terminal
) -> None:
    genuine = issue_card(service, ACTIVE_EMPLOYEE, 10000003)
    clone = issue_card(service, OTHER_ACTIVE_EMPLOYEE, 10000004)
    # A clone copies the genuine card's certificate and credential but has its own key.
    ch = terminal.challenge()
    forged = clone.sign(base64.b64decode(ch["nonce"]))
    result = terminal.answer(ch["challenge_id"], genuine.certificate, genuine.credential, forged)
    assert result["valid"] is False
    assert "CARD_NOT_GENUINE" in result["reasons"]  # type: ignore[operator]
    # A real card's own certificate and signature, but someone else's credential (cnf).
    ch = terminal.challenge()
    signature = clone.sign(base64.b64decode(ch["nonce"]))
    result = terminal.answer(ch["challenge_id"], clone.certificate, genuine.credential, signature)
    assert result["valid"] is False
    assert result["reasons"] == ["CARD_NOT_GENUINE"]
    # The signature over another nonce does not count either.
    ch = terminal.challenge()
    stale = genuine.sign(bytes(32))
    result = terminal.answer(ch["challenge_id"], genuine.certificate, genuine.credential, stale)
    assert result["reasons"] == ["CARD_NOT_GENUINE"]


def test_certificate_from_another_ca_is_not_genuine(service: Services, terminal: Terminal) -> None:
    card = issue_card(service, ACTIVE_EMPLOYEE, 10000005)
    # A self-made certificate for the card's key does not chain to the issuer CA.
    real = x509.load_der_x509_certificate(card.certificate)
    rogue_ca = ec.generate_private_key(ec.SECP256R1())
    rogue = (
        x509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rogue CA")]))
        .public_key(real.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(rogue_ca, hashes.SHA256())
    ).public_bytes(Encoding.DER)
    ch = terminal.challenge()
    signature = card.sign(base64.b64decode(ch["nonce"]))
    result = terminal.answer(ch["challenge_id"], rogue, card.credential, signature)
    assert result["reasons"] == ["CARD_NOT_GENUINE"]


def test_card_verification_body_errors(terminal: Terminal) -> None:
    r = terminal.http.post(
        "/v1/card-verifications",
        json={"challenge_id": "x", "certificate": "%%%", "credential": "a", "signature": "AAAA"},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "INVALID_REQUEST"
