"""Just enough DER (X.690) to split and assemble the few structures cryptography will not.

Used to put an externally made signature into an X.509 certificate and to tell a
damaged encrypted key file from a wrong passphrase. Definite lengths only, as DER
requires; anything else is rejected with ``ValueError``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BIT_STRING", "OCTET_STRING", "SEQUENCE", "encode", "split_sequence"]

SEQUENCE: Final = 0x30
BIT_STRING: Final = 0x03
OCTET_STRING: Final = 0x04


def encode(tag: int, content: bytes) -> bytes:
    """One TLV with a single-byte tag."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _read(data: bytes, offset: int) -> tuple[int, int, int]:
    """Return (tag, content offset, end offset) of the TLV starting at ``offset``."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not expected here")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        # 0x80 is the BER indefinite form, never valid DER; 4 bytes is a 4 GiB value.
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        size = int.from_bytes(data[pos : pos + count], "big")
        if size < 0x80 or data[pos] == 0:
            raise ValueError("non-minimal DER length")
        pos += count
    end = pos + size
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, pos, end


def split_sequence(der: bytes) -> list[tuple[int, bytes]]:
    """The (tag, full TLV bytes) children of a DER SEQUENCE that fills ``der`` exactly."""
    tag, start, end = _read(der, 0)
    if tag != SEQUENCE or end != len(der):
        raise ValueError("not a single DER SEQUENCE")
    children: list[tuple[int, bytes]] = []
    offset = start
    while offset < end:
        child_tag, _, child_end = _read(der, offset)
        children.append((child_tag, der[offset:child_end]))
        offset = child_end
    return children
