"""APDU encoding (ISO 7816-4 §5.1) and the response loop, against recorded exchanges."""

from __future__ import annotations

import pytest

from cardio import errors
from cardio.apdu import Apdu, ApduConnection
from cardio.transport import ScriptedTransport, ScriptMismatch


@pytest.mark.parametrize(
    ("apdu", "short", "extended"),
    [
        # case 1: header only, same in both forms
        (Apdu(0x00, 0x20, 0x00, 0x80), "00200080", "00200080"),
        # case 2: Le only (00 = 256 short / 65536 extended)
        (Apdu(0x00, 0xFD, 0x00, 0x00, le=0), "00FD000000", "00FD0000000000"),
        (Apdu(0x00, 0xB0, 0x00, 0x00, le=15), "00B000000F", "00B0000000000F"),
        (Apdu(0x00, 0xB0, 0x00, 0x00, le=256), "00B0000000", "00B00000000100"),
        # case 3: data only
        (
            Apdu(0x00, 0xA4, 0x00, 0x0C, bytes.fromhex("E103")),
            "00A4000C02E103",
            "00A4000C000002E103",
        ),
        # case 4: data and Le
        (
            Apdu(0x00, 0xCB, 0x3F, 0xFF, bytes.fromhex("5C035FC102"), le=0),
            "00CB3FFF055C035FC10200",
            "00CB3FFF0000055C035FC1020000",
        ),
    ],
)
def test_encoding_short_and_extended(apdu: Apdu, short: str, extended: str) -> None:
    assert apdu.encode(extended=False).hex().upper() == short
    assert apdu.encode(extended=True).hex().upper() == extended


def test_extended_encoding_of_long_data() -> None:
    data = bytes(range(256)) * 2  # 512 bytes
    encoded = Apdu(0x00, 0xDB, 0x3F, 0xFF, data).encode(extended=True)
    assert encoded[:7] == bytes.fromhex("00DB3FFF000200")
    assert encoded[7:] == data
    encoded = Apdu(0x00, 0xDB, 0x3F, 0xFF, data, le=0).encode(extended=True)
    assert encoded[-2:] == b"\x00\x00"


def test_short_encoding_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError):
        Apdu(0x00, 0xDB, 0x3F, 0xFF, bytes(256)).encode()
    with pytest.raises(ValueError):
        Apdu(0x00, 0xB0, 0x00, 0x00, le=257).encode()
    with pytest.raises(ValueError):
        Apdu(0x00, 0x100, 0x00, 0x00)


def test_chaining_splits_into_255_byte_frames() -> None:
    data = bytes(i & 0xFF for i in range(600))
    frames = Apdu(0x00, 0xDB, 0x3F, 0xFF, data, le=0).chain(extended=False)
    assert [len(f.data) for f in frames] == [255, 255, 90]
    assert [f.cla for f in frames] == [0x10, 0x10, 0x00]
    assert [f.le for f in frames] == [None, None, 0]
    assert b"".join(f.data for f in frames) == data
    # extended connections send it in one frame
    assert len(Apdu(0x00, 0xDB, 0x3F, 0xFF, data).chain(extended=True)) == 1


def test_connection_sends_chain_and_counts() -> None:
    data = bytes(300)
    transport = ScriptedTransport(
        [
            ("10DB3FFF FF" + "00" * 255, "9000"),
            ("00DB3FFF 2D" + "00" * 45, "9000"),
        ]
    )
    conn = ApduConnection(transport)
    assert conn.send(0x00, 0xDB, 0x3F, 0xFF, data) == b""
    transport.assert_done()
    assert (conn.apdus_sent, conn.commands_sent) == (2, 1)


def test_chain_stops_at_first_refused_frame() -> None:
    transport = ScriptedTransport([("10DB3FFF FF" + "00" * 255, "6982")])
    conn = ApduConnection(transport)
    with pytest.raises(errors.SecurityStatusNotSatisfied):
        conn.send(0x00, 0xDB, 0x3F, 0xFF, bytes(300))
    transport.assert_done()


def test_get_response_follows_61xx() -> None:
    transport = ScriptedTransport(
        [
            ("00CB3FFF 05 5C035FC102 00", "AABB 6103"),
            ("00C00000 03", "CCDDEE 6102"),
            ("00C00000 02", "FF11 9000"),
        ]
    )
    conn = ApduConnection(transport)
    assert conn.send(0x00, 0xCB, 0x3F, 0xFF, bytes.fromhex("5C035FC102"), le=0) == bytes.fromhex(
        "AABBCCDDEEFF11"
    )
    transport.assert_done()
    assert (conn.apdus_sent, conn.commands_sent) == (3, 1)


def test_get_response_6100_means_256_bytes() -> None:
    transport = ScriptedTransport([("00CA0000 00", "6100"), ("00C00000 00", "01" * 256 + "9000")])
    assert ApduConnection(transport).send(0x00, 0xCA, 0x00, 0x00, le=0) == b"\x01" * 256


def test_get_response_is_short_even_on_extended_connection() -> None:
    transport = ScriptedTransport(
        [("00CB3FFF 000005 5C035FC102 0000", "AA 6101"), ("00C00000 01", "BB 9000")]
    )
    conn = ApduConnection(transport, extended=True)
    assert conn.send(0x00, 0xCB, 0x3F, 0xFF, bytes.fromhex("5C035FC102"), le=0) == b"\xaa\xbb"


def test_6cxx_resends_with_right_le() -> None:
    transport = ScriptedTransport([("00B00000 0F", "6C05"), ("00B00000 05", "0102030405 9000")])
    conn = ApduConnection(transport)
    assert conn.send(0x00, 0xB0, 0x00, 0x00, le=15) == bytes.fromhex("0102030405")
    transport.assert_done()
    assert (conn.apdus_sent, conn.commands_sent) == (2, 1)


def test_6cxx_on_get_response() -> None:
    transport = ScriptedTransport(
        [
            ("00CA0101 00", "AA 6104"),
            ("00C00000 04", "6C02"),
            ("00C00000 02", "BBCC 9000"),
        ]
    )
    assert ApduConnection(transport).send(0x00, 0xCA, 0x01, 0x01, le=0) == bytes.fromhex("AABBCC")


def test_6cxx_retry_is_bounded() -> None:
    transport = ScriptedTransport(
        [("00B00000 0F", "6C05"), ("00B00000 05", "6C04"), ("00B00000 04", "6C03")]
    )
    with pytest.raises(errors.ApduError) as info:
        ApduConnection(transport).send(0x00, 0xB0, 0x00, 0x00, le=15)
    assert info.value.sw == 0x6C03


@pytest.mark.parametrize(
    ("sw", "error"),
    [
        ("6A82", errors.NotFound),
        ("6A88", errors.NotFound),
        ("6982", errors.SecurityStatusNotSatisfied),
        ("6983", errors.PinBlocked),
        ("63C0", errors.PinBlocked),
        ("63C2", errors.WrongPin),
        ("6700", errors.WrongLength),
        ("6D00", errors.NotSupported),
        ("6E00", errors.NotSupported),
        ("6A81", errors.NotSupported),
        ("6985", errors.ConditionsNotSatisfied),
        ("6A80", errors.IncorrectData),
        ("6A84", errors.NoSpace),
        ("6F00", errors.ApduError),
    ],
)
def test_status_words_become_typed_errors(sw: str, error: type[errors.ApduError]) -> None:
    transport = ScriptedTransport([("00200080", sw)])
    with pytest.raises(error) as info:
        ApduConnection(transport).send(0x00, 0x20, 0x00, 0x80)
    assert type(info.value) is error
    assert info.value.sw == int(sw, 16)
    assert isinstance(info.value, errors.CardError)


def test_wrong_pin_carries_retries() -> None:
    error = errors.error_for_sw(0x63C2)
    assert isinstance(error, errors.WrongPin)
    assert error.retries_left == 2


def test_scripted_transport_fails_loudly() -> None:
    transport = ScriptedTransport([("00A4040000", "9000")])
    with pytest.raises(ScriptMismatch, match="differs"):
        transport.transmit(bytes.fromhex("00A4040001"))
    # poisoned: even the right command now fails, so a swallowed mismatch cannot pass a test
    with pytest.raises(ScriptMismatch):
        transport.transmit(bytes.fromhex("00A4040000"))
    with pytest.raises(ScriptMismatch):
        transport.assert_done()


def test_scripted_transport_reports_unused_and_extra_exchanges() -> None:
    transport = ScriptedTransport([("00200080", "9000"), ("00200080", "9000")])
    transport.transmit(bytes.fromhex("00200080"))
    with pytest.raises(ScriptMismatch, match="unused"):
        transport.assert_done()
    transport.transmit(bytes.fromhex("00200080"))
    with pytest.raises(ScriptMismatch, match="after the script ended"):
        transport.transmit(bytes.fromhex("00200080"))
