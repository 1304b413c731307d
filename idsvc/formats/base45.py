"""Base45 (RFC 9285): bytes as text from the QR alphanumeric alphabet.

Why base45 and not base64: a QR code's alphanumeric mode stores 45 symbols at 5.5 bits each,
so base45 text (1.5 characters a byte) fits in fewer modules than base64 in byte mode
(1.33 characters a byte at 8 bits each). The Claim 169 QR is base45 for that reason.

Decoding is strict, as RFC 9285 §6 asks: a character outside the alphabet (lower case
included), a length of 1 modulo 3, or a group whose value does not fit its byte count raises
:class:`Base45Error` (a ``ValueError``), so every string decodes to at most one byte string and
no two strings decode to the same bytes.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["ALPHABET", "Base45Error", "b45decode", "b45encode"]

ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE: Final = {char: value for value, char in enumerate(ALPHABET)}


class Base45Error(ValueError):
    """The text is not valid base45."""


# The last two characters of a two-byte group, by the group's value // 45 (at most 1456): one
# lookup instead of a divmod and a concatenation per group, which made up half of the encode.
_HIGH_PAIRS: Final = tuple(ALPHABET[v % 45] + ALPHABET[v // 45] for v in range(45 * 45))


def b45encode(data: bytes) -> str:
    """Two bytes become three characters (low digit first), a last odd byte two."""
    full = len(data) - len(data) % 2
    groups = struct.unpack(f">{full // 2}H", data[:full])
    out = "".join([ALPHABET[n % 45] + _HIGH_PAIRS[n // 45] for n in groups])
    if full != len(data):
        d, c = divmod(data[-1], 45)
        out += ALPHABET[c] + ALPHABET[d]
    return out


def _digits(text: str, start: int, count: int) -> int:
    value = 0
    for offset in reversed(range(count)):
        digit = _VALUE.get(text[start + offset])
        if digit is None:
            raise Base45Error(f"character {start + offset} is outside the base45 alphabet")
        value = value * 45 + digit
    return value


def b45decode(text: str) -> bytes:
    """Decode base45 text; raise :class:`Base45Error` on anything RFC 9285 does not allow."""
    if not isinstance(text, str):
        raise Base45Error("base45 input must be text")
    length = len(text)
    if length % 3 == 1:
        raise Base45Error("base45 length leaves one character over")
    out = bytearray()
    full = length - length % 3
    for i in range(0, full, 3):
        n = _digits(text, i, 3)
        if n > 0xFFFF:
            raise Base45Error(f"base45 group at {i} is larger than two bytes")
        out += n.to_bytes(2, "big")
    if full != length:
        n = _digits(text, full, 2)
        if n > 0xFF:
            raise Base45Error(f"base45 group at {full} is larger than one byte")
        out.append(n)
    return bytes(out)
