"""The NFC Forum Type 4 Tag application of the virtual card (tap-to-verify)."""

from __future__ import annotations

import pytest

from cardio.virtual import CardState, VirtualCard
from tests.support.pcsc import Transmit, apdu, card_transmit

OK = 0x9000
NDEF_AID = bytes.fromhex("D2760000850101")


@pytest.fixture
def tx() -> Transmit:
    transmit = card_transmit(VirtualCard(CardState.blank(1)))
    assert transmit(apdu(0, 0xA4, 4, 0, NDEF_AID, le=0)) == (b"", OK)
    return transmit


def select_file(tx: Transmit, file_id: int) -> int:
    return tx(apdu(0, 0xA4, 0, 0x0C, file_id.to_bytes(2, "big")))[1]


def test_capability_container(tx: Transmit) -> None:
    assert select_file(tx, 0xE103) == OK
    cc, sw = tx(apdu(0, 0xB0, 0, 0, le=15))
    assert sw == OK
    assert cc[:3] == bytes.fromhex("000F20")
    assert cc[7:11] == bytes.fromhex("0406E104")
    assert int.from_bytes(cc[11:13], "big") == 2048
    assert cc[13:15] == b"\x00\x00"


def test_blank_ndef_file_is_empty(tx: Transmit) -> None:
    assert select_file(tx, 0xE104) == OK
    assert tx(apdu(0, 0xB0, 0, 0, le=2)) == (b"\x00\x00", OK)


def test_write_then_read_ndef_message(tx: Transmit) -> None:
    # URI record "https://id.example/v/1" (prefix code 04 = "https://")
    payload = b"\x04id.example/v/1"
    record = bytes([0xD1, 0x01, len(payload)]) + b"U" + payload
    assert select_file(tx, 0xE104) == OK
    assert tx(apdu(0, 0xD6, 0, 0, b"\x00\x00"))[1] == OK  # NLEN 0 while writing
    assert tx(apdu(0, 0xD6, 0, 2, record))[1] == OK
    assert tx(apdu(0, 0xD6, 0, 0, len(record).to_bytes(2, "big")))[1] == OK
    nlen = int.from_bytes(tx(apdu(0, 0xB0, 0, 0, le=2))[0], "big")
    assert tx(apdu(0, 0xB0, 0, 2, le=nlen)) == (record, OK)


def test_bounds(tx: Transmit) -> None:
    assert select_file(tx, 0xE104) == OK
    assert tx(apdu(0, 0xB0, 0x08, 0x00, le=1))[1] == 0x6B00  # offset 2048: past the end
    assert tx(apdu(0, 0xB0, 0x07, 0xFF, le=0)) == (b"\x00", OK)  # last byte
    assert tx(apdu(0, 0xD6, 0x07, 0xFF, b"\x01\x02"))[1] == 0x6A84  # would run past the end
    assert tx(apdu(0, 0xD6, 0x08, 0x00, b"\x01"))[1] == 0x6B00
    assert tx(apdu(0, 0xB0, 0x80, 0x00, le=1))[1] == 0x6A86  # SFI addressing not offered


def test_cc_is_read_only(tx: Transmit) -> None:
    assert select_file(tx, 0xE103) == OK
    assert tx(apdu(0, 0xD6, 0, 0, b"\x00"))[1] == 0x6982


def test_file_selection_errors(tx: Transmit) -> None:
    assert tx(apdu(0, 0xB0, 0, 0, le=2))[1] == 0x6986  # no file selected yet
    assert select_file(tx, 0xE105) == 0x6A82
    assert tx(apdu(0, 0xA4, 0, 0x0C, b"\xe1"))[1] == 0x6700
    assert tx(apdu(0, 0xA4, 1, 0x0C, b"\xe1\x03"))[1] == 0x6A86


def test_piv_instructions_are_unknown_to_the_tag(tx: Transmit) -> None:
    assert tx(apdu(0, 0xCB, 0x3F, 0xFF, b"\x5c\x01\x7e"))[1] == 0x6D00
