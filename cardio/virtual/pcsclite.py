"""Just enough of libpcsclite (via ctypes) to ask pcscd "are you up, is a card in reader X?".

Process control (``bench``) must wait on PC/SC without importing pyscard: only
``cardio.pcsc`` may use pyscard, and the bench must work where nothing else of cardio is loaded.
Three calls suffice: SCardEstablishContext, SCardListReaders, SCardGetStatusChange with a zero
timeout and an UNAWARE current state (which returns the present state at once). The upper 16
bits of the returned dwEventState count the insertions and removals pcscd's reader thread has
seen (as on Windows); ``bench.wait_card_removed`` depends on that count.

Types follow pcsclite on Linux: LONG is ``long``, DWORD is ``unsigned long`` (64 bits on
x86_64) and SCARD_READERSTATE is not packed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from types import TracebackType

SCARD_S_SUCCESS = 0
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_E_TIMEOUT = 0x8010000A
SCARD_SCOPE_SYSTEM = 2
SCARD_STATE_UNAWARE = 0x0000
SCARD_STATE_EMPTY = 0x0010
SCARD_STATE_PRESENT = 0x0020
MAX_ATR_SIZE = 33

LIBRARY = "libpcsclite.so.1"


class PcscError(Exception):
    def __init__(self, call: str, code: int) -> None:
        super().__init__(f"{call} failed: 0x{code & 0xFFFFFFFF:08X}")
        self.code = code & 0xFFFFFFFF


@dataclass(frozen=True)
class ReaderState:
    present: bool
    events: int  # insertions + removals seen by pcscd's reader thread (mod 65536)


class _ReaderState(ctypes.Structure):
    _fields_ = [
        ("szReader", ctypes.c_char_p),
        ("pvUserData", ctypes.c_void_p),
        ("dwCurrentState", ctypes.c_ulong),
        ("dwEventState", ctypes.c_ulong),
        ("cbAtr", ctypes.c_ulong),
        ("rgbAtr", ctypes.c_ubyte * MAX_ATR_SIZE),
    ]


def load_library() -> ctypes.CDLL:
    """``OSError`` if libpcsclite is not installed (package libpcsclite1)."""
    lib = ctypes.CDLL(ctypes.util.find_library("pcsclite") or LIBRARY)
    for call in (
        "SCardEstablishContext",
        "SCardReleaseContext",
        "SCardListReaders",
        "SCardGetStatusChange",
    ):
        getattr(lib, call).restype = ctypes.c_long
    return lib


class PcscContext:
    """A PC/SC context; ``PcscError`` (code SCARD_E_NO_SERVICE) when pcscd is not running."""

    def __init__(self, lib: ctypes.CDLL | None = None) -> None:
        self._lib = lib or load_library()
        self._handle = ctypes.c_long(0)
        rc = self._lib.SCardEstablishContext(
            ctypes.c_ulong(SCARD_SCOPE_SYSTEM), None, None, ctypes.byref(self._handle)
        )
        if rc != SCARD_S_SUCCESS:
            raise PcscError("SCardEstablishContext", rc)

    def close(self) -> None:
        if self._handle.value:
            self._lib.SCardReleaseContext(self._handle)
            self._handle = ctypes.c_long(0)

    def __enter__(self) -> PcscContext:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def readers(self) -> list[str]:
        size = ctypes.c_ulong(0)
        rc = self._lib.SCardListReaders(self._handle, None, None, ctypes.byref(size))
        if rc & 0xFFFFFFFF == SCARD_E_NO_READERS_AVAILABLE:
            return []
        if rc != SCARD_S_SUCCESS:
            raise PcscError("SCardListReaders", rc)
        buf = ctypes.create_string_buffer(size.value)
        rc = self._lib.SCardListReaders(self._handle, None, buf, ctypes.byref(size))
        if rc & 0xFFFFFFFF == SCARD_E_NO_READERS_AVAILABLE:
            return []
        if rc != SCARD_S_SUCCESS:
            raise PcscError("SCardListReaders", rc)
        return [name.decode() for name in buf.raw[: size.value].split(b"\0") if name]

    def reader_state(self, reader: str) -> ReaderState:
        state = _ReaderState()
        state.szReader = reader.encode()
        state.dwCurrentState = SCARD_STATE_UNAWARE
        rc = self._lib.SCardGetStatusChange(
            self._handle, ctypes.c_ulong(0), ctypes.byref(state), ctypes.c_ulong(1)
        )
        if rc != SCARD_S_SUCCESS:  # SCARD_E_TIMEOUT too: an UNAWARE state answers at once
            raise PcscError("SCardGetStatusChange", rc)
        return ReaderState(
            present=bool(state.dwEventState & SCARD_STATE_PRESENT),
            events=(state.dwEventState >> 16) & 0xFFFF,
        )

    def card_present(self, reader: str) -> bool:
        return self.reader_state(reader).present
