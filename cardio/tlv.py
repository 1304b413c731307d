"""BER-TLV as used by ISO 7816-4 and PIV (NIST SP 800-73-4 part 2).

``Tlv`` is a ``bytes`` subclass holding one complete encoded TLV, with ``tag`` (an int, e.g.
``0x5FC102``) and ``value`` views, in the style of yubikit: callers build and parse objects
without slicing offsets by hand.

Only definite lengths are accepted (PIV forbids the indefinite form); a length that runs past the
buffer raises ``TlvError`` rather than returning a truncated value.
"""

from __future__ import annotations

from collections.abc import Iterator


class TlvError(ValueError):
    """The bytes are not well-formed BER-TLV."""


def _read_tag(data: bytes, offset: int) -> tuple[int, int]:
    if offset >= len(data):
        raise TlvError("missing tag")
    tag = data[offset]
    offset += 1
    if tag & 0x1F == 0x1F:  # multi-byte tag: continue while bit 8 is set
        while True:
            if offset >= len(data):
                raise TlvError("truncated tag")
            byte = data[offset]
            tag = (tag << 8) | byte
            offset += 1
            if not byte & 0x80:
                break
    return tag, offset


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    if offset >= len(data):
        raise TlvError("missing length")
    first = data[offset]
    offset += 1
    if first < 0x80:
        return first, offset
    count = first & 0x7F
    if count == 0 or count > 3:
        raise TlvError(f"unsupported length form 0x{first:02X}")
    if offset + count > len(data):
        raise TlvError("truncated length")
    return int.from_bytes(data[offset : offset + count], "big"), offset + count


def encode_length(length: int) -> bytes:
    if length < 0:
        raise TlvError("negative length")
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(raw) > 3:
        raise TlvError("value too long for BER-TLV")
    return bytes([0x80 | len(raw)]) + raw


def encode_tag(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


class Tlv(bytes):
    """One encoded TLV. ``Tlv(0x53, b"...")`` builds; ``Tlv.parse(data)`` reads one."""

    tag: int
    value: bytes

    def __new__(cls, tag: int, value: bytes = b"") -> Tlv:
        value = bytes(value)
        encoded = encode_tag(tag) + encode_length(len(value)) + value
        obj = super().__new__(cls, encoded)
        obj.tag = tag
        obj.value = value
        return obj

    @classmethod
    def parse_from(cls, data: bytes, offset: int = 0) -> tuple[Tlv, int]:
        """Parse the TLV at ``offset``; return it and the offset just past it."""
        tag, offset = _read_tag(data, offset)
        length, offset = _read_length(data, offset)
        end = offset + length
        if end > len(data):
            raise TlvError(f"tag 0x{tag:X} claims {length} bytes, only {len(data) - offset} left")
        return cls(tag, data[offset:end]), end

    @classmethod
    def parse(cls, data: bytes) -> Tlv:
        """Parse exactly one TLV; trailing bytes are an error."""
        tlv, end = cls.parse_from(data)
        if end != len(data):
            raise TlvError(f"{len(data) - end} trailing bytes after tag 0x{tlv.tag:X}")
        return tlv

    @classmethod
    def parse_list(cls, data: bytes) -> list[Tlv]:
        return list(iter_tlvs(data))

    @classmethod
    def unpack(cls, tag: int, data: bytes) -> bytes:
        """Parse one TLV, check its tag, return its value."""
        tlv = cls.parse(data)
        if tlv.tag != tag:
            raise TlvError(f"expected tag 0x{tag:X}, found 0x{tlv.tag:X}")
        return tlv.value

    def __repr__(self) -> str:
        return f"Tlv(tag=0x{self.tag:X}, value={self.value.hex()})"


def iter_tlvs(data: bytes) -> Iterator[Tlv]:
    offset = 0
    while offset < len(data):
        tlv, offset = Tlv.parse_from(data, offset)
        yield tlv


def parse_dict(data: bytes) -> dict[int, bytes]:
    """Parse a sequence of TLVs into {tag: value}; a repeated tag is an error."""
    result: dict[int, bytes] = {}
    for tlv in iter_tlvs(data):
        if tlv.tag in result:
            raise TlvError(f"tag 0x{tlv.tag:X} repeated")
        result[tlv.tag] = tlv.value
    return result
