"""NDEF URI records and the Type 4 Tag read/write sequence, against recorded exchanges."""

from __future__ import annotations

import pytest

from cardio import errors
from cardio.ndef import (
    NdefError,
    NdefRecord,
    NdefSession,
    ndef_message,
    parse_records,
    parse_uri_message,
    uri_record,
)
from cardio.transport import ScriptedTransport

VERIFY_URL = "https://id.example.gov.la/v/6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"


def test_uri_record_rtd_example() -> None:
    # The NFC Forum URI RTD 1.0 example: "http://www.nfc.com" is stored as the identifier
    # code 0x01 ("http://www.") followed by "nfc.com". Short record, MB|ME|SR, TNF 1, type "U".
    assert uri_record("http://www.nfc.com") == bytes.fromhex("D1010855016E66632E636F6D")
    assert parse_uri_message(bytes.fromhex("D1010855016E66632E636F6D")) == "http://www.nfc.com"


def test_verify_url_uses_https_code() -> None:
    record = uri_record(VERIFY_URL)
    rest = VERIFY_URL.removeprefix("https://").encode()
    assert record == bytes((0xD1, 0x01, len(rest) + 1, 0x55, 0x04)) + rest
    assert parse_uri_message(record) == VERIFY_URL


def test_unknown_scheme_uses_code_zero_and_long_records() -> None:
    url = "geo:17.9757,102.6331?q=" + "x" * 300
    record = uri_record(url)
    assert record[0] == 0xC1  # MB|ME, not SR: payload > 255
    assert record[2:6] == (len(url) + 1).to_bytes(4, "big")
    assert record[7] == 0x00
    assert parse_uri_message(record) == url


def test_message_of_several_records_sets_mb_and_me() -> None:
    text = NdefRecord(0x01, b"T", b"\x02enHello")
    message = ndef_message([uri_record(VERIFY_URL), text])
    records = parse_records(message)
    assert [r.type for r in records] == [b"U", b"T"]
    assert message[0] & 0xC0 == 0x80  # first: MB only
    assert parse_uri_message(message) == VERIFY_URL


@pytest.mark.parametrize(
    "data",
    [
        "",  # empty
        "91010855016E66632E636F6D",  # ME missing
        "D1010955016E66632E636F6D",  # payload runs past the end
        "D1010855016E66632E636F6DAA",  # trailing bytes after ME
        "F1010855016E66632E636F6D",  # chunked
    ],
)
def test_malformed_messages(data: str) -> None:
    with pytest.raises(NdefError):
        parse_records(bytes.fromhex(data))


def test_no_uri_record() -> None:
    with pytest.raises(NdefError):
        parse_uri_message(NdefRecord(0x01, b"T", b"\x02enHi").encode())


def _open(extra: list[tuple[str, str]], cc: str) -> ScriptedTransport:
    return ScriptedTransport(
        [
            ("00A40400 07 D2760000850101 00", "9000"),
            ("00A4000C 02 E103", "9000"),
            ("00B00000 0F", cc + "9000"),
            ("00A4000C 02 E104", "9000"),
            *extra,
        ]
    )


# CCLEN 000F, mapping 2.0, MLe 003B (59), MLc 0034 (52), NDEF file E104 of 0800 bytes, r/w free
CC = "000F 20 003B 0034 04 06 E104 0800 00 00"


def test_write_then_read_in_cc_sized_chunks() -> None:
    message = ndef_message([uri_record(VERIFY_URL)])
    assert len(message) == 61  # 4 header bytes + code 04 + 56 bytes of URI
    hex_msg = message.hex().upper()
    write = [
        ("00D60000 02 0000", "9000"),  # NLEN = 0 while writing
        ("00D60002 34" + hex_msg[: 52 * 2], "9000"),  # MLc = 52
        ("00D60036 09" + hex_msg[52 * 2 :], "9000"),
        ("00D60000 02 003D", "9000"),  # then the real NLEN
    ]
    read = [
        ("00B00000 02", "003D 9000"),
        ("00B00002 3B", hex_msg[: 59 * 2] + "9000"),  # MLe = 59
        ("00B0003D 02", hex_msg[59 * 2 :] + "9000"),
    ]
    transport = _open(write + read, CC)
    session = NdefSession(transport)
    assert session.capabilities.max_write == 52
    session.write_message(message)
    assert parse_uri_message(session.read_message()) == VERIFY_URL
    transport.assert_done()


def test_read_is_split_by_mle() -> None:
    message = ndef_message([uri_record(VERIFY_URL + "/more/path/for/a/long/read")])
    n = len(message)
    assert n > 59
    hex_msg = message.hex().upper()
    transport = _open(
        [
            ("00B00000 02", f"{n:04X} 9000"),
            ("00B00002 3B", hex_msg[: 59 * 2] + "9000"),
            (f"00B0003D {n - 59:02X}", hex_msg[59 * 2 :] + "9000"),
        ],
        CC,
    )
    assert NdefSession(transport).read_message() == message
    transport.assert_done()


def test_empty_tag_reads_empty() -> None:
    transport = _open([("00B00000 02", "0000 9000")], CC)
    assert NdefSession(transport).read_message() == b""


def test_read_only_tag_refuses_write() -> None:
    transport = _open([], "000F 20 003B 0034 04 06 E104 0800 00 FF")
    with pytest.raises(errors.CardError, match="read-only"):
        NdefSession(transport).write_message(uri_record(VERIFY_URL))
    transport.assert_done()


def test_message_too_large_for_file() -> None:
    transport = _open([], "000F 20 003B 0034 04 06 E104 0020 00 00")
    with pytest.raises(ValueError):
        NdefSession(transport).write_message(uri_record(VERIFY_URL))


def test_card_without_ndef_application() -> None:
    transport = ScriptedTransport([("00A40400 07 D2760000850101 00", "6A82")])
    with pytest.raises(errors.NotFound, match="NDEF"):
        NdefSession(transport)
