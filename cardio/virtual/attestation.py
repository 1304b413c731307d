"""The virtual card's maker: a test attestation CA, and each card's attestation key (slot F9).

A YubiKey proves that a key was generated on it with ATTEST (INS F9): an X.509 certificate of
the slot's public key, subject ``CN=YubiKey PIV Attestation 9e``, signed by the device's
attestation key in slot F9, whose certificate (object 5FFF01) is signed by Yubico's CA. The
virtual card plays the same with a CA made here. TEST AND TRAINING ONLY: its key lies in a file,
so a centre that trusts this CA trusts software keys; production trusts the maker's CA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .state import CardState, SlotKey

ATTESTATION_SLOT = 0xF9
ATTESTATION_OBJECT = 0x5FFF01
ALG_P256 = 0x11
# Yubico's extension for the device serial in attestation certificates (a DER INTEGER).
OID_DEVICE_SERIAL = x509.ObjectIdentifier("1.3.6.1.4.1.41482.3.7")
NEVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # what Yubico's certificates say too
CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "idsvc virtual cards (TEST ONLY)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # leading 0: stays positive
    return bytes([0x02, len(body)]) + body


@dataclass(frozen=True)
class AttestationCa:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, now: datetime | None = None) -> AttestationCa:
        now = now or datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name("idsvc virtual PIV attestation CA")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(NEVER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load_or_create(cls, directory: Path) -> AttestationCa:
        """The CA kept in ``directory`` (``ca.pem``, ``ca-key.pem`` mode 0600), made if absent."""
        directory = Path(directory)
        cert_file, key_file = directory / CA_CERT_FILE, directory / CA_KEY_FILE
        if cert_file.exists() and key_file.exists():
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_file} is not an EC key")
            return cls(key, x509.load_pem_x509_certificate(cert_file.read_bytes()))
        ca = cls.create()
        directory.mkdir(parents=True, exist_ok=True)
        pem = ca.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        cert_file.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
        return ca

    def provision(self, state: CardState, now: datetime | None = None) -> None:
        """Give the card an attestation key (slot F9) and its certificate (object 5FFF01),
        as the maker does at the factory."""
        now = now or datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"idsvc virtual PIV attestation key {state.serial}"))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(NEVER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        state.keys[ATTESTATION_SLOT] = SlotKey(ALG_P256, pem, generated=True)
        der = cert.public_bytes(serialization.Encoding.DER)
        # Stored as a PIV certificate object: 70 certificate, 71 CertInfo (not compressed).
        state.objects[ATTESTATION_OBJECT] = (
            bytes([0x70, 0x82]) + len(der).to_bytes(2, "big") + der + b"\x71\x01\x00"
        )


def attest(state: CardState, slot: int) -> bytes:
    """The DER attestation certificate of the key in ``slot``, signed with the F9 key.

    ``KeyError`` if the card has no attestation key or ``slot`` no key; ``ValueError`` if that
    key was imported (a YubiKey will not attest those either).
    """
    signer, stored = state.keys[ATTESTATION_SLOT], state.keys[slot]
    if not stored.generated:
        raise ValueError("an imported key cannot be attested")
    signer_key = serialization.load_pem_private_key(signer.pem.encode("ascii"), password=None)
    key = serialization.load_pem_private_key(stored.pem.encode("ascii"), password=None)
    if not isinstance(signer_key, ec.EllipticCurvePrivateKey) or not isinstance(
        key, ec.EllipticCurvePrivateKey
    ):
        raise ValueError("not an EC key")
    signer_cert = x509.load_der_x509_certificate(_certificate_der(state))
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"PIV Attestation {slot:02x}")])
        )
        .issuer_name(signer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(signer_cert.not_valid_before_utc)  # as Yubico's: the F9 key's dates
        .not_valid_after(NEVER)
        .add_extension(
            x509.UnrecognizedExtension(OID_DEVICE_SERIAL, _der_integer(state.serial)),
            critical=False,
        )
        .sign(signer_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _certificate_der(state: CardState) -> bytes:
    value = state.objects[ATTESTATION_OBJECT]
    length = int.from_bytes(value[2:4], "big")
    return value[4 : 4 + length]
