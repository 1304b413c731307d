from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from keys.ca import ID_PIV_CARD_AUTH, IssuerCA, verify_card_certificate
from keys.errors import CertificateError, UnsupportedAlgorithm
from keys.file_signer import FileSigner
from keys.hsm import Pkcs11Signer
from keys.signer import Signer
from tests.support.softhsm import SoftHsmToken

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
CARD_UUID = uuid.UUID("5f0c3a52-8a1e-4c55-9b1f-2a3c4d5e6f70")
PASSPHRASE = b"correct horse battery staple"


def _pem(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


def _make_ca(signer: Signer) -> IssuerCA:
    certificate = IssuerCA.create(
        signer,
        common_name="Ministry of Civil Service Issuer CA",
        organization="Ministry of Civil Service",
        country="KH",
        now=NOW,
        valid_days=3650,
    )
    return IssuerCA(certificate, signer)


def _issue(ca: IssuerCA, card_key: object, **overrides: object) -> x509.Certificate:
    arguments: dict[str, object] = {
        "common_name": "Card 0001",
        "card_uuid": CARD_UUID,
        "serial": None,
        "now": NOW,
        "not_after": NOW + timedelta(days=5 * 365),
    }
    arguments.update(overrides)
    return ca.issue_card_certificate(card_key, **arguments)  # type: ignore[arg-type]


def _check_with_openssl(tmp_path: Path, ca: IssuerCA, card: x509.Certificate) -> None:
    ca_pem = _pem(tmp_path / "ca.pem", ca.certificate)
    card_pem = _pem(tmp_path / "card.pem", card)
    for pem in (ca_pem, card_pem):
        text = _openssl("x509", "-in", str(pem), "-noout", "-text")
        assert text.returncode == 0, text.stderr
    attime = str(int((NOW + timedelta(days=1)).timestamp()))
    result = _openssl("verify", "-attime", attime, "-CAfile", str(ca_pem), str(card_pem))
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip().endswith(": OK")


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_file_signer_ca_issues_card_certificate(tmp_path: Path, alg: str) -> None:
    ca = _make_ca(FileSigner.generate(tmp_path / "ca-key.pem", alg, PASSPHRASE))
    certificate = ca.certificate
    assert certificate.subject == certificate.issuer
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    certificate.verify_directly_issued_by(certificate)

    card_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    card = _issue(ca, card_key, serial=0x1234)
    assert card.serial_number == 0x1234
    san = card.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [CARD_UUID.urn]
    eku = card.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku and ID_PIV_CARD_AUTH in eku
    card_usage = card.extensions.get_extension_for_class(x509.KeyUsage).value
    assert card_usage.digital_signature and not card_usage.key_cert_sign
    aki = card.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest

    verify_card_certificate(certificate, card, now=NOW + timedelta(days=1))
    _check_with_openssl(tmp_path, ca, card)


@pytest.mark.softhsm
@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_hsm_signer_ca_issues_card_certificate(
    tmp_path: Path, softhsm_token: SoftHsmToken, key_label: str, alg: str
) -> None:
    signer = Pkcs11Signer.generate(
        softhsm_token.module, softhsm_token.label, softhsm_token.pin, key_label, alg
    )
    ca = _make_ca(signer)
    card = _issue(ca, ed25519.Ed25519PrivateKey.generate().public_key())
    verify_card_certificate(ca.certificate, card, now=NOW)
    _check_with_openssl(tmp_path, ca, card)


def test_rsa_card_keys_are_accepted_and_small_ones_refused(tmp_path: Path) -> None:
    ca = _make_ca(FileSigner.generate(tmp_path / "ca-key.pem", "ES256", PASSPHRASE))
    card = _issue(ca, rsa.generate_private_key(65537, 2048).public_key())
    verify_card_certificate(ca.certificate, card, now=NOW)
    with pytest.raises(UnsupportedAlgorithm):
        _issue(ca, rsa.generate_private_key(65537, 1024).public_key())
    with pytest.raises(UnsupportedAlgorithm):
        _issue(ca, ec.generate_private_key(ec.SECP256K1()).public_key())


@pytest.fixture
def ca_and_card(tmp_path: Path) -> tuple[IssuerCA, x509.Certificate]:
    ca = _make_ca(FileSigner.generate(tmp_path / "ca-key.pem", "ES256", PASSPHRASE))
    card = _issue(ca, ec.generate_private_key(ec.SECP256R1()).public_key())
    return ca, card


def test_tampered_certificate_fails(ca_and_card: tuple[IssuerCA, x509.Certificate]) -> None:
    ca, card = ca_and_card
    der = card.public_bytes(serialization.Encoding.DER)
    assert der.count(b"Card 0001") == 1
    tampered = x509.load_der_x509_certificate(der.replace(b"Card 0001", b"Card 0002"))
    with pytest.raises(CertificateError) as caught:
        verify_card_certificate(ca.certificate, tampered, now=NOW)
    assert caught.value.problem == "bad_signature"


def test_validity_window(ca_and_card: tuple[IssuerCA, x509.Certificate]) -> None:
    ca, card = ca_and_card
    with pytest.raises(CertificateError) as caught:
        verify_card_certificate(ca.certificate, card, now=card.not_valid_after_utc + timedelta(1))
    assert caught.value.problem == "expired"
    with pytest.raises(CertificateError) as caught:
        verify_card_certificate(ca.certificate, card, now=NOW - timedelta(seconds=1))
    assert caught.value.problem in ("not_yet_valid", "ca_invalid")


def test_expired_card_fails_before_the_ca_does(tmp_path: Path) -> None:
    ca = _make_ca(FileSigner.generate(tmp_path / "ca-key.pem", "EdDSA", PASSPHRASE))
    card = _issue(
        ca, ec.generate_private_key(ec.SECP256R1()).public_key(), not_after=NOW + timedelta(30)
    )
    verify_card_certificate(ca.certificate, card, now=NOW + timedelta(29))
    with pytest.raises(CertificateError) as caught:
        verify_card_certificate(ca.certificate, card, now=NOW + timedelta(31))
    assert caught.value.problem == "expired"
    attime = str(int((NOW + timedelta(31)).timestamp()))
    ca_pem, card_pem = _pem(tmp_path / "ca.pem", ca.certificate), _pem(tmp_path / "c.pem", card)
    result = _openssl("verify", "-attime", attime, "-CAfile", str(ca_pem), str(card_pem))
    assert result.returncode != 0  # openssl agrees


def test_other_ca_is_the_wrong_issuer(
    tmp_path: Path, ca_and_card: tuple[IssuerCA, x509.Certificate]
) -> None:
    _, card = ca_and_card
    other = _make_ca(FileSigner.generate(tmp_path / "other.pem", "ES256", PASSPHRASE))
    with pytest.raises(CertificateError) as caught:
        verify_card_certificate(other.certificate, card, now=NOW)
    # Same subject name, different key: caught by the key identifier.
    assert caught.value.problem in ("wrong_issuer", "bad_signature")


def test_ca_certificate_is_not_a_card_certificate(
    ca_and_card: tuple[IssuerCA, x509.Certificate],
) -> None:
    ca, _ = ca_and_card
    with pytest.raises(CertificateError) as caught:
        verify_card_certificate(ca.certificate, ca.certificate, now=NOW)
    assert caught.value.problem == "not_end_entity"


def test_card_cannot_outlive_the_ca(ca_and_card: tuple[IssuerCA, x509.Certificate]) -> None:
    ca, _ = ca_and_card
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(ValueError, match="beyond"):
        _issue(ca, key, not_after=NOW + timedelta(days=3651))
    with pytest.raises(ValueError, match="timezone"):
        _issue(ca, key, now=NOW.replace(tzinfo=None))


def test_ca_must_match_its_signer(tmp_path: Path) -> None:
    ca = _make_ca(FileSigner.generate(tmp_path / "ca-key.pem", "ES256", PASSPHRASE))
    stranger = FileSigner.generate(tmp_path / "stranger.pem", "ES256", PASSPHRASE)
    with pytest.raises(CertificateError) as caught:
        IssuerCA(ca.certificate, stranger)
    assert caught.value.problem == "ca_invalid"


# -- the service's own signing keys (credential keys, the OpenID4VP request key) -------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_signing_certificate_is_for_signing_only(tmp_path: Path, alg: str) -> None:
    ca = _make_ca(FileSigner.generate(tmp_path / "ca-key.pem", "ES256", PASSPHRASE))
    key = FileSigner.generate(tmp_path / "key.pem", alg, PASSPHRASE).public_key()
    leaf = ca.issue_signing_certificate(
        key,
        common_name="Credential key abc",
        now=NOW + timedelta(days=3),
        not_before=NOW + timedelta(days=1),
        not_after=ca.certificate.not_valid_after_utc,
        uri="https://id.mcs.gov.kh",
        dns_name="id.mcs.gov.kh",
    )
    assert leaf.public_key() == key
    assert leaf.not_valid_before_utc == NOW + timedelta(days=1)  # the key's own start
    assert leaf.subject.rfc4514_string() == "O=Ministry of Civil Service,CN=Credential key abc"
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not (usage.key_cert_sign or usage.crl_sign)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):  # no PIV card-authentication, no client auth
        leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["https://id.mcs.gov.kh"]
    assert san.get_values_for_type(x509.DNSName) == ["id.mcs.gov.kh"]
    # openssl, an implementation of its own, agrees on the chain.
    _check_with_openssl(tmp_path, ca, leaf)
    # Same CA, digital signature, valid now: still never taken for a card's certificate.
    with pytest.raises(CertificateError) as caught:
        verify_card_certificate(ca.certificate, leaf, now=NOW + timedelta(days=3))
    assert caught.value.problem == "not_end_entity"
    assert "PIV card-authentication" in str(caught.value)


def test_signing_certificate_refusals(tmp_path: Path) -> None:
    ca = _make_ca(FileSigner.generate(tmp_path / "ca-key.pem", "ES256", PASSPHRASE))
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    end = ca.certificate.not_valid_after_utc

    def issue(public_key: object = key, **overrides: object) -> x509.Certificate:
        arguments: dict[str, object] = {"common_name": "k", "now": NOW, "not_after": end}
        arguments.update(overrides)
        return ca.issue_signing_certificate(public_key, **arguments)  # type: ignore[arg-type]

    no_san = issue()
    with pytest.raises(x509.ExtensionNotFound):
        no_san.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    for other in (
        ec.generate_private_key(ec.SECP384R1()).public_key(),
        rsa.generate_private_key(65537, 2048).public_key(),
    ):
        with pytest.raises(UnsupportedAlgorithm):
            issue(other)
    with pytest.raises(ValueError, match="within the CA"):
        issue(not_after=end + timedelta(seconds=1))
    with pytest.raises(ValueError, match="within the CA"):
        issue(not_before=NOW + timedelta(seconds=1))  # starting after now
    with pytest.raises(CertificateError) as caught:
        issue(not_before=NOW - timedelta(days=1))  # before the CA itself
    assert caught.value.problem == "ca_invalid"
