"""Property tests (hypothesis) for BER-TLV (cardio/tlv.py): what the encoder writes parses back
to the same tags and values, and any bytes at all either parse or raise ``TlvError`` (never
IndexError, OverflowError or another surprise). Derandomized and database-free, so CI runs the
same examples every time."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from cardio.tlv import Tlv, TlvError, iter_tlvs, parse_dict

PROPERTY = settings(max_examples=150, derandomize=True, database=None, deadline=None)


@st.composite
def tags(draw: st.DrawFn) -> int:
    """Tags as BER writes them: one byte whose low five bits are not all set, or 0x1F-style
    first byte followed by bytes with bit 8 set, except the last."""
    if draw(st.booleans()):
        first = draw(st.integers(0, 255).filter(lambda b: b & 0x1F != 0x1F))
        return first
    first = draw(st.integers(0, 7)) << 5 | 0x1F
    middle = draw(st.lists(st.integers(0x80, 0xFF), max_size=2))
    last = draw(st.integers(0x01, 0x7F))
    tag = first
    for byte in [*middle, last]:
        tag = tag << 8 | byte
    return tag


values = st.binary(max_size=300)


@PROPERTY
@given(tags(), values)
def test_one_tlv_round_trips(tag: int, value: bytes) -> None:
    encoded = bytes(Tlv(tag, value))
    parsed = Tlv.parse(encoded)
    assert (parsed.tag, parsed.value) == (tag, value)
    assert Tlv.unpack(tag, encoded) == value


@PROPERTY
@given(st.lists(st.tuples(tags(), values), max_size=6))
def test_a_sequence_round_trips(items: list[tuple[int, bytes]]) -> None:
    data = b"".join(Tlv(tag, value) for tag, value in items)
    assert [(t.tag, t.value) for t in iter_tlvs(data)] == items
    if len({tag for tag, _ in items}) == len(items):
        assert parse_dict(data) == dict(items)


@PROPERTY
@given(tags(), st.binary(min_size=1, max_size=300), st.data())
def test_a_truncated_tlv_is_a_tlv_error(tag: int, value: bytes, data: st.DataObject) -> None:
    encoded = bytes(Tlv(tag, value))
    cut = data.draw(st.integers(0, len(encoded) - 1))
    try:
        Tlv.parse(encoded[:cut])
    except TlvError:
        return
    raise AssertionError(f"{encoded[:cut].hex()} parsed although truncated")


@PROPERTY
@given(st.binary(max_size=400))
def test_any_bytes_parse_or_raise_tlv_error(data: bytes) -> None:
    for parse in (Tlv.parse, lambda d: list(iter_tlvs(d)), parse_dict):
        with contextlib.suppress(TlvError):
            parse(data)


@PROPERTY
@given(tags(), values, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_after_one_tlv_are_refused(tag: int, value: bytes, extra: bytes) -> None:
    try:
        Tlv.parse(bytes(Tlv(tag, value)) + extra)
    except TlvError:
        return
    raise AssertionError("trailing bytes accepted")
