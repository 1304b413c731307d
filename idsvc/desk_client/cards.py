"""The issuance desk's card use cases: personalise a PIV card, read it, prove it genuine, wipe it.

The desk talks to a card through ``cardio`` and to the centre through ``IssuanceCentre`` (the
begin/confirm protocol of ``idsvc.credentials.issuance``). In the embedded deployment the centre is
the local credentials feature (``idsvc.credentials.use_cases.Credentials``); a remote desk gives
its HTTP client (``idsvc.desk_client.centre_client.CentreClient``). Both satisfy the Protocol.
Either way the desk never sees the issuer's private key, and nothing is live until the card has
been written, read back and has answered a challenge with the key the credential names.

If the card is pulled or the reader fails at any step, the pending issuance is abandoned (or, if
even that cannot be recorded, it expires unconfirmed) and ``CardIssuanceFailed`` says to
re-insert and retry; a retry starts from the beginning and is safe.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding

from cardio.apdu import ApduConnection
from cardio.errors import CardError, CardRemoved, NotFound
from cardio.ndef import NdefSession, ndef_message, parse_uri_message, uri_record
from cardio.piv import (
    Chuid,
    KeyType,
    ManagementKeyType,
    ObjectId,
    PivSession,
    PrintedInformation,
    Slot,
)
from cardio.transport import Transport
from idsvc.credentials.handover import KeyAttestation, PendingIssuance
from idsvc.errors import CardIssuanceFailed, CardNotIssued
from idsvc.formats.claim169 import fragment_of
from idsvc.verification.rules import Reason, VerificationResult
from keys.ca import verify_card_certificate
from keys.errors import KeysError

DEFAULT_PIN = "123456"
DEFAULT_PUK = "12345678"


class IssuanceCentre(Protocol):
    """The centre's half of the issuance protocol."""

    def check_eligible(self, employee_id: str) -> None:
        """Raise if the register would refuse this person (before the card is touched)."""
        ...

    def begin_card_issuance(
        self,
        employee_id: str,
        *,
        card_key: ec.EllipticCurvePublicKey,
        card_uuid: uuid.UUID,
        actor: str,
        now: datetime,
        attestation: KeyAttestation | None = None,
    ) -> PendingIssuance: ...

    def confirm_issuance(self, credential_id: str, *, actor: str, now: datetime) -> Any: ...

    def abandon_issuance(
        self, credential_id: str, *, reason: str, actor: str, now: datetime
    ) -> None: ...


@dataclass(frozen=True)
class CardSecrets:
    management_key: bytes
    management_key_type: ManagementKeyType
    current_pin: str = DEFAULT_PIN
    current_puk: str = DEFAULT_PUK
    new_pin: str | None = None
    new_puk: str | None = None


@dataclass
class IssuedCard:
    credential_id: str
    card_uuid: str
    card_serial: str
    token: str
    verify_url: str
    qr_text: str = ""  # the printed Claim 169 QR of the same credential, for the card face
    commands_sent: int = 0
    apdus_sent: int = 0


@dataclass
class CardReport:
    """What ``card read`` / ``card verify`` found."""

    result: VerificationResult
    card_uuid: str | None
    certificate_subject: str | None
    challenge_checked: bool
    commands_sent: int = 0
    details: dict[str, str] = field(default_factory=dict)


Progress = Callable[[str], None]

ISSUE_STEPS = (
    "select card",
    "authenticate",
    "generate card key",
    "sign at the centre",
    "write certificate",
    "write CHUID",
    "write printed information",
    "write credential",
    "set PIN/PUK",
    "write NDEF",
    "read back",
    "challenge",
    "confirm",
)


def _noop(_: str) -> None:
    return None


def _card_uuid(piv: PivSession) -> uuid.UUID:
    """Keep the card's UUID across re-issuance: it names the physical card."""
    try:
        return Chuid.parse(piv.get_object(ObjectId.CHUID)).guid
    except NotFound:
        return uuid.uuid4()


def challenge_card(piv: PivSession, cert: x509.Certificate) -> None:
    """Ask the card-authentication key to sign a fresh random challenge; raise if it fails."""
    nonce = secrets.token_bytes(32)
    signature = piv.sign_challenge(Slot.CARD_AUTH, nonce)
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidSignature("card certificate key is not EC")
    key.verify(signature, nonce, ec.ECDSA(Prehashed(hashes.SHA256())))


def personalise_card(
    transport: Transport,
    centre: IssuanceCentre,
    *,
    employee_id: str,
    card_secrets: CardSecrets,
    ca_certificate: x509.Certificate,
    verify_url_base: str,
    actor: str,
    now: datetime,
    progress: Progress = _noop,
) -> IssuedCard:
    """Write a credential onto the card in ``transport``; confirm it only once read back."""
    extended = bool(getattr(transport, "extended_length", False))
    sessions: list[PivSession | NdefSession] = []
    pending: PendingIssuance | None = None
    # Ask first: a refusal must not cost the card its key.
    centre.check_eligible(employee_id)
    try:
        progress("select card")
        piv = PivSession(transport, extended=extended)
        sessions.append(piv)
        card_uuid = _card_uuid(piv)
        progress("authenticate")
        piv.authenticate(card_secrets.management_key_type, card_secrets.management_key)
        progress("generate card key")
        card_key = piv.generate_key(Slot.CARD_AUTH, KeyType.ECCP256)
        # The card's proof that it made the key; the centre decides if it needs one.
        attested = piv.attest_key(Slot.CARD_AUTH)
        progress("sign at the centre")
        pending = centre.begin_card_issuance(
            employee_id,
            card_key=card_key,
            card_uuid=card_uuid,
            actor=actor,
            now=now,
            attestation=None
            if attested is None
            else KeyAttestation(*(c.public_bytes(Encoding.DER) for c in attested)),
        )
        assert pending.card_certificate_der is not None
        cert = x509.load_der_x509_certificate(pending.card_certificate_der)
        online_url = f"{verify_url_base.rstrip('/')}/{pending.credential_id}"
        # The tap URL carries the signed printed QR in its fragment, so a phone verifies the
        # card offline and the credential never reaches a server (docs/claim169.md).
        verify_url = f"{online_url}#{fragment_of(pending.qr.text)}"
        progress("write certificate")
        piv.put_certificate(Slot.CARD_AUTH, cert)
        progress("write CHUID")
        expiry: date = cert.not_valid_after_utc.date()
        piv.put_object(ObjectId.CHUID, Chuid.build(card_uuid, expiry))
        progress("write printed information")
        holder = pending.holder
        piv.put_object(
            ObjectId.PRINTED_INFORMATION,
            PrintedInformation.build(
                name=holder.name_latin,
                employee_affiliation=holder.category,
                expiry=expiry,
                agency_card_serial=pending.card_serial,
                issuer_id=pending.issuer_code,
                organization_affiliation=holder.ministry,
            ),
        )
        progress("write credential")
        piv.put_object(ObjectId.CREDENTIAL, pending.token.encode())
        progress("set PIN/PUK")
        if card_secrets.new_pin:
            piv.change_pin(card_secrets.current_pin, card_secrets.new_pin)
        if card_secrets.new_puk:
            piv.change_puk(card_secrets.current_puk, card_secrets.new_puk)
        progress("write NDEF")
        ndef = NdefSession(transport)
        sessions.append(ndef)
        message = ndef_message([uri_record(verify_url)])
        if not ndef.fits(message):
            # A card with a small NDEF file still gets a working (online) tap URL.
            verify_url = online_url
            message = ndef_message([uri_record(verify_url)])
        ndef.write_message(message)
        if parse_uri_message(ndef.read_message()) != verify_url:
            raise CardIssuanceFailed("the NDEF record read back differs from what was written")
        progress("read back")
        piv = PivSession(transport, extended=extended)
        sessions.append(piv)
        if (
            piv.get_certificate(Slot.CARD_AUTH).public_bytes(Encoding.DER)
            != pending.card_certificate_der
        ):
            raise CardIssuanceFailed("the certificate read back differs from what was written")
        if piv.get_object(ObjectId.CREDENTIAL) != pending.token.encode():
            raise CardIssuanceFailed("the credential read back differs from what was written")
        if Chuid.parse(piv.get_object(ObjectId.CHUID)).guid != card_uuid:
            raise CardIssuanceFailed("the CHUID read back differs from what was written")
        verify_card_certificate(ca_certificate, cert, now=now)
        progress("challenge")
        challenge_card(piv, cert)
        progress("confirm")
        centre.confirm_issuance(pending.credential_id, actor=actor, now=now)
    except (CardError, InvalidSignature, KeysError, CardIssuanceFailed) as exc:
        if pending is not None:
            # If even this fails (database down) the issuance expires unconfirmed anyway.
            with contextlib.suppress(Exception):
                centre.abandon_issuance(
                    pending.credential_id,
                    reason=f"card step failed: {type(exc).__name__}",
                    actor=actor,
                    now=now,
                )
        if isinstance(exc, CardIssuanceFailed):
            raise
        what = "the card was removed or reset" if isinstance(exc, CardRemoved) else str(exc)
        raise CardIssuanceFailed(
            f"card issuance failed ({what}); nothing was made live. "
            "Re-insert the card and run the same command again (retry is safe)."
        ) from exc
    return IssuedCard(
        credential_id=pending.credential_id,
        card_uuid=str(card_uuid),
        card_serial=pending.card_serial,
        token=pending.token,
        verify_url=verify_url,
        qr_text=pending.qr.text,
        commands_sent=sum(_connection(x).commands_sent for x in sessions),
        apdus_sent=sum(_connection(x).apdus_sent for x in sessions),
    )


def _connection(session: PivSession | NdefSession) -> ApduConnection:
    return session.connection


TokenCheck = Callable[[str, ec.EllipticCurvePublicKey | None], VerificationResult]


def inspect_card(
    transport: Transport,
    *,
    ca_certificates: list[x509.Certificate],
    check_token: TokenCheck,
    now: datetime,
    challenge: bool,
) -> CardReport:
    """Read the card's certificate and credential; with ``challenge``, prove the card genuine.

    The challenge check is the anti-cloning test: the certificate must chain to an issuer CA,
    the card must sign a fresh nonce with that certificate's key, and the credential's ``cnf``
    must name that same key. Any failure there is ``CARD_NOT_GENUINE``.
    """
    piv = PivSession(transport, extended=bool(getattr(transport, "extended_length", False)))
    try:
        cert = piv.get_certificate(Slot.CARD_AUTH)
        token = piv.get_object(ObjectId.CREDENTIAL).decode("utf-8", "replace")
    except NotFound as exc:
        raise CardNotIssued("credential not found on the card: it is blank or was wiped") from exc
    genuine = True
    why = ""
    try:
        _chain_to_any(cert, ca_certificates, now)
        if challenge:
            challenge_card(piv, cert)
    except (InvalidSignature, KeysError, CardError) as exc:
        genuine = False
        why = type(exc).__name__
    key = cert.public_key()
    card_key = key if isinstance(key, ec.EllipticCurvePublicKey) else None
    result = check_token(token, card_key)
    if not genuine and Reason.CARD_NOT_GENUINE not in result.reasons:
        reasons = (*result.reasons, Reason.CARD_NOT_GENUINE)
        result = VerificationResult(
            valid=False,
            status="not_genuine",
            reasons=reasons,
            holder=result.holder,
            credential_id=result.credential_id,
            issuer=result.issuer,
            expires_at=result.expires_at,
        )
    card_uuid = _card_uuid_of(cert)
    subject = cert.subject.rfc4514_string()
    details = {"certificate_sha256": hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()}
    if why:
        details["challenge_failure"] = why
    return CardReport(
        result=result,
        card_uuid=card_uuid,
        certificate_subject=subject,
        challenge_checked=challenge and genuine,
        commands_sent=piv.connection.commands_sent,
        details=details,
    )


def _card_uuid_of(cert: x509.Certificate) -> str | None:
    """The card UUID from the certificate's ``urn:uuid:`` SAN (no extra APDU needed)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith("urn:uuid:"):
            return uri.removeprefix("urn:uuid:")
    return None


def _chain_to_any(cert: x509.Certificate, cas: list[x509.Certificate], now: datetime) -> None:
    last: Exception | None = None
    for ca in cas:
        try:
            verify_card_certificate(ca, cert, now=now)
            return
        except KeysError as exc:
            last = exc
    raise last if last is not None else InvalidSignature("no issuer CA to check against")


@dataclass(frozen=True)
class CardOnHand:
    """What a card holds just before a wipe: which card, and the credential token on it."""

    card_uuid: str | None
    token: str | None

    @property
    def claimed_credential_id(self) -> str | None:
        """The ``jti`` the token names, read without checking its signature: good enough to
        tell the register which credential a wiped card held, never to act on alone."""
        if self.token is None:
            return None
        try:
            payload = self.token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            return None
        jti = claims.get("jti") if isinstance(claims, dict) else None
        return jti if isinstance(jti, str) and 0 < len(jti) <= 64 else None


def _card_on_hand(piv: PivSession) -> CardOnHand:
    try:
        card_uuid: str | None = str(Chuid.parse(piv.get_object(ObjectId.CHUID)).guid)
    except NotFound:
        card_uuid = None
    try:
        token: str | None = piv.get_object(ObjectId.CREDENTIAL).decode("utf-8", "replace")
    except NotFound:
        token = None
    return CardOnHand(card_uuid, token)


def wipe_card(
    transport: Transport,
    card_secrets: CardSecrets,
    *,
    before: Callable[[CardOnHand], None] | None = None,
) -> list[str]:
    """Delete our objects (credential, certificate, printed info, NDEF URL); keep the CHUID.

    ``before`` gets what the card holds once the management key has been accepted (a wrong
    key fails first, so nothing is asked or recorded for a card that cannot be wiped) and
    before anything is deleted: the register's or the centre's decision and record go there,
    and an exception from it leaves the card as it was.

    The card key cannot be deleted through PIV; generating a new one at re-issue replaces it.
    """
    piv = PivSession(transport, extended=bool(getattr(transport, "extended_length", False)))
    card = _card_on_hand(piv) if before is not None else None
    piv.authenticate(card_secrets.management_key_type, card_secrets.management_key)
    if before is not None and card is not None:
        before(card)
    removed = []
    for name, object_id in (
        ("credential", ObjectId.CREDENTIAL),
        ("certificate", ObjectId.CERT_9E),
        ("printed information", ObjectId.PRINTED_INFORMATION),
    ):
        piv.put_object(object_id, None)
        removed.append(name)
    NdefSession(transport).write_message(b"")
    removed.append("NDEF URL")
    return removed
