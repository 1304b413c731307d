"""Card challenges over the API: prove a card is the genuine card its credential names.

1. ``create`` stores a random 32-byte nonce with a short life (``IDSVC_CARD_CHALLENGE_TTL``)
   in the database, so any worker can check the answer.
2. The terminal asks the card to sign it: PIV GENERAL AUTHENTICATE with the
   card-authentication key (slot 9E, no PIN), ECDSA P-256 with the 32-byte nonce given as the
   digest, the same rule as the desk (``idsvc.desk_client.cards.challenge_card``), so a real card's
   answer
   verifies.
3. ``verify_card`` consumes the challenge (one ``UPDATE .. WHERE used_at IS NULL AND
   expires_at > now`` : single use even with two workers racing), then checks that the
   certificate chains to an issuer CA, that the signature over the nonce is the certificate
   key's, and that the credential's ``cnf`` names that key. Any failure of these is
   ``CARD_NOT_GENUINE``; an unknown, expired or used challenge is ``CHALLENGE_INVALID``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from sqlalchemy import delete, update

from idsvc.audit.who_checked import CheckedBy
from idsvc.credentials import issuers
from idsvc.credentials.infrastructure import Infrastructure
from idsvc.storage.client_tables import CardChallengeRow
from idsvc.verification.online import OnlineVerifier
from idsvc.verification.rules import Reason, VerificationResult
from keys.ca import verify_card_certificate
from keys.errors import KeysError

NONCE_BYTES = 32  # the SHA-256 digest size a P-256 PIV key signs


@dataclass(frozen=True)
class Challenge:
    id: str
    nonce: bytes
    expires_at: datetime


def _not_genuine(result: VerificationResult) -> VerificationResult:
    if Reason.CARD_NOT_GENUINE in result.reasons:
        return result
    return replace(
        result,
        valid=False,
        status="not_genuine",
        reasons=(*result.reasons, Reason.CARD_NOT_GENUINE),
    )


class CardChallenges:
    def __init__(self, infra: Infrastructure, verifier: OnlineVerifier) -> None:
        self._infra = infra
        self._verifier = verifier

    def create(self, now: datetime) -> Challenge:
        ttl = timedelta(seconds=self._infra.settings.card_challenge_ttl)
        challenge = Challenge(secrets.token_hex(16), secrets.token_bytes(NONCE_BYTES), now + ttl)
        with self._infra.db.transaction() as session:
            session.add(
                CardChallengeRow(
                    id=challenge.id,
                    nonce=challenge.nonce.hex(),
                    created_at=now,
                    expires_at=challenge.expires_at,
                    used_at=None,
                )
            )
            # Keep the table small: challenges that ended a day ago serve no one.
            session.execute(
                delete(CardChallengeRow).where(
                    CardChallengeRow.expires_at < now - timedelta(days=1)
                )
            )
        return challenge

    def _consume(self, challenge_id: str, now: datetime) -> bytes | None:
        with self._infra.db.transaction() as session:
            nonce = session.execute(
                update(CardChallengeRow)
                .where(
                    CardChallengeRow.id == challenge_id[:32],
                    CardChallengeRow.used_at.is_(None),
                    CardChallengeRow.expires_at > now,
                )
                .values(used_at=now)
                .returning(CardChallengeRow.nonce)
            ).scalar_one_or_none()
        return None if nonce is None else bytes.fromhex(nonce)

    def _ca_certificates(self) -> list[x509.Certificate]:
        self._infra.require_ready()
        with self._infra.db.transaction() as session:
            return [
                i.ring.ca_certificate() for i in issuers.load_issuers(session, self._infra.rings)
            ]

    def _card_key(
        self, certificate: bytes, nonce: bytes, signature: bytes, now: datetime
    ) -> ec.EllipticCurvePublicKey | None:
        """The certificate's key if the certificate chains to an issuer CA and that key signed
        the nonce; None otherwise."""
        try:
            cert = x509.load_der_x509_certificate(certificate)
        except ValueError:
            return None
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return None
        for ca in self._ca_certificates():
            try:
                verify_card_certificate(ca, cert, now=now)
                break
            except KeysError:
                continue
        else:
            return None
        try:
            key.verify(signature, nonce, ec.ECDSA(Prehashed(hashes.SHA256())))
        except (InvalidSignature, ValueError):
            return None
        return key

    def verify_card(
        self,
        challenge_id: str,
        *,
        certificate: bytes,
        credential: str,
        signature: bytes,
        by: CheckedBy,
        now: datetime,
    ) -> VerificationResult:
        nonce = self._consume(challenge_id, now)
        if nonce is None:
            result = VerificationResult(
                valid=False, status="invalid", reasons=(Reason.CHALLENGE_INVALID,)
            )
            self._verifier.record(result, kind="card", by=by, now=now)
            return result
        card_key = self._card_key(certificate, nonce, signature, now)
        if card_key is None:
            result = _not_genuine(self._verifier.check(credential, now=now))
        else:
            # card_key makes verify_credential check the cnf binding (CARD_NOT_GENUINE).
            result = self._verifier.check(credential, now=now, card_key=card_key)
        self._verifier.record(result, kind="card", by=by, now=now)
        return result
