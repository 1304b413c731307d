"""NFC Forum Type 4 Tag application (NDEF mapping 2.0): tap-to-verify for phones.

Two elementary files: the capability container E103 (read-only, built from the file size) and
the NDEF file E104 (2-byte NLEN + message), stored in the card state. The host selects a file
by identifier, then reads or updates it at an offset; every access is bounds-checked.
"""

from __future__ import annotations

from collections.abc import Callable

from .iso import SW, CardError, Command
from .state import NDEF_FILE_SIZE, CardState

NDEF_AID = bytes.fromhex("D2760000850101")
CC_FILE = 0xE103
NDEF_FILE = 0xE104

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_UPDATE_BINARY = 0xD6

MAX_CHUNK = 0xFF  # MLe / MLc announced in the CC: what a phone may ask for in one APDU


def capability_container() -> bytes:
    return (
        (15).to_bytes(2, "big")  # CCLEN
        + b"\x20"  # mapping version 2.0
        + MAX_CHUNK.to_bytes(2, "big")  # MLe
        + MAX_CHUNK.to_bytes(2, "big")  # MLc
        # NDEF File Control TLV: file id, max size, read access free, write access free.
        + b"\x04\x06"
        + NDEF_FILE.to_bytes(2, "big")
        + NDEF_FILE_SIZE.to_bytes(2, "big")
        + b"\x00\x00"
    )


class NdefApplet:
    aid = NDEF_AID

    def __init__(self, state: CardState, persist: Callable[[], None]) -> None:
        self._state = state
        self._persist = persist
        self.reset()

    def reset(self) -> None:
        self._file: int | None = None

    @staticmethod
    def matches(aid: bytes) -> bool:
        return aid == NDEF_AID

    def select(self) -> bytes:
        self._file = None
        return b""

    def process(self, cmd: Command) -> bytes:
        if cmd.ins == INS_SELECT:
            return self._select_file(cmd)
        if cmd.ins == INS_READ_BINARY:
            return self._read_binary(cmd)
        if cmd.ins == INS_UPDATE_BINARY:
            return self._update_binary(cmd)
        raise CardError(SW.INS_NOT_SUPPORTED)

    def _select_file(self, cmd: Command) -> bytes:
        # T4T 2.0 selects by file identifier: P1=00, P2=0C (no FCI).
        if cmd.p1 != 0x00 or cmd.p2 not in (0x00, 0x0C):
            raise CardError(SW.INCORRECT_P1P2)
        if len(cmd.data) != 2:
            raise CardError(SW.WRONG_LENGTH)
        file_id = int.from_bytes(cmd.data, "big")
        if file_id not in (CC_FILE, NDEF_FILE):
            raise CardError(SW.FILE_NOT_FOUND)
        self._file = file_id
        return b""

    def _content(self) -> bytes:
        if self._file == CC_FILE:
            return capability_container()
        if self._file == NDEF_FILE:
            return self._state.ndef.ljust(NDEF_FILE_SIZE, b"\x00")
        raise CardError(SW.COMMAND_NOT_ALLOWED)  # no current EF

    @staticmethod
    def _offset(cmd: Command) -> int:
        if cmd.p1 & 0x80:  # short EF identifier addressing: not offered by this tag
            raise CardError(SW.INCORRECT_P1P2)
        return (cmd.p1 << 8) | cmd.p2

    def _read_binary(self, cmd: Command) -> bytes:
        content = self._content()
        offset = self._offset(cmd)
        if cmd.data:
            raise CardError(SW.WRONG_LENGTH)
        if offset >= len(content):
            raise CardError(SW.WRONG_P1P2)
        return content[offset : offset + cmd.max_response]

    def _update_binary(self, cmd: Command) -> bytes:
        content = self._content()
        if self._file == CC_FILE:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        offset = self._offset(cmd)
        if not cmd.data:
            raise CardError(SW.WRONG_LENGTH)
        if offset + len(cmd.data) > len(content):
            raise CardError(SW.WRONG_P1P2 if offset >= len(content) else SW.NOT_ENOUGH_MEMORY)
        updated = content[:offset] + cmd.data + content[offset + len(cmd.data) :]
        # The file reads back zero-padded, so trailing zeros need not be stored.
        self._state.ndef = updated.rstrip(b"\x00")
        self._persist()
        return b""
