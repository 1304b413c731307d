"""PIV data objects of SP 800-73-4 that the desk writes: CHUID (with a FASC-N) and Printed
Information.

Printed Information (5FC109) holds UTF-8 text (Lao, Khmer) in byte-limited fields of
SP 800-73-4 part 1 table 9: name 125, employee affiliation 20, organization affiliation 2 × 20,
issuer identification 15, agency card serial number 20 bytes. Free-text fields are truncated at
a character-cluster boundary (never inside a UTF-8 sequence, never separating a base letter from
its vowel signs, tone marks or Khmer subscript consonant, never leaving a Lao/Thai pre-posed
vowel without its consonant); the organization affiliation first spills into its second line.
Identifiers (serial, issuer id) are rejected with ``ValueError`` when too long: a cut identifier
would be a different identifier. The complete data is in the signed credential object anyway.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from .errors import BadResponse
from .tlv import Tlv, TlvError, parse_dict

TAG_LRC = 0xFE  # the error-detection code every PIV data object ends with (always empty)

_BCD_SS, _BCD_FS, _BCD_ES = 0b11010, 0b10110, 0b11111


def _bcd_char(digit: int) -> int:
    """A FASC-N character: 4 data bits least significant first, then odd parity."""
    bits = sum(((digit >> i) & 1) << (4 - i) for i in range(4))
    parity = (bin(digit).count("1") + 1) % 2
    return bits | parity


def fasc_n(
    agency_code: int,
    system_code: int,
    credential_number: int,
    credential_series: int,
    individual_credential_issue: int,
    person_identifier: int,
    organizational_category: int,
    organizational_identifier: int,
    person_association_category: int,
) -> bytes:
    """The 25-byte BCD FASC-N (PACS TIG v2.3 §6): 40 five-bit characters with LRC."""

    def digits(value: int, count: int) -> list[int]:
        text = f"{value:0{count}d}"
        if len(text) != count:
            raise ValueError(f"{value} has more than {count} digits")
        return [_bcd_char(int(d)) for d in text]

    chars = [_BCD_SS, *digits(agency_code, 4), _BCD_FS, *digits(system_code, 4), _BCD_FS]
    chars += [*digits(credential_number, 6), _BCD_FS, *digits(credential_series, 1), _BCD_FS]
    chars += [*digits(individual_credential_issue, 1), _BCD_FS, *digits(person_identifier, 10)]
    chars += [*digits(organizational_category, 1), *digits(organizational_identifier, 4)]
    chars += [*digits(person_association_category, 1), _BCD_ES]
    lrc = 0
    for char in chars:
        lrc ^= char
    chars.append(lrc)
    value = 0
    for char in chars:
        value = (value << 5) | char
    return value.to_bytes(25, "big")


# Agency code 9999 marks a non-federal issuer (as yubico-piv-tool, ykman and OpenSC write it).
NON_FEDERAL_FASC_N = fasc_n(9999, 9999, 999999, 0, 1, 0, 3, 0, 1)


@dataclass(frozen=True)
class Chuid:
    """Card Holder Unique Identifier (object 5FC102): the card's stable UUID and expiry."""

    guid: UUID
    expiry: date
    fasc_n: bytes = NON_FEDERAL_FASC_N
    issuer_signature: bytes = b""

    @classmethod
    def build(cls, card_uuid: UUID, expiry: date) -> bytes:
        return cls(card_uuid, expiry).to_bytes()

    def to_bytes(self) -> bytes:
        return (
            Tlv(0x30, self.fasc_n)
            + Tlv(0x34, self.guid.bytes)
            + Tlv(0x35, self.expiry.strftime("%Y%m%d").encode())
            + Tlv(0x3E, self.issuer_signature)
            + Tlv(TAG_LRC)
        )

    @classmethod
    def parse(cls, data: bytes) -> Chuid:
        try:
            fields = parse_dict(data)
            raw_date = fields[0x35].decode("ascii")
            expiry = date(int(raw_date[:4]), int(raw_date[4:6]), int(raw_date[6:8]))
            return cls(
                guid=UUID(bytes=fields[0x34]),
                expiry=expiry,
                fasc_n=fields[0x30],
                issuer_signature=fields.get(0x3E, b""),
            )
        except (TlvError, KeyError, ValueError) as exc:
            raise BadResponse(f"malformed CHUID: {exc}") from exc


# -- Printed Information ----------------------------------------------------------------------

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_JOINERS = {"\u200c", "\u200d", "\u034f"}
_JOIN_NEXT = {"\u17d2", "\u200d"}  # Khmer COENG: the next consonant is its subscript
_LAO_THAI_PREPOSED = set("\u0ec0\u0ec1\u0ec2\u0ec3\u0ec4\u0e40\u0e41\u0e42\u0e43\u0e44")
_SPACING_AM = {"\u0eb3", "\u0e33"}  # Lao / Thai vowel sign AM (spacing, but part of cluster)


def clusters(text: str) -> list[str]:
    """Split text into user-perceived characters, conservatively for Lao and Khmer.

    Keeps combining marks (Mn/Mc/Me), joiners, variation selectors, Lao/Thai AM with their
    base; a Khmer COENG with the consonant after it; a Lao/Thai pre-posed vowel (stored before
    its consonant) with that consonant.
    """
    out: list[str] = []
    for char in text:
        if out and (
            unicodedata.category(char) in ("Mn", "Mc", "Me")
            or char in _JOINERS
            or char in _SPACING_AM
            or "\ufe00" <= char <= "\ufe0f"
            or out[-1][-1] in _JOIN_NEXT
            or out[-1] in _LAO_THAI_PREPOSED
        ):
            out[-1] += char
        else:
            out.append(char)
    return out


def fit_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` made of whole clusters that fits ``max_bytes`` in UTF-8."""
    used = 0
    kept: list[str] = []
    for cluster in clusters(text):
        size = len(cluster.encode())
        if used + size > max_bytes:
            break
        kept.append(cluster)
        used += size
    return "".join(kept)


def _identifier(value: str, max_bytes: int, what: str) -> bytes:
    raw = value.encode()
    if len(raw) > max_bytes:
        raise ValueError(f"{what} is {len(raw)} bytes; the PIV limit is {max_bytes}")
    return raw


@dataclass(frozen=True)
class PrintedInformation:
    """Printed Information (object 5FC109), SP 800-73-4 part 1 table 9."""

    name: str
    employee_affiliation: str
    expiry: date
    agency_card_serial: str
    issuer_id: str
    organization_affiliation: str = ""

    NAME_MAX = 125
    AFFILIATION_MAX = 20
    SERIAL_MAX = 20
    ISSUER_MAX = 15
    ORG_LINE_MAX = 20

    @classmethod
    def build(
        cls,
        name: str,
        employee_affiliation: str,
        expiry: date,
        agency_card_serial: str,
        issuer_id: str,
        organization_affiliation: str = "",
    ) -> bytes:
        return cls(
            name,
            employee_affiliation,
            expiry,
            agency_card_serial,
            issuer_id,
            organization_affiliation,
        ).to_bytes()

    def to_bytes(self) -> bytes:
        line1 = fit_utf8(self.organization_affiliation, self.ORG_LINE_MAX)
        line2 = fit_utf8(self.organization_affiliation[len(line1) :], self.ORG_LINE_MAX)
        out: bytes = Tlv(0x01, fit_utf8(self.name, self.NAME_MAX).encode())
        out += Tlv(0x02, fit_utf8(self.employee_affiliation, self.AFFILIATION_MAX).encode())
        out += Tlv(
            0x04,
            f"{self.expiry.year:04d}{_MONTHS[self.expiry.month - 1]}{self.expiry.day:02d}".encode(),
        )
        out += Tlv(0x05, _identifier(self.agency_card_serial, self.SERIAL_MAX, "card serial"))
        out += Tlv(0x06, _identifier(self.issuer_id, self.ISSUER_MAX, "issuer id"))
        if line1:
            out += Tlv(0x07, line1.encode())
        if line2:
            out += Tlv(0x08, line2.encode())
        return out + Tlv(TAG_LRC)

    @classmethod
    def parse(cls, data: bytes) -> PrintedInformation:
        try:
            fields = parse_dict(data)
            raw_date = fields[0x04].decode("ascii")
            expiry = date(
                int(raw_date[:4]), _MONTHS.index(raw_date[4:7].upper()) + 1, int(raw_date[7:9])
            )
            return cls(
                name=fields[0x01].decode(),
                employee_affiliation=fields.get(0x02, b"").decode(),
                expiry=expiry,
                agency_card_serial=fields.get(0x05, b"").decode(),
                issuer_id=fields.get(0x06, b"").decode(),
                organization_affiliation=(fields.get(0x07, b"") + fields.get(0x08, b"")).decode(),
            )
        except (TlvError, KeyError, ValueError) as exc:
            raise BadResponse(f"malformed printed information: {exc}") from exc
