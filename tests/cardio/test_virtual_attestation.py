"""PIV attestation (issue 15) on the in-process virtual card: ``cardio.piv`` and, independently,
yubikit's ``PivSession.attest_key`` and its reading of the F9 certificate (object 5FFF01)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from yubikit.core import TRANSPORT
from yubikit.core.smartcard import SmartCardConnection
from yubikit.piv import KEY_TYPE, SLOT
from yubikit.piv import PivSession as YkPivSession

from cardio.piv import KeyType, ManagementKeyType, PivSession, Slot
from cardio.virtual import CardState, VirtualCard
from cardio.virtual.attestation import OID_DEVICE_SERIAL, AttestationCa
from tests.support.pcsc import DEFAULT_MGMT_KEY
from tests.support.virtual_card import DirectTransport

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SPKI = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def maker() -> AttestationCa:
    return AttestationCa.create(NOW)


def provisioned(maker: AttestationCa | None, serial: int = 12345678) -> VirtualCard:
    state = CardState.blank(serial=serial)
    if maker is not None:
        maker.provision(state, NOW)
    return VirtualCard(state)


def session(card: VirtualCard) -> PivSession:
    piv = PivSession(DirectTransport(card))
    piv.authenticate(ManagementKeyType.TDES, DEFAULT_MGMT_KEY)
    return piv


def test_attestation_chains_to_the_maker_and_names_key_slot_and_card(
    maker: AttestationCa,
) -> None:
    piv = session(provisioned(maker))
    key = piv.generate_key(Slot.CARD_AUTH, KeyType.ECCP256)
    proof = piv.attest_key(Slot.CARD_AUTH)
    assert proof is not None
    statement, signer = proof
    statement.verify_directly_issued_by(signer)
    signer.verify_directly_issued_by(maker.certificate)
    assert statement.public_key().public_bytes(*SPKI) == key.public_bytes(*SPKI)
    names = statement.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [n.value for n in names] == ["PIV Attestation 9e"]
    serial = statement.extensions.get_extension_for_oid(OID_DEVICE_SERIAL).value
    assert isinstance(serial, x509.UnrecognizedExtension)
    assert serial.value == bytes.fromhex("0204") + (12345678).to_bytes(4, "big")


def test_no_attestation_without_f9_key_or_slot_key(maker: AttestationCa) -> None:
    unprovisioned = session(provisioned(None))
    unprovisioned.generate_key(Slot.CARD_AUTH)
    assert unprovisioned.attest_key(Slot.CARD_AUTH) is None  # 6A88: no attestation key
    assert session(provisioned(maker)).attest_key(Slot.SIGNATURE) is None  # 6A88: empty slot


def test_attestation_key_survives_the_state_file(maker: AttestationCa) -> None:
    card = provisioned(maker)
    again = VirtualCard(CardState.from_json(card.state.to_json()))
    piv = session(again)
    piv.generate_key(Slot.CARD_AUTH)
    proof = piv.attest_key(Slot.CARD_AUTH)
    assert proof is not None
    proof[1].verify_directly_issued_by(maker.certificate)


class InProcessConnection(SmartCardConnection):
    """yubikit's connection over the in-process card: USB, so it sends extended APDUs."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card

    @property
    def transport(self) -> TRANSPORT:
        return TRANSPORT.USB

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        response = self.card.process(apdu)
        return response[:-2], int.from_bytes(response[-2:], "big")

    def close(self) -> None:
        return None


def test_yubikit_attests_and_reads_the_f9_certificate(maker: AttestationCa) -> None:
    yk = YkPivSession(InProcessConnection(provisioned(maker)))
    yk.authenticate(DEFAULT_MGMT_KEY)
    key = yk.generate_key(SLOT.CARD_AUTH, KEY_TYPE.ECCP256)
    statement = yk.attest_key(SLOT.CARD_AUTH)
    signer = yk.get_certificate(SLOT.ATTESTATION)  # object 5FFF01, as on a YubiKey
    statement.verify_directly_issued_by(signer)
    signer.verify_directly_issued_by(maker.certificate)
    assert statement.public_key().public_bytes(*SPKI) == key.public_bytes(*SPKI)
