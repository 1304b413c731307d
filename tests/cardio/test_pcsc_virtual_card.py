"""cardio's client stack through the real pcscd + vpcd to the project's virtual card.

Needs the card bench (``pcscd`` and ``virtual_card`` fixtures from ``tests.support.pcsc``);
those fixtures fail, never skip, when pcscd or vpcd is missing.
"""

from __future__ import annotations

import hashlib
from datetime import date
from uuid import UUID

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from cardio import errors
from cardio.ndef import NdefSession, ndef_message, parse_uri_message, uri_record
from cardio.pcsc import PcscTransport, list_readers, wait_for_card
from cardio.piv import (
    CREDENTIAL_OBJECT_ID,
    Chuid,
    KeyType,
    ManagementKeyType,
    ObjectId,
    PivSession,
    Slot,
)
from cardio.virtual import bench
from cardio.virtual.bench import PcscdHandle
from tests.support.pcsc import VirtualCardFactory

pytestmark = pytest.mark.pcsc

DEFAULT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")


def test_list_readers_shows_card_and_atr(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card(reader=0)
    readers = {r.name: r for r in list_readers()}
    assert card.reader_name in readers
    info = readers[card.reader_name]
    assert info.card_present
    assert info.atr is not None and info.atr.startswith("3B")


def test_unknown_reader_and_empty_reader(pcscd: PcscdHandle) -> None:
    with pytest.raises(errors.ReaderNotFound):
        PcscTransport.open("no such reader anywhere")
    empty = [r for r in list_readers() if not r.card_present]
    if empty:
        with pytest.raises(errors.NoCard):
            PcscTransport.open(empty[0].name)


@pytest.mark.parametrize("extended", [False, True])
def test_issue_flow_on_virtual_card(virtual_card: VirtualCardFactory, extended: bool) -> None:
    card = virtual_card(reader=0)
    with PcscTransport.open(card.reader_name) as transport:
        assert transport.extended_length  # the virtual card's ATR announces extended Lc/Le
        piv = PivSession(transport, extended=extended)
        assert piv.version is not None  # the virtual card answers GET VERSION like a YubiKey
        assert piv.get_pin_attempts() == 3
        piv.authenticate(ManagementKeyType.TDES, DEFAULT_KEY)
        public_key = piv.generate_key(Slot.CARD_AUTH, KeyType.ECCP256)
        card_uuid = UUID("6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f")
        piv.put_object(ObjectId.CHUID, Chuid.build(card_uuid, date(2031, 12, 31)))
        credential = ("eyJhbGciOiJFUzI1NiJ9." + "a" * 1500 + ".c2ln").encode()
        piv.put_object(CREDENTIAL_OBJECT_ID, credential)
        assert Chuid.parse(piv.get_object(ObjectId.CHUID)).guid == card_uuid
        assert piv.get_object(CREDENTIAL_OBJECT_ID) == credential
        digest = hashlib.sha256(b"verifier nonce").digest()
        signature = piv.sign_challenge(Slot.CARD_AUTH, digest)
        public_key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        with pytest.raises(errors.WrongPin) as wrong:
            piv.verify_pin("000000")
        assert wrong.value.retries_left == 2
        piv.verify_pin("123456")
        if not extended:
            # 1500-byte object in short mode: chaining and GET RESPONSE frames on the wire
            assert piv.connection.apdus_sent > piv.connection.commands_sent


def test_wrong_management_key_on_virtual_card(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card(reader=0)
    with PcscTransport.open(card.reader_name) as transport:
        piv = PivSession(transport)
        with pytest.raises(errors.ManagementKeyRejected):
            piv.authenticate(ManagementKeyType.TDES, bytes(24))


def test_ndef_through_pcscd(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card(reader=0)
    url = "https://id.example.gov.la/v/6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"
    with PcscTransport.open(card.reader_name) as transport:
        session = NdefSession(transport)
        session.write_message(ndef_message([uri_record(url)]))
        assert parse_uri_message(session.read_message()) == url


def test_card_pulled_mid_session(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card(reader=0)
    transport = PcscTransport.open(card.reader_name)
    try:
        piv = PivSession(transport)
        card.stop()
        with pytest.raises(errors.CardRemoved):
            piv.get_object(ObjectId.CHUID)
    finally:
        transport.close()


def test_wait_for_card(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card(reader=0)
    assert wait_for_card(card.reader_name, timeout=2.0).card_present
    other = bench.reader_name(1)
    if not any(r.name == other and r.card_present for r in list_readers()):
        with pytest.raises(errors.NoCard):
            wait_for_card(other, timeout=0.5)
