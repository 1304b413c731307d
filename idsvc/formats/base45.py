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

from typing import Final

__all__ = ["ALPHABET", "Base45Error", "b45decode", "b45encode"]

ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE: Final = {char: value for value, char in enumerate(ALPHABET)}


class Base45Error(ValueError):
    """The text is not valid base45."""


def b45encode(data: bytes) -> str:
    """Two bytes become three characters (low digit first), a last odd byte two."""
    out: list[str] = []
    append = out.append
    full = len(data) - len(data) % 2
    for i in range(0, full, 2):
        n = (data[i] << 8) | data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        append(ALPHABET[c] + ALPHABET[d] + ALPHABET[e])
    if full != len(data):
        d, c = divmod(data[-1], 45)
        append(ALPHABET[c] + ALPHABET[d])
    return "".join(out)


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
