"""Independent PIV stacks accept the virtual card: OpenSC (tools + PKCS#11) and yubikit.

The card is personalised here with our own APDUs (cardio.tlv + cryptography), the way the
issuance desk will do it: on-card key generation in slot 9E, a certificate for that key (self-
signed by the card key itself, which also proves the card signs correctly), a CHUID.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import uuid
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from pkcs11 import Mechanism, ObjectClass
from smartcard.CardConnection import CardConnection
from ykman.pcsc import ScardSmartCardConnection
from yubikit.piv import OBJECT_ID, SLOT, PivSession

from cardio.tlv import Tlv, iter_tlvs
from tests.support.pcsc import (
    PIV_AID,
    Transmit,
    VirtualCardFactory,
    apdu,
    authenticate_management,
    pyscard_connect,
    pyscard_transmit,
    send,
    send_chained,
)

pytestmark = [pytest.mark.pcsc, pytest.mark.opensc]

OK = 0x9000
OPENSC_PKCS11 = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
# FASC-N of a non-federal issuer (agency code 9999), as SP 800-73-4 allows for non-US cards.
FASCN = bytes.fromhex("D4E739DA739CED39CE739D836858210842108421C84210C3EB")
CARD_GUID = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e9f-a0b1c2d3e4f5")


def digest_of(message: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(message)
    return digest.finalize()


def card_sign(tx: Transmit, slot: int, digest: bytes) -> bytes:
    body = Tlv(0x7C, Tlv(0x82) + Tlv(0x81, digest))
    data, sw = send(tx, apdu(0, 0x87, 0x11, slot, body, le=0))
    assert sw == OK, f"sign: {sw:04X}"
    return Tlv.unpack(0x82, Tlv.unpack(0x7C, data))


def self_signed_by_card(tx: Transmit, public_key: ec.EllipticCurvePublicKey) -> x509.Certificate:
    """A certificate for the card key, signed by the card key (via GENERAL AUTHENTICATE)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Virtual PIV card authentication")])
    now = datetime.datetime.now(datetime.UTC)
    placeholder = ec.generate_private_key(ec.SECP256R1())  # only fixes the TBS layout
    draft = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(placeholder, hashes.SHA256())
    )
    tbs, algorithm, _ = iter_tlvs(Tlv.unpack(0x30, draft.public_bytes(Encoding.DER)))
    signature = card_sign(tx, 0x9E, digest_of(bytes(tbs)))
    der = Tlv(0x30, tbs + algorithm + Tlv(0x03, b"\x00" + signature))
    certificate = x509.load_der_x509_certificate(bytes(der))
    public_key.verify(
        certificate.signature,
        certificate.tbs_certificate_bytes,
        ec.ECDSA(hashes.SHA256()),
    )
    return certificate


def personalise(connection: CardConnection) -> x509.Certificate:
    tx = pyscard_transmit(connection)
    assert tx(apdu(0, 0xA4, 4, 0, PIV_AID))[1] == OK
    assert authenticate_management(tx) == OK
    generated, sw = send(tx, apdu(0, 0x47, 0, 0x9E, Tlv(0xAC, Tlv(0x80, b"\x11")), le=0))
    assert sw == OK
    point = Tlv.unpack(0x86, Tlv.unpack(0x7F49, generated))
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    certificate = self_signed_by_card(tx, public_key)

    cert_object = Tlv(0x70, certificate.public_bytes(Encoding.DER)) + Tlv(0x71, b"\x00") + Tlv(0xFE)
    chuid = (
        Tlv(0x30, FASCN)
        + Tlv(0x34, CARD_GUID.bytes)
        + Tlv(0x35, b"20301231")
        + Tlv(0x3E)
        + Tlv(0xFE)
    )
    for tag, value in ((0x5FC101, cert_object), (0x5FC102, chuid)):
        body = Tlv(0x5C, tag.to_bytes(3, "big")) + Tlv(0x53, value)
        assert send_chained(tx, 0xDB, 0x3F, 0xFF, body)[1] == OK
    return certificate


@pytest.fixture
def opensc_env(tmp_path: Path) -> dict[str, str]:
    for tool in ("opensc-tool", "pkcs15-tool", "pkcs11-tool"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: apt-get install opensc", pytrace=False)
    # No file cache: every test sees the card as it is now, not as a previous run left it.
    conf = tmp_path / "opensc.conf"
    conf.write_text("app default {\n framework pkcs15 {\n  use_file_caching = no;\n }\n}\n")
    return {"OPENSC_CONF": str(conf), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}


def run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, f"{argv[0]} failed: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_opensc_names_it_a_piv_card(
    virtual_card: VirtualCardFactory, opensc_env: dict[str, str]
) -> None:
    card = virtual_card()
    listing = run(["opensc-tool", "-l"], opensc_env)
    assert any("Yes" in line and card.reader_name in line for line in listing.splitlines()), listing
    name = run(["opensc-tool", "-r", card.reader_name, "-n"], opensc_env)
    assert "Personal Identity Verification Card" in name


def test_opensc_lists_certificate_and_signs_with_card_auth_key(
    virtual_card: VirtualCardFactory,
    opensc_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    card = virtual_card()
    connection = pyscard_connect(card.reader_name)
    certificate = personalise(connection)
    connection.disconnect()

    listing = run(["pkcs15-tool", "--reader", card.reader_name, "--list-certificates"], opensc_env)
    assert "Card Authentication" in listing, listing
    assert f"{certificate.serial_number:X}" in listing.replace(" ", ""), listing

    message = b"challenge from a verifier's phone"
    for name, value in opensc_env.items():
        monkeypatch.setenv(name, value)  # OpenSC's PKCS#11 module runs in this process
    # Through OpenSC's PKCS#11 module with no login: the card-authentication key (9E,
    # PKCS#15 id 04) needs no PIN. (pkcs11-tool --sign insists on a login, hence python-pkcs11.)
    lib = pkcs11.lib(OPENSC_PKCS11)
    slots = lib.get_slots(token_present=True)
    slot = next(s for s in slots if s.slot_description == card.reader_name)
    with slot.get_token().open() as session:
        key = session.get_key(ObjectClass.PRIVATE_KEY, id=b"\x04")
        assert isinstance(key, pkcs11.SignMixin)
        raw = key.sign(digest_of(message), mechanism=Mechanism.ECDSA)
    assert len(raw) == 64  # PKCS#11 ECDSA: r || s
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    public_key.verify(der, digest_of(message), ec.ECDSA(Prehashed(hashes.SHA256())))


def test_yubikit_opens_a_piv_session(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card()
    connection = pyscard_connect(card.reader_name)
    certificate = personalise(connection)
    connection.disconnect()

    reader_connection = pyscard_connect(card.reader_name)
    session = PivSession(ScardSmartCardConnection(reader_connection))  # type: ignore[no-untyped-call]
    assert tuple(session.version) == (5, 7, 1)
    assert session.get_pin_attempts() == 3
    session.verify_pin("123456")
    assert session.get_certificate(SLOT.CARD_AUTH) == certificate
    chuid = session.get_object(OBJECT_ID.CHUID)
    assert dict((t.tag, t.value) for t in iter_tlvs(chuid))[0x34] == CARD_GUID.bytes
    reader_connection.disconnect()
