"""ISO 7816-4 command parsing and status words, as seen from the card's side.

The client side (``cardio.apdu``) builds APDUs; the card must *parse* every form a host may
send: the four short cases and the three extended ones. A length that does not add up is
answered with 6700, the way a real card's OS rejects it before any applet sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

SHORT_NE_MAX = 256
EXTENDED_NE_MAX = 65536


class SW(IntEnum):
    OK = 0x9000
    END_OF_FILE = 0x6282
    WRONG_LENGTH = 0x6700
    LAST_COMMAND_EXPECTED = 0x6883
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    CONDITIONS_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED = 0x6986
    INCORRECT_DATA = 0x6A80
    FILE_NOT_FOUND = 0x6A82
    NOT_ENOUGH_MEMORY = 0x6A84
    INCORRECT_P1P2 = 0x6A86
    REFERENCE_NOT_FOUND = 0x6A88
    WRONG_P1P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00


def retries_sw(remaining: int) -> int:
    """63Cx: verification failed, x tries left (capped at 15 as the nibble allows)."""
    return 0x63C0 | min(remaining, 0x0F)


class CardError(Exception):
    """Ends a command with a status word other than 9000 (and no response data)."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"SW {sw:04X}")
        self.sw = sw


@dataclass(frozen=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    ne: int | None = None  # None: the command carried no Le field
    extended: bool = False

    @property
    def chained(self) -> bool:
        return bool(self.cla & 0x10)

    @property
    def max_response(self) -> int:
        """How many response bytes may go in one R-APDU.

        Hosts often omit Le on commands that do return data (yubikit does for GENERAL
        AUTHENTICATE), and real cards answer anyway: treat a missing Le as "as much as the
        encoding allows" instead of refusing data.
        """
        if self.ne is not None:
            return self.ne
        return EXTENDED_NE_MAX if self.extended else SHORT_NE_MAX

    def with_data(self, data: bytes) -> Command:
        return Command(self.cla & ~0x10, self.ins, self.p1, self.p2, data, self.ne, self.extended)


def _short_ne(byte: int) -> int:
    return byte or SHORT_NE_MAX


def _extended_ne(raw: bytes) -> int:
    return int.from_bytes(raw, "big") or EXTENDED_NE_MAX


def parse_command(apdu: bytes) -> Command:
    """Parse a C-APDU (ISO 7816-3 cases 1, 2S/E, 3S/E, 4S/E); 6700 if lengths don't add up."""
    if len(apdu) < 4:
        raise CardError(SW.WRONG_LENGTH)
    cla, ins, p1, p2 = apdu[:4]
    body = apdu[4:]
    if not body:
        return Command(cla, ins, p1, p2)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, ne=_short_ne(body[0]))
    if body[0] != 0:
        lc = body[0]
        if len(body) == 1 + lc:
            return Command(cla, ins, p1, p2, body[1:])
        if len(body) == 2 + lc:
            return Command(cla, ins, p1, p2, body[1:-1], _short_ne(body[-1]))
        raise CardError(SW.WRONG_LENGTH)
    # First body byte 00 and more than one byte: extended length.
    if len(body) == 3:
        return Command(cla, ins, p1, p2, ne=_extended_ne(body[1:3]), extended=True)
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise CardError(SW.WRONG_LENGTH)
    if len(body) == 3 + lc:
        return Command(cla, ins, p1, p2, body[3:], extended=True)
    if len(body) == 5 + lc:
        return Command(cla, ins, p1, p2, body[3:-2], _extended_ne(body[-2:]), True)
    raise CardError(SW.WRONG_LENGTH)
