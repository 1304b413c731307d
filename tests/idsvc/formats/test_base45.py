"""Base45 (RFC 9285): the RFC's own vectors, strict decoding, and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idsvc.formats.base45 import ALPHABET, Base45Error, b45decode, b45encode

# RFC 9285 §4.3 and §4.4 examples.
VECTORS = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
    (b"", ""),
]


@pytest.mark.parametrize(("raw", "text"), VECTORS)
def test_rfc_9285_vectors(raw: bytes, text: str) -> None:
    assert b45encode(raw) == text
    assert b45decode(text) == raw


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("GGW", "larger than two bytes"),  # 16 + 16*45 + 32*45**2 = 65536
        (":::", "larger than two bytes"),  # the largest triple, 91124
        ("BB8A", "one character over"),
        ("bb8", "outside the base45 alphabet"),  # lower case is not base45
        ("BB8=", "one character over"),
        ("BB_", "outside the base45 alphabet"),
        ("U:", "larger than one byte"),  # 30 + 44*45 = 2010 > 255
    ],
)
def test_strict_decoding_refuses(text: str, why: str) -> None:
    with pytest.raises(Base45Error, match=why):
        b45decode(text)


def test_largest_valid_groups() -> None:
    assert b45decode("FGW") == b"\xff\xff"  # 15 + 16*45 + 32*2025 = 65535
    assert b45decode("U5") == b"\xff"  # 30 + 5*45 = 255


def test_not_text_is_refused() -> None:
    with pytest.raises(Base45Error):
        b45decode(b"BB8")  # type: ignore[arg-type]


@given(st.binary(max_size=600))
def test_round_trip(raw: bytes) -> None:
    text = b45encode(raw)
    assert set(text) <= set(ALPHABET)
    assert len(text) == len(raw) // 2 * 3 + len(raw) % 2 * 2
    assert b45decode(text) == raw


@given(st.text(alphabet=ALPHABET + "abc=_\u00e9\x00", max_size=60))
def test_decoding_any_text_gives_bytes_or_base45_error(text: str) -> None:
    try:
        raw = b45decode(text)
    except Base45Error:
        return
    # Strictness: whatever decodes is the one canonical spelling of its bytes.
    assert b45encode(raw) == text
