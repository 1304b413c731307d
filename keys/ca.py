"""The issuer CA: a self-signed root that certifies the keys generated on ID cards and the
service's own signing keys (credentials, OpenID4VP requests).

Certificates are signed *through* a :class:`~keys.signer.Signer`, so the CA key can live
in an HSM. cryptography only signs with private keys it holds, so the to-be-signed
certificate is built by signing a draft with a throw-away key of the same type (which
fixes the algorithm identifier inside the TBS), then the TBS bytes are signed by the
Signer and the certificate is assembled in DER by hand.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from keys import der
from keys.algorithms import PublicKey, es256_der_from_raw, generate_private_key
from keys.errors import BadSignature, CertificateError, UnsupportedAlgorithm
from keys.signer import Signer, verify_signature
from keys.timestamps import require_aware

__all__ = ["CardPublicKey", "IssuerCA", "verify_card_certificate"]

# FIPS 201 / SP 800-73 id-PIV-cardAuth: marks a PIV Card Authentication certificate.
ID_PIV_CARD_AUTH: Final = ObjectIdentifier("2.16.840.1.101.3.6.8")

_MIN_RSA_BITS: Final = 2048
_CARD_CURVES: Final = (ec.SECP256R1, ec.SECP384R1)

CardPublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


class IssuerCA:
    """A CA certificate together with the Signer that holds its private key."""

    __slots__ = ("_certificate", "_signer")

    def __init__(self, certificate: x509.Certificate, signer: Signer) -> None:
        if _spki(certificate.public_key()) != _spki(signer.public_key()):
            raise CertificateError("ca_invalid", "the CA certificate is not for this signer's key")
        _require_ca(certificate)
        self._certificate = certificate
        self._signer = signer

    @classmethod
    def create(
        cls,
        signer: Signer,
        *,
        common_name: str,
        organization: str,
        now: datetime,
        valid_days: int,
        country: str | None = None,
    ) -> x509.Certificate:
        """A self-signed CA certificate (pathlen 0: it certifies cards, not other CAs)."""
        now = require_aware(now)
        if valid_days <= 0:
            raise ValueError("valid_days must be positive")
        attributes = [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
        if country is not None:
            attributes.insert(0, x509.NameAttribute(NameOID.COUNTRY_NAME, country))
        name = x509.Name(attributes)
        public_key = signer.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
            )
        )
        return _sign(builder, signer)

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def signer(self) -> Signer:
        return self._signer

    def issue_card_certificate(
        self,
        card_public_key: CardPublicKey,
        *,
        common_name: str,
        card_uuid: uuid.UUID,
        serial: int | None,
        now: datetime,
        not_after: datetime,
    ) -> x509.Certificate:
        """Certify a key generated on a card (PIV Card Authentication, slot 9E).

        The card is named by ``urn:uuid:<card uuid>`` in the SAN, as PIV cards without
        a FASC-N are. ``serial`` defaults to a random 159-bit number.
        """
        now = require_aware(now)
        not_after = require_aware(not_after, "not_after")
        _require_card_key(card_public_key)
        if not isinstance(card_uuid, uuid.UUID):
            raise TypeError("card_uuid must be a uuid.UUID")
        if not_after <= now:
            raise ValueError("not_after must be later than now")
        ca = self._certificate
        if not_after > ca.not_valid_after_utc:
            raise ValueError("not_after is beyond the CA certificate's validity")
        if not ca.not_valid_before_utc <= now <= ca.not_valid_after_utc:
            raise CertificateError("ca_invalid", "the CA certificate is not valid at this time")
        if serial is not None and not 0 < serial < 2**159:
            raise ValueError("serial must be a positive integer of at most 159 bits")
        ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        organizations = ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), *organizations])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(card_public_key)
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ID_PIV_CARD_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(card_uuid.urn)]),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(card_public_key), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
        )
        return _sign(builder, self._signer)

    def issue_signing_certificate(
        self,
        public_key: PublicKey,
        *,
        common_name: str,
        now: datetime,
        not_after: datetime,
        not_before: datetime | None = None,
        uri: str | None = None,
        dns_name: str | None = None,
    ) -> x509.Certificate:
        """Certify one of the service's own signing keys (the key that signs credentials, or
        the one that signs OpenID4VP requests), so that a wallet can check a JWT's ``x5c``
        chain up to this CA and show the chain's names to its holder.

        Digital signature only and none of a card's marks (no PIV card-authentication or
        client-auth usage). The subject is ``common_name`` under the CA's organization (the
        issuer); ``uri`` and ``dns_name``, when given, name the key's owner in the SAN.
        ``not_before`` defaults to ``now``; an earlier one (within the CA's validity)
        certifies a key already in use since then.
        """
        now = require_aware(now)
        not_after = require_aware(not_after, "not_after")
        not_before = now if not_before is None else require_aware(not_before, "not_before")
        _require_signing_key(public_key)
        ca = self._certificate
        if not not_before <= now < not_after <= ca.not_valid_after_utc:
            raise ValueError(
                "the validity must start by now and end later than now, within the CA's validity"
            )
        if not ca.not_valid_before_utc <= not_before:
            raise CertificateError("ca_invalid", "the CA certificate is not valid at this time")
        ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        organizations = ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), *organizations])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
        )
        names: list[x509.GeneralName] = []
        if uri is not None:
            names.append(x509.UniformResourceIdentifier(uri))
        if dns_name is not None:
            names.append(x509.DNSName(dns_name))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        return _sign(builder, self._signer)

    def verify_card_certificate(self, certificate: x509.Certificate, *, now: datetime) -> None:
        verify_card_certificate(self._certificate, certificate, now=now)


def verify_card_certificate(
    ca_cert: x509.Certificate, cert: x509.Certificate, *, now: datetime
) -> None:
    """Check that ``cert`` is a card certificate issued by ``ca_cert`` and valid at ``now``.

    Raises :class:`~keys.errors.CertificateError`; its ``problem`` says which check failed.
    """
    now = require_aware(now)
    _require_ca(ca_cert)
    if not ca_cert.not_valid_before_utc <= now <= ca_cert.not_valid_after_utc:
        raise CertificateError("ca_invalid", "the CA certificate is not valid at this time")
    if cert.issuer != ca_cert.subject:
        raise CertificateError("wrong_issuer", "the certificate was not issued by this CA")
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        pass
    except ValueError:
        raise CertificateError("malformed", "the certificate has malformed extensions") from None
    else:
        if aki.key_identifier is not None and aki.key_identifier != ski.digest:
            raise CertificateError("wrong_issuer", "the certificate names another CA key")
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError):
        message = "the certificate signature does not verify"
        raise CertificateError("bad_signature", message) from None
    if now < cert.not_valid_before_utc:
        raise CertificateError("not_yet_valid", "the certificate is not yet valid")
    if now > cert.not_valid_after_utc:
        raise CertificateError("expired", "the certificate has expired")
    _require_end_entity(cert)


def _sign(builder: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    throwaway = generate_private_key(signer.alg)
    digest = hashes.SHA256() if signer.alg == "ES256" else None
    draft = builder.sign(throwaway, digest)
    tbs = draft.tbs_certificate_bytes
    # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    _, signature_algorithm = der.split_sequence(draft.public_bytes(serialization.Encoding.DER))[1]
    raw = signer.sign(tbs)
    try:
        verify_signature(signer.public_key(), signer.alg, tbs, raw)
    except BadSignature:
        raise CertificateError(
            "bad_signature", f"signer {signer.kid} produced a signature that does not verify"
        ) from None
    value = es256_der_from_raw(raw) if signer.alg == "ES256" else raw
    body = tbs + signature_algorithm + der.encode(der.BIT_STRING, b"\x00" + value)
    return x509.load_der_x509_certificate(der.encode(der.SEQUENCE, body))


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _require_ca(certificate: x509.Certificate) -> None:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        raise CertificateError("ca_invalid", "the CA certificate lacks CA extensions") from None
    if not constraints.ca or not usage.key_cert_sign:
        raise CertificateError("ca_invalid", "the CA certificate is not a CA certificate")


def _require_end_entity(cert: x509.Certificate) -> None:
    try:
        extensions = cert.extensions
    except ValueError:
        raise CertificateError("malformed", "the certificate has malformed extensions") from None
    for extension in extensions:
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            raise CertificateError("malformed", "the certificate has an unknown critical extension")
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CertificateError("not_end_entity", "the certificate lacks card extensions") from None
    if constraints.ca or usage.key_cert_sign or not usage.digital_signature:
        raise CertificateError("not_end_entity", "the certificate is not a card certificate")
    # The same CA certifies the service's own signing keys (``issue_signing_certificate``,
    # digital signature too): only the PIV card-authentication usage, which every card
    # certificate has carried since the first, tells a card's certificate from those.
    try:
        purposes = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        purposes = None
    if purposes is None or ID_PIV_CARD_AUTH not in purposes:
        raise CertificateError(
            "not_end_entity",
            "the certificate is not a card certificate (no PIV card-authentication usage)",
        )


def _require_signing_key(public_key: object) -> None:
    # The service's own keys use the package's algorithms only (keys.algorithms).
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
        public_key.curve, ec.SECP256R1
    ):
        return
    raise UnsupportedAlgorithm("a signing key must be EC P-256 or Ed25519")


def _require_card_key(public_key: object) -> None:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, _CARD_CURVES):
            return
        raise UnsupportedAlgorithm(f"card key curve {public_key.curve.name} is not supported")
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size >= _MIN_RSA_BITS:
            return
        raise UnsupportedAlgorithm(f"card RSA key of {public_key.key_size} bits is too small")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return
    raise UnsupportedAlgorithm(f"card key type {type(public_key).__name__} is not supported")


def _spki(public_key: object) -> bytes:
    if not isinstance(public_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise UnsupportedAlgorithm("the CA key must be EC P-256 or Ed25519")
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
