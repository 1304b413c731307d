"""What the centre and a desk hand each other during an issuance, free of the database.

A desk imports this module (``idsvc.desk_client``): it must never pull in the register or the
storage layer, which is why these types do not live in ``idsvc.credentials.issuance`` with the
use cases that make them. The protocol itself is described in docs/desks.md.

- ``KeyAttestation``: a card's proof that its key was generated on it (PIV ATTEST);
- ``verify_key_attestation``: the centre's check of that proof;
- ``PendingIssuance``: a signed credential waiting for the desk's confirmation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from idsvc.credentials.printed_qr import PrintedQr
from idsvc.errors import KeyNotAttested
from idsvc.formats.credentials import Holder

CARD_KEY_SLOT = 0x9E  # the card-authentication slot the desk generates the key in
PIV_ATTESTATION = "piv-attest"  # CredentialRow.key_attestation: how the key was proven
# YubiKey: "CN=YubiKey PIV Attestation 9e"; the slot is only named there.
_ATTESTED_SLOT = re.compile(r"PIV Attestation ([0-9A-Fa-f]{2})$")


@dataclass(frozen=True)
class KeyAttestation:
    """A card's proof that its key was generated on it (PIV ATTEST, as YubiKeys do), DER."""

    certificate: bytes  # ATTEST on the slot: the key, signed by the card's attestation key
    signer: bytes  # the attestation key's certificate (slot F9, object 5FFF01)


def verify_key_attestation(
    attestation: KeyAttestation,
    card_key: EllipticCurvePublicKey,
    *,
    roots: list[x509.Certificate],
    now: datetime,
) -> str:
    """Check the chain (statement ← F9 certificate ← a trusted maker CA), that the attested key
    is ``card_key`` and that it sits in the card-authentication slot; return who vouches for
    it (the maker CA's subject). ``KeyNotAttested`` says what failed."""
    try:
        statement = x509.load_der_x509_certificate(attestation.certificate)
        signer = x509.load_der_x509_certificate(attestation.signer)
    except ValueError:
        raise KeyNotAttested("the key attestation is not a pair of certificates") from None
    for cert in (statement, signer):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise KeyNotAttested("a key attestation certificate is outside its validity")
    if not _issued_by(statement, signer):
        raise KeyNotAttested("the key attestation is not signed by the card's attestation key")
    root = next((ca for ca in roots if _issued_by(signer, ca)), None)
    if root is None:
        raise KeyNotAttested("the card's attestation key does not chain to a trusted maker CA")
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if statement.public_key().public_bytes(*spki) != card_key.public_bytes(*spki):
        raise KeyNotAttested("the attested key is not the card key sent for the credential")
    names = statement.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    match = _ATTESTED_SLOT.search(str(names[0].value)) if names else None
    if match is None or int(match.group(1), 16) != CARD_KEY_SLOT:
        raise KeyNotAttested("the attested key is not in the card-authentication slot (9E)")
    return root.subject.rfc4514_string()


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True)
class PendingIssuance:
    credential_id: str
    employee_id: str
    token: str
    card_serial: str
    card_uuid: str | None
    card_certificate_der: bytes | None
    holder: Holder
    pending_until: datetime
    issuer_code: str
    # The printed Claim 169 QR of the same credential, so that a remote desk can print the
    # card face without the issuer key (docs/desks.md).
    qr: PrintedQr
