"""Card state: what survives a pulled card, and how it is stored."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cardio.tlv import Tlv, parse_dict
from cardio.virtual import CardState, VirtualCard
from tests.support.pcsc import apdu, authenticate_management, card_transmit, send, send_chained

OK = 0x9000


def pin_block(pin: str) -> bytes:
    return pin.encode().ljust(8, b"\xff")


def test_blank_card_defaults() -> None:
    state = CardState.blank(serial=42)
    assert state.serial == 42
    assert state.pin.value == "123456" and state.pin.retries == 3
    assert state.puk.value == "12345678" and state.puk.retries == 3
    assert state.management_key_type == 0x03
    assert state.management_key_is_default
    assert set(state.objects) == {0x5FC107}
    assert state.keys == {}


def test_state_file_is_private_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    CardState.blank(7).save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]  # no temp file left behind
    assert json.loads(path.read_text())["format"] == "idsvc-virtual-piv/1"


def test_repr_shows_no_secrets() -> None:
    state = CardState.blank(7)
    text = repr(state)
    assert "123456" not in text
    assert state.management_key.hex() not in text


def test_load_rejects_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a virtual card state"):
        CardState.load(path)


def test_load_or_blank_creates_once(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    first = CardState.load_or_blank(path)
    assert path.exists()
    assert CardState.load_or_blank(path).serial == first.serial


def test_card_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card = VirtualCard.from_file(path)
    tx = card_transmit(card)
    assert authenticate_management(tx) == OK
    gen = apdu(0, 0x47, 0, 0x9E, Tlv(0xAC, Tlv(0x80, b"\x11")), le=0)
    point = send(tx, gen)[0]
    body = Tlv(0x5C, b"\x5f\xc1\x02") + Tlv(0x53, b"\x34\x10" + bytes(range(16)))
    assert send_chained(tx, 0xDB, 0x3F, 0xFF, body)[1] == OK
    assert tx(apdu(0, 0x20, 0, 0x80, pin_block("000000")))[1] == 0x63C2
    assert tx(apdu(0, 0x24, 0, 0x81, pin_block("12345678") + pin_block("11223344")))[1] == OK
    serial = card.state.serial

    # "Pull" the card: a new process reads the same file; volatile state is gone.
    again = VirtualCard.from_file(path)
    tx2 = card_transmit(again)
    assert again.state.serial == serial
    assert tx2(apdu(0, 0x20, 0, 0x80))[1] == 0x63C2  # the counter survived
    read = apdu(0, 0xCB, 0x3F, 0xFF, Tlv(0x5C, b"\x5f\xc1\x02"), le=0)
    assert send(tx2, read) == (bytes(Tlv(0x53, b"\x34\x10" + bytes(range(16)))), OK)
    slot = send(tx2, apdu(0, 0xF7, 0, 0x9E, le=0))[0]
    assert parse_dict(slot)[0x04] == Tlv.unpack(0x7F49, point)  # the same key came back
    puk_change = apdu(0, 0x24, 0, 0x81, pin_block("11223344") + pin_block("12345678"))
    assert tx2(puk_change)[1] == OK
    assert tx2(apdu(0, 0xDB, 0x3F, 0xFF, body))[1] == 0x6982  # not authenticated any more
