"""PC/SC readers through pyscard: the only module of the project that imports ``smartcard``.

It uses pyscard's thin ``smartcard.scard`` layer (the PC/SC C API one to one), so every failure
arrives as a PC/SC return code and is turned into the ``cardio.errors`` tree by
``error_for_hresult``; exceptions raised by pyscard's object layer (``EstablishContextException``,
``NoCardException``, ``CardConnectionException``, ...) map through ``map_pyscard_error``:

=================================================  ===========================================
PC/SC code                                         raised
=================================================  ===========================================
SCARD_E_NO_SERVICE 8010001D, E_SERVICE_STOPPED     ``NoPcscService`` ("start pcscd")
SCARD_E_UNKNOWN_READER, E_NO_READERS_AVAILABLE     ``ReaderNotFound``
SCARD_E_NO_SMARTCARD, W_REMOVED_CARD (connect)     ``NoCard``
W_REMOVED_CARD 80100069, W_RESET_CARD 80100068,    ``CardRemoved`` ("re-insert and retry")
E_NO_SMARTCARD, W_UNPOWERED_CARD,
E_READER_UNAVAILABLE, lost connection (in use)
anything else                                      ``PcscError(hresult)``
=================================================  ===========================================

``PcscTransport.open`` connects in SCARD_SHARE_SHARED mode and holds a PC/SC transaction until
``close()``, so no other application interleaves APDUs with ours (and a reset by another
application shows up as ``CardRemoved``). ``close()`` resets the card by default, so a verified
PIN or an authenticated management key never outlives the session. (Windows resets a card whose
transaction is idle for more than 5 s; a desk on Windows should open the transport per step.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType

from smartcard import scard
from smartcard.Exceptions import CardConnectionException, NoCardException

from .errors import (
    BadResponse,
    CardError,
    CardRemoved,
    NoCard,
    NoPcscService,
    PcscError,
    ReaderNotFound,
)

_NO_SERVICE = {0x8010001D, 0x8010001E}  # SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED
_NO_READER = {0x80100009, 0x8010002E}  # SCARD_E_UNKNOWN_READER, SCARD_E_NO_READERS_AVAILABLE
_NO_CARD = {0x8010000C, 0x80100069}  # SCARD_E_NO_SMARTCARD, SCARD_W_REMOVED_CARD
_CARD_GONE = {
    0x80100069,  # SCARD_W_REMOVED_CARD
    0x80100068,  # SCARD_W_RESET_CARD
    0x8010000C,  # SCARD_E_NO_SMARTCARD
    0x80100067,  # SCARD_W_UNPOWERED_CARD
    0x80100017,  # SCARD_E_READER_UNAVAILABLE (reader unplugged)
}
_READER_UNAVAILABLE = 0x80100017


def error_for_hresult(hresult: int, what: str, *, connected: bool = False) -> CardError:
    """The ``cardio`` error for a PC/SC return code; ``connected``: during a card session."""
    code = hresult & 0xFFFFFFFF
    if code in _NO_SERVICE:
        return NoPcscService()
    if connected and code in _CARD_GONE:
        return CardRemoved()
    if code in _NO_READER or code == _READER_UNAVAILABLE:
        return ReaderNotFound(f"{what}: reader not found or unavailable")
    if code in _NO_CARD:
        return NoCard(f"{what}: no card in the reader")
    if code == 0x80100068:  # reset between connect and first use
        return CardRemoved()
    return PcscError(f"{what}: {scard.SCardGetErrorMessage(hresult)}", code)


def map_pyscard_error(exc: Exception, *, connected: bool = False) -> CardError:
    """Turn an exception from pyscard's object layer into the ``cardio`` error tree."""
    hresult = getattr(exc, "hresult", -1)
    if isinstance(hresult, int) and hresult not in (-1, 0):
        return error_for_hresult(hresult, str(exc), connected=connected)
    if isinstance(exc, NoCardException):
        return CardRemoved() if connected else NoCard(str(exc) or "no card in the reader")
    if isinstance(exc, CardConnectionException) and connected:
        return CardRemoved()
    return CardError(str(exc) or type(exc).__name__)


def _check(hresult: int, what: str, *, connected: bool = False) -> None:
    if hresult != scard.SCARD_S_SUCCESS:
        raise error_for_hresult(hresult, what, connected=connected)


@dataclass(frozen=True)
class ReaderInfo:
    name: str
    card_present: bool
    atr: str | None  # upper-case hex, None when no card


class _Context:
    """A PC/SC context, released on exit."""

    def __init__(self) -> None:
        hresult, handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        _check(hresult, "establish PC/SC context")
        self.handle = handle

    def readers(self) -> list[str]:
        hresult, names = scard.SCardListReaders(self.handle, [])
        if hresult & 0xFFFFFFFF == 0x8010002E:  # SCARD_E_NO_READERS_AVAILABLE
            return []
        _check(hresult, "list readers")
        return list(names)

    def states(self, names: list[str], timeout_ms: int = 0) -> list[ReaderInfo]:
        if not names:
            return []
        hresult, states = scard.SCardGetStatusChange(
            self.handle, timeout_ms, [(name, scard.SCARD_STATE_UNAWARE) for name in names]
        )
        _check(hresult, "get reader status")
        infos = []
        for name, event, atr in states:
            present = bool(event & scard.SCARD_STATE_PRESENT) and not (
                event & scard.SCARD_STATE_MUTE
            )
            infos.append(ReaderInfo(name, present, bytes(atr).hex().upper() if present else None))
        return infos

    def release(self) -> None:
        scard.SCardReleaseContext(self.handle)

    def __enter__(self) -> _Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def list_readers() -> list[ReaderInfo]:
    """All PC/SC readers with card presence and ATR. Raises ``NoPcscService``."""
    with _Context() as context:
        return context.states(context.readers())


def _match_reader(names: list[str], wanted: str) -> str:
    if wanted in names:
        return wanted
    matches = [name for name in names if wanted.lower() in name.lower()]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(repr(n) for n in names) or "none"
    if not matches:
        raise ReaderNotFound(f"no reader matches {wanted!r} (readers: {listing})")
    raise ReaderNotFound(f"{wanted!r} matches several readers: {', '.join(map(repr, matches))}")


def wait_for_card(reader_name_or_substring: str, timeout: float) -> ReaderInfo:
    """Block until the reader holds a card (polling PC/SC, not sleeping blindly)."""
    deadline = time.monotonic() + timeout
    with _Context() as context:
        name = _match_reader(context.readers(), reader_name_or_substring)
        while True:
            info = context.states([name])[0]
            if info.card_present:
                return info
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoCard(f"no card in {name!r} after {timeout:.1f} s")
            hresult, _ = scard.SCardGetStatusChange(
                context.handle,
                int(min(remaining, 1.0) * 1000),
                [(name, scard.SCARD_STATE_EMPTY)],
            )
            if hresult & 0xFFFFFFFF != 0x8010000A:  # SCARD_E_TIMEOUT is expected
                _check(hresult, "wait for card")


def extended_length_supported(atr: bytes) -> bool:
    """Whether the ATR's historical bytes announce extended Lc/Le (ISO 7816-4 §12.1.1.9).

    The card capabilities compact-TLV object (tag 7, i.e. ``73`` for three bytes) carries in its
    third byte bit b7 (``0x40``) "extended Lc and Le fields". A card that does not say so gets
    short APDUs with command chaining, which every PIV card must accept.
    """
    for tag, value in _compact_tlvs(historical_bytes(atr)):
        if tag == 0x7 and len(value) >= 3:
            return bool(value[2] & 0x40)
    return False


def historical_bytes(atr: bytes) -> bytes:
    """The historical bytes T1..TK of an ATR (ISO 7816-3 §8.2)."""
    if len(atr) < 2:
        return b""
    t0 = atr[1]
    count = t0 & 0x0F
    offset = 2
    indicator = t0 >> 4
    while True:
        # TAi, TBi, TCi present per bits 1..3 of the indicator; TDi per bit 4.
        offset += bin(indicator & 0x7).count("1")
        if not indicator & 0x8:
            break
        if offset >= len(atr):
            return b""
        td = atr[offset]
        offset += 1
        indicator = td >> 4
    return atr[offset : offset + count]


def _compact_tlvs(historical: bytes) -> list[tuple[int, bytes]]:
    if not historical:
        return []
    category = historical[0]
    if category == 0x80:
        body = historical[1:]
    elif category == 0x00 and len(historical) >= 4:
        body = historical[1:-3]  # last three bytes are the status indicator
    else:
        return []
    items: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(body):
        tag, length = body[offset] >> 4, body[offset] & 0x0F
        items.append((tag, body[offset + 1 : offset + 1 + length]))
        offset += 1 + length
    return items


class PcscTransport:
    """A connection to the card in one PC/SC reader (a ``cardio.transport.Transport``)."""

    def __init__(
        self, context: _Context, card: int, protocol: int, reader: str, atr: bytes, disposition: int
    ) -> None:
        self._context = context
        self._card = card
        self._protocol = protocol
        self._disposition = disposition
        self._open = True
        self.reader = reader
        self.atr = atr

    @classmethod
    def open(cls, reader_name_or_substring: str, *, reset_on_close: bool = True) -> PcscTransport:
        """Connect to the card in the reader named exactly, or the one whose name contains the
        string (case-insensitive). Raises NoPcscService, ReaderNotFound, NoCard."""
        context = _Context()
        try:
            name = _match_reader(context.readers(), reader_name_or_substring)
            hresult, card, protocol = scard.SCardConnect(
                context.handle,
                name,
                scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
            _check(hresult, f"connect to {name!r}")
            try:
                _check(scard.SCardBeginTransaction(card), "begin transaction", connected=True)
                hresult, _, _, _, atr = scard.SCardStatus(card)
                _check(hresult, "read ATR", connected=True)
            except BaseException:
                scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
                raise
        except BaseException:
            context.release()
            raise
        disposition = scard.SCARD_RESET_CARD if reset_on_close else scard.SCARD_LEAVE_CARD
        return cls(context, card, protocol, name, bytes(atr), disposition)

    @property
    def extended_length(self) -> bool:
        """Whether to use extended APDUs with this card (from the ATR)."""
        return extended_length_supported(self.atr)

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        if not self._open:
            raise CardError("transport is closed")
        hresult, response = scard.SCardTransmit(self._card, self._protocol, list(apdu))
        _check(hresult, "transmit", connected=True)
        if len(response) < 2:
            raise BadResponse(f"response of {len(response)} bytes has no status word")
        raw = bytes(response)
        return raw[:-2], int.from_bytes(raw[-2:], "big")

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            scard.SCardEndTransaction(self._card, scard.SCARD_LEAVE_CARD)
            scard.SCardDisconnect(self._card, self._disposition)
        finally:
            self._context.release()

    def __enter__(self) -> PcscTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
