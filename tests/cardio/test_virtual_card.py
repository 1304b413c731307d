"""The virtual PIV card in-process: every instruction and status word, no PC/SC."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cardio.tlv import Tlv, parse_dict
from cardio.virtual import CardPulled, CardState, VirtualCard
from cardio.virtual.iso import CardError, Command, parse_command
from tests.support.pcsc import (
    DEFAULT_MGMT_KEY,
    PIV_AID,
    Transmit,
    apdu,
    authenticate_management,
    block_cipher,
    card_transmit,
    send,
    send_chained,
)

OK = 0x9000
CHUID = 0x5FC102
CERT_9E = 0x5FC101


def pin_block(pin: str) -> bytes:
    return pin.encode().ljust(8, b"\xff")


@pytest.fixture
def card() -> VirtualCard:
    return VirtualCard(CardState.blank(serial=12345678))


@pytest.fixture
def tx(card: VirtualCard) -> Transmit:
    return card_transmit(card)


def get_data(tx: Transmit, tag: int, le: int = 0) -> tuple[bytes, int]:
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    return send(tx, apdu(0, 0xCB, 0x3F, 0xFF, Tlv(0x5C, tag_bytes), le=le))


def put_data(tx: Transmit, tag: int, value: bytes) -> int:
    body = Tlv(0x5C, tag.to_bytes(3, "big")) + Tlv(0x53, value)
    return send_chained(tx, 0xDB, 0x3F, 0xFF, body)[1]


def verify(tx: Transmit, pin: str | None) -> int:
    return tx(apdu(0, 0x20, 0, 0x80, pin_block(pin) if pin is not None else b""))[1]


def generate(tx: Transmit, slot: int, algorithm: int = 0x11) -> tuple[bytes, int]:
    return send(tx, apdu(0, 0x47, 0, slot, Tlv(0xAC, Tlv(0x80, bytes([algorithm]))), le=0))


def public_key(response: bytes) -> ec.EllipticCurvePublicKey:
    point = Tlv.unpack(0x86, Tlv.unpack(0x7F49, response))
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


def sign(tx: Transmit, slot: int, digest: bytes, algorithm: int = 0x11) -> tuple[bytes, int]:
    body = Tlv(0x7C, Tlv(0x82) + Tlv(0x81, digest))
    data, sw = send(tx, apdu(0, 0x87, algorithm, slot, body, le=0))
    return (Tlv.unpack(0x82, Tlv.unpack(0x7C, data)) if sw == OK else b""), sw


# -- APDU parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00A40400", Command(0, 0xA4, 4, 0)),
        ("00CA000000", Command(0, 0xCA, 0, 0, ne=256)),
        ("00CA000008", Command(0, 0xCA, 0, 0, ne=8)),
        ("00DA00000201 02", Command(0, 0xDA, 0, 0, b"\x01\x02")),
        ("00DA0000020102 10", Command(0, 0xDA, 0, 0, b"\x01\x02", 16)),
        ("00CA0000 000000", Command(0, 0xCA, 0, 0, ne=65536, extended=True)),
        ("00DA0000 000002 0102", Command(0, 0xDA, 0, 0, b"\x01\x02", extended=True)),
        ("00DA0000 000002 0102 0100", Command(0, 0xDA, 0, 0, b"\x01\x02", 256, True)),
    ],
)
def test_parse_command_cases(raw: str, expected: Command) -> None:
    assert parse_command(bytes.fromhex(raw)) == expected


@pytest.mark.parametrize(
    "raw", ["00A404", "00DA000003 0102", "00DA0000 0000", "00DA0000 000003 01"]
)
def test_parse_command_wrong_length(raw: str) -> None:
    with pytest.raises(CardError) as exc:
        parse_command(bytes.fromhex(raw))
    assert exc.value.sw == 0x6700


def test_wrong_lc_answers_6700(tx: Transmit) -> None:
    assert tx(bytes.fromhex("00CB3FFF055C035F"))[1] == 0x6700


# -- SELECT ---------------------------------------------------------------------------------


@pytest.mark.parametrize("aid", ["A000000308", "A00000030800001000", "A000000308000010000100"])
def test_select_piv_by_prefix_returns_property_template(tx: Transmit, aid: str) -> None:
    data, sw = tx(apdu(0, 0xA4, 4, 0, bytes.fromhex(aid), le=0))
    assert sw == OK
    template = Tlv.unpack(0x61, data)
    fields = parse_dict(template)
    assert fields[0x4F] == bytes.fromhex("000010000100")
    assert Tlv.unpack(0x4F, fields[0x79]) == bytes.fromhex("A000000308")


@pytest.mark.parametrize(
    "aid",
    [
        "627601FF000000",
        "A00000000101",
        "E82B0601040181C31F0201",
        "A0000003",
        "A0000003080000100001000000",
    ],
)
def test_select_foreign_applet_is_6a82(tx: Transmit, aid: str) -> None:
    assert tx(apdu(0, 0xA4, 4, 0, bytes.fromhex(aid)))[1] == 0x6A82


def test_failed_select_keeps_piv_selected(card: VirtualCard, tx: Transmit) -> None:
    assert verify(tx, "123456") == OK
    assert tx(apdu(0, 0xA4, 4, 0, bytes.fromhex("627601FF000000")))[1] == 0x6A82
    assert tx(apdu(0, 0xA4, 0, 0, bytes.fromhex("3F00")))[1] == 0x6A82  # select MF by id
    assert verify(tx, None) == OK
    assert card.selected is card.piv


def test_select_bad_p2(tx: Transmit) -> None:
    assert tx(apdu(0, 0xA4, 4, 0x07, PIV_AID))[1] == 0x6A86


def test_select_p2_0c_returns_no_data(tx: Transmit) -> None:
    assert tx(apdu(0, 0xA4, 4, 0x0C, PIV_AID)) == (b"", OK)


# -- GET DATA / PUT DATA, discovery, CCC ------------------------------------------------------


def test_discovery_object_without_select(tx: Transmit) -> None:
    # OpenSC reads 7E before selecting: PIV is the default application.
    data, sw = get_data(tx, 0x7E)
    assert sw == OK
    fields = parse_dict(Tlv.unpack(0x7E, data))
    assert fields[0x4F] == PIV_AID
    assert fields[0x5F2F] == b"\x40\x00"


def test_ccc_present_on_blank_card(tx: Transmit) -> None:
    data, sw = get_data(tx, 0x5FC107)
    assert sw == OK
    assert parse_dict(Tlv.unpack(0x53, data))[0xF0][:5] == bytes.fromhex("A000000116")


def test_missing_object_is_6a82(tx: Transmit) -> None:
    assert get_data(tx, CHUID)[1] == 0x6A82


def test_get_data_bad_p1p2_and_malformed(tx: Transmit) -> None:
    assert tx(apdu(0, 0xCB, 0x3F, 0x00, Tlv(0x5C, b"\x7e")))[1] == 0x6A86
    assert tx(apdu(0, 0xCB, 0x3F, 0xFF, Tlv(0x5D, b"\x7e")))[1] == 0x6A80
    assert tx(apdu(0, 0xCB, 0x3F, 0xFF, bytes.fromhex("5C055FC1")))[1] == 0x6A80


def test_put_data_needs_management_key(tx: Transmit) -> None:
    assert put_data(tx, CHUID, b"\x30\x00") == 0x6982
    assert authenticate_management(tx) == OK
    assert put_data(tx, CHUID, b"\x30\x00") == OK
    assert get_data(tx, CHUID) == (bytes(Tlv(0x53, b"\x30\x00")), OK)


def test_put_data_empty_deletes(tx: Transmit) -> None:
    assert authenticate_management(tx) == OK
    assert put_data(tx, CHUID, b"\x30\x00") == OK
    assert put_data(tx, CHUID, b"") == OK
    assert get_data(tx, CHUID)[1] == 0x6A82


def test_put_data_malformed(tx: Transmit) -> None:
    assert authenticate_management(tx) == OK
    assert tx(apdu(0, 0xDB, 0x3F, 0xFF, Tlv(0x53, b"\x01")))[1] == 0x6A80
    assert tx(apdu(0, 0xDB, 0x3F, 0xFF, bytes.fromhex("5C035FC102530501")))[1] == 0x6A80
    assert put_data(tx, 0x00007E, b"\x01") == 0x6A80  # discovery is card-built
    assert tx(apdu(0, 0xDB, 0x3F, 0xFE, b""))[1] == 0x6A86


def test_printed_information_needs_pin(tx: Transmit) -> None:
    assert authenticate_management(tx) == OK
    assert put_data(tx, 0x5FC109, Tlv(0x01, b"NAME")) == OK
    assert get_data(tx, 0x5FC109)[1] == 0x6982
    assert verify(tx, "123456") == OK
    assert get_data(tx, 0x5FC109)[1] == OK


# -- chaining ---------------------------------------------------------------------------------


@pytest.fixture
def big_object(tx: Transmit) -> bytes:
    value = bytes(range(256)) * 4  # 1024 bytes: 4 short chunks in, 61xx out
    assert authenticate_management(tx) == OK
    assert put_data(tx, CERT_9E, value) == OK
    return bytes(Tlv(0x53, value))


def test_response_chaining_short(tx: Transmit, big_object: bytes) -> None:
    first, sw = tx(apdu(0, 0xCB, 0x3F, 0xFF, Tlv(0x5C, b"\x5f\xc1\x01"), le=0))
    assert len(first) == 256
    assert sw == 0x6100  # 256 or more bytes still waiting
    assert get_data(tx, CERT_9E) == (big_object, OK)


def test_short_le_returns_61xx_with_remaining(tx: Transmit) -> None:
    ccc = get_data(tx, 0x5FC107)[0]
    data, sw = tx(apdu(0, 0xCB, 0x3F, 0xFF, Tlv(0x5C, b"\x5f\xc1\x07"), le=8))
    assert data == ccc[:8]
    assert sw == 0x6100 | (len(ccc) - 8)
    rest, sw = tx(apdu(0, 0xC0, 0, 0, le=sw & 0xFF))
    assert (data + rest, sw) == (ccc, OK)


def test_get_response_in_small_pieces(tx: Transmit, big_object: bytes) -> None:
    data, sw = tx(apdu(0, 0xCB, 0x3F, 0xFF, Tlv(0x5C, b"\x5f\xc1\x01"), le=100))
    while sw != OK:
        assert sw >> 8 == 0x61
        more, sw = tx(apdu(0, 0xC0, 0, 0, le=100))
        assert len(more) <= 100
        data += more
    assert data == big_object


def test_extended_response_in_one_piece(tx: Transmit, big_object: bytes) -> None:
    command = apdu(0, 0xCB, 0x3F, 0xFF, Tlv(0x5C, b"\x5f\xc1\x01"), le=0, extended=True)
    assert tx(command) == (big_object, OK)


def test_extended_command_without_chaining(tx: Transmit) -> None:
    assert authenticate_management(tx) == OK
    body = Tlv(0x5C, b"\x5f\xc1\x05") + Tlv(0x53, b"\xaa" * 2000)
    assert tx(apdu(0, 0xDB, 0x3F, 0xFF, body, extended=True))[1] == OK
    assert get_data(tx, 0x5FC105)[0] == Tlv(0x53, b"\xaa" * 2000)


def test_get_response_without_pending_data(tx: Transmit) -> None:
    assert tx(apdu(0, 0xC0, 0, 0, le=0))[1] == 0x6985


def test_other_command_drops_pending_response(tx: Transmit, big_object: bytes) -> None:
    assert tx(apdu(0, 0xCB, 0x3F, 0xFF, Tlv(0x5C, b"\x5f\xc1\x01"), le=0))[1] == 0x6100
    assert tx(apdu(0, 0xFD, 0, 0))[1] == OK
    assert tx(apdu(0, 0xC0, 0, 0, le=0))[1] == 0x6985


def test_abandoned_chain_is_dropped(tx: Transmit) -> None:
    assert authenticate_management(tx) == OK
    assert tx(apdu(0x10, 0xDB, 0x3F, 0xFF, b"\x5c\x03\x5f"))[1] == OK
    # A different command ends the chain; the half-sent PUT DATA never lands.
    assert tx(apdu(0, 0xFD, 0, 0, le=0)) == (bytes([5, 7, 1]), OK)
    assert tx(apdu(0, 0xDB, 0x3F, 0xFF, b"\xc1\x02\x53\x01\x00"))[1] == 0x6A80


# -- PIN / PUK --------------------------------------------------------------------------------


def test_verify_status_query(tx: Transmit) -> None:
    assert verify(tx, None) == 0x63C3
    assert verify(tx, "123456") == OK
    assert verify(tx, None) == OK


def test_wrong_pin_counts_down_and_blocks(tx: Transmit) -> None:
    assert verify(tx, "000000") == 0x63C2
    assert verify(tx, None) == 0x63C2
    assert verify(tx, "000000") == 0x63C1
    assert verify(tx, "000000") == 0x63C0
    assert verify(tx, "123456") == 0x6983  # blocked: even the right PIN
    assert verify(tx, None) == 0x6983


def test_correct_pin_resets_counter(tx: Transmit) -> None:
    assert verify(tx, "000000") == 0x63C2
    assert verify(tx, "123456") == OK
    assert tx(apdu(0, 0x20, 0xFF, 0x80))[1] == OK  # P1=FF: forget verification
    assert verify(tx, None) == 0x63C3


def test_verify_errors(tx: Transmit) -> None:
    assert tx(apdu(0, 0x20, 0, 0x80, b"1234567"))[1] == 0x6A80
    assert tx(apdu(0, 0x20, 0, 0x00, pin_block("123456")))[1] == 0x6A88
    assert tx(apdu(0, 0x20, 0x01, 0x80, pin_block("123456")))[1] == 0x6A86


def test_puk_unblocks_pin(tx: Transmit) -> None:
    for _ in range(3):
        verify(tx, "999999")
    assert verify(tx, None) == 0x6983
    reset = apdu(0, 0x2C, 0, 0x80, pin_block("00000000") + pin_block("654321"))
    assert tx(reset)[1] == 0x63C2  # wrong PUK
    reset = apdu(0, 0x2C, 0, 0x80, pin_block("12345678") + pin_block("654321"))
    assert tx(reset)[1] == OK
    assert verify(tx, None) == 0x63C3
    assert verify(tx, "654321") == OK


def test_blocked_puk(tx: Transmit) -> None:
    wrong = apdu(0, 0x2C, 0, 0x80, pin_block("00000000") + pin_block("654321"))
    assert [tx(wrong)[1] for _ in range(4)] == [0x63C2, 0x63C1, 0x63C0, 0x6983]


def test_change_pin(tx: Transmit) -> None:
    change = apdu(0, 0x24, 0, 0x80, pin_block("123456") + pin_block("24681357"))
    assert tx(change)[1] == OK
    assert verify(tx, "123456") == 0x63C2
    assert verify(tx, "24681357") == OK


def test_change_pin_rejects_bad_new_pin(tx: Transmit) -> None:
    for new in ("12345", "12a456"):
        change = apdu(0, 0x24, 0, 0x80, pin_block("123456") + pin_block(new))
        assert tx(change)[1] == 0x6A80
    assert tx(apdu(0, 0x24, 0, 0x80, pin_block("123456")))[1] == 0x6A80
    assert tx(apdu(0, 0x24, 0, 0x9B, pin_block("123456") * 2))[1] == 0x6A88


def test_change_puk(tx: Transmit) -> None:
    assert tx(apdu(0, 0x24, 0, 0x81, pin_block("00000000") + pin_block("87654321")))[1] == 0x63C2
    assert tx(apdu(0, 0x24, 0, 0x81, pin_block("12345678") + pin_block("87654321")))[1] == OK
    reset = apdu(0, 0x2C, 0, 0x80, pin_block("87654321") + pin_block("111111"))
    assert tx(reset)[1] == OK


# -- management key ----------------------------------------------------------------------------


def test_wrong_management_key_is_6982(tx: Transmit) -> None:
    assert authenticate_management(tx, bytes(24)) == 0x6982
    assert put_data(tx, CHUID, b"\x30\x00") == 0x6982


def test_management_key_algorithm_must_match(tx: Transmit) -> None:
    assert authenticate_management(tx, bytes(16), key_type=0x08) == 0x6A86


def test_second_step_without_witness(tx: Transmit) -> None:
    body = Tlv(0x7C, Tlv(0x80, bytes(8)) + Tlv(0x81, bytes(8)))
    assert tx(apdu(0, 0x87, 0x03, 0x9B, body))[1] == 0x6985


def test_external_authentication(tx: Transmit) -> None:
    data, sw = tx(apdu(0, 0x87, 0x03, 0x9B, Tlv(0x7C, Tlv(0x81)), le=0))
    assert sw == OK
    challenge = Tlv.unpack(0x81, Tlv.unpack(0x7C, data))
    encryptor = block_cipher(0x03, DEFAULT_MGMT_KEY).encryptor()
    answer = encryptor.update(challenge) + encryptor.finalize()
    assert tx(apdu(0, 0x87, 0x03, 0x9B, Tlv(0x7C, Tlv(0x82, answer))))[1] == OK
    assert put_data(tx, CHUID, b"\x30\x00") == OK


@pytest.mark.parametrize(("key_type", "size"), [(0x08, 16), (0x0A, 24), (0x0C, 32), (0x03, 24)])
def test_set_management_key_and_authenticate(tx: Transmit, key_type: int, size: int) -> None:
    new_key = bytes(range(1, size + 1))
    command = apdu(0, 0xFF, 0xFF, 0xFF, bytes([key_type]) + Tlv(0x9B, new_key))
    assert tx(command)[1] == 0x6982
    assert authenticate_management(tx) == OK
    assert tx(command)[1] == OK
    assert authenticate_management(tx, DEFAULT_MGMT_KEY) != OK
    assert authenticate_management(tx, new_key, key_type) == OK


def test_set_management_key_wrong_length(tx: Transmit) -> None:
    assert authenticate_management(tx) == OK
    assert tx(apdu(0, 0xFF, 0xFF, 0xFF, b"\x08" + Tlv(0x9B, bytes(24))))[1] == 0x6A80


# -- keys: generate, sign, ECDH ----------------------------------------------------------------


def test_generate_needs_management_key(tx: Transmit) -> None:
    assert generate(tx, 0x9E)[1] == 0x6982


def test_generate_and_sign_with_card_auth_key_without_pin(tx: Transmit) -> None:
    assert authenticate_management(tx) == OK
    data, sw = generate(tx, 0x9E)
    assert sw == OK
    key = public_key(data)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"challenge from a verifier")
    message = digest.finalize()
    tx(apdu(0, 0xA4, 4, 0, PIV_AID))  # no PIN verified on this path
    signature, sw = sign(tx, 0x9E, message)
    assert sw == OK
    key.verify(signature, message, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_pin_slots_need_verify(tx: Transmit) -> None:
    assert authenticate_management(tx) == OK
    key = public_key(generate(tx, 0x9A)[0])
    assert sign(tx, 0x9A, bytes(32))[1] == 0x6982
    assert verify(tx, "123456") == OK
    signature, sw = sign(tx, 0x9A, bytes(32))
    assert sw == OK
    key.verify(signature, bytes(32), ec.ECDSA(Prehashed(hashes.SHA256())))


def test_sign_errors(tx: Transmit) -> None:
    assert sign(tx, 0x9E, bytes(32))[1] == 0x6A88  # empty slot
    assert authenticate_management(tx) == OK
    assert generate(tx, 0x9E)[1] == OK
    assert sign(tx, 0x9E, bytes(31))[1] == 0x6A80  # P-256 takes a 32-byte digest
    assert sign(tx, 0x9E, bytes(48), algorithm=0x14)[1] == 0x6A86
    assert sign(tx, 0x9B + 0x50, bytes(32))[1] == 0x6A86
    assert tx(apdu(0, 0x87, 0x11, 0x9E, b"\x7c\x05\x82\x00"))[1] == 0x6A80
    assert generate(tx, 0x9E, algorithm=0x07)[1] == 0x6A80
    assert generate(tx, 0x9B)[1] == 0x6A86


def test_p384_key(tx: Transmit) -> None:
    assert authenticate_management(tx) == OK
    data, sw = generate(tx, 0x9D, algorithm=0x14)
    assert sw == OK
    point = Tlv.unpack(0x86, Tlv.unpack(0x7F49, data))
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), point)
    assert verify(tx, "123456") == OK
    signature, sw = sign(tx, 0x9D, bytes(48), algorithm=0x14)
    assert sw == OK
    key.verify(signature, bytes(48), ec.ECDSA(Prehashed(hashes.SHA384())))


def test_ecdh(tx: Transmit) -> None:
    assert authenticate_management(tx) == OK
    card_key = public_key(generate(tx, 0x9E)[0])
    peer = ec.generate_private_key(ec.SECP256R1())
    point = peer.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    body = Tlv(0x7C, Tlv(0x82) + Tlv(0x85, point))
    data, sw = send(tx, apdu(0, 0x87, 0x11, 0x9E, body, le=0))
    assert sw == OK
    assert Tlv.unpack(0x82, Tlv.unpack(0x7C, data)) == peer.exchange(ec.ECDH(), card_key)


# -- YubiKey extensions, unknown instructions --------------------------------------------------


def test_version_and_serial(tx: Transmit) -> None:
    assert tx(apdu(0, 0xFD, 0, 0, le=0)) == (bytes([5, 7, 1]), OK)
    assert tx(apdu(0, 0xF8, 0, 0, le=0)) == ((12345678).to_bytes(4, "big"), OK)


def test_metadata(tx: Transmit) -> None:
    pin = parse_dict(tx(apdu(0, 0xF7, 0, 0x80, le=0))[0])
    assert pin[0x05] == b"\x01" and pin[0x06] == b"\x03\x03"
    verify(tx, "000000")
    assert parse_dict(tx(apdu(0, 0xF7, 0, 0x80, le=0))[0])[0x06] == b"\x03\x02"
    mgmt = parse_dict(tx(apdu(0, 0xF7, 0, 0x9B, le=0))[0])
    assert mgmt[0x01] == b"\x03" and mgmt[0x05] == b"\x01"
    assert tx(apdu(0, 0xF7, 0, 0x9E, le=0))[1] == 0x6A82
    assert authenticate_management(tx) == OK
    point = Tlv.unpack(0x86, Tlv.unpack(0x7F49, generate(tx, 0x9E)[0]))
    slot = parse_dict(tx(apdu(0, 0xF7, 0, 0x9E, le=0))[0])
    assert slot[0x01] == b"\x11" and slot[0x02] == b"\x01\x01" and slot[0x03] == b"\x01"
    assert Tlv.unpack(0x86, slot[0x04]) == point


def test_unknown_instruction_and_class(tx: Transmit) -> None:
    assert tx(apdu(0, 0x50, 0, 0))[1] == 0x6D00
    assert tx(apdu(0x80, 0xCA, 0x9F, 0x7F, le=0))[1] == 0x6E00


# -- power events, fail_after --------------------------------------------------------------------


@pytest.mark.parametrize("event", ["power_off", "power_on", "reset"])
def test_power_event_clears_security_state(card: VirtualCard, tx: Transmit, event: str) -> None:
    assert verify(tx, "123456") == OK
    assert authenticate_management(tx) == OK
    assert tx(apdu(0, 0xA4, 4, 0, bytes.fromhex("D2760000850101")))[1] == OK
    getattr(card, event)()
    assert card.selected is card.piv
    assert verify(tx, None) == 0x63C3
    assert put_data(tx, CHUID, b"\x30\x00") == 0x6982


def test_selecting_another_application_clears_piv_state(tx: Transmit) -> None:
    assert verify(tx, "123456") == OK
    assert tx(apdu(0, 0xA4, 4, 0, bytes.fromhex("D2760000850101")))[1] == OK
    assert tx(apdu(0, 0xA4, 4, 0, PIV_AID))[1] == OK
    assert verify(tx, None) == 0x63C3


def test_fail_after_pulls_the_card() -> None:
    card = VirtualCard(CardState.blank(1), fail_after=2)
    assert card.process(apdu(0, 0xFD, 0, 0))[-2:] == b"\x90\x00"
    assert card.process(apdu(0, 0xFD, 0, 0))[-2:] == b"\x90\x00"
    with pytest.raises(CardPulled):
        card.process(apdu(0, 0xFD, 0, 0))
