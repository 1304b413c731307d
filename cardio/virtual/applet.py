"""The virtual card as a pure function of bytes: ``VirtualCard.process(apdu) -> response``.

This is the card "OS": it parses APDUs, selects applications, joins chained commands (CLA bit
0x10), splits long answers into 61xx + GET RESPONSE, and clears the volatile state on power
events. Application logic is in ``piv_applet`` and ``ndef_applet``; persistence in ``state``.

PIV is the default-selected application after power-on, as on PIV-only cards: OpenSC reads the
discovery object before it selects anything. A SELECT of an unknown AID answers 6A82 and leaves
the current selection alone (JavaCard behaviour), so OpenSC's probing for other card types
(CoolKey, MUSCLE, SmartCard-HSM, ...) does not disturb the PIV state.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from .iso import SW, CardError, Command, parse_command
from .ndef_applet import NdefApplet
from .piv_applet import PivApplet
from .state import CardState

log = logging.getLogger(__name__)

INS_SELECT = 0xA4
INS_GET_RESPONSE = 0xC0
P1_SELECT_BY_NAME = 0x04
MAX_CHAIN = 64 * 1024


class CardPulled(Exception):
    """The card has been pulled (``fail_after`` reached): the bridge must drop the link."""


class Applet(Protocol):
    aid: bytes

    def matches(self, aid: bytes) -> bool: ...

    def select(self) -> bytes: ...

    def reset(self) -> None: ...

    def process(self, cmd: Command) -> bytes: ...


class VirtualCard:
    """A PIV + NDEF card. ``state_file`` (if given) is rewritten after every state change.

    ``fail_after=N``: the card answers N command APDUs; the next one raises ``CardPulled``
    (unanswered), so a test knows exactly which exchange hits the pulled card.
    """

    def __init__(
        self,
        state: CardState,
        *,
        state_file: Path | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.state = state
        self.state_file = state_file
        self.fail_after = fail_after
        self.commands = 0
        self.piv = PivApplet(state, self._persist)
        self.ndef = NdefApplet(state, self._persist)
        self._applets: tuple[Applet, ...] = (self.piv, self.ndef)
        self.selected: Applet | None = None
        self._pending = b""
        self._chain: tuple[int, int, int, bytes] | None = None
        self.power_on()

    @classmethod
    def from_file(cls, state_file: Path, *, fail_after: int | None = None) -> VirtualCard:
        """The card stored in ``state_file``, created blank if the file does not exist."""
        state = CardState.load_or_blank(state_file)
        return cls(state, state_file=state_file, fail_after=fail_after)

    def _persist(self) -> None:
        if self.state_file is not None:
            self.state.save(self.state_file)

    # -- power events ---------------------------------------------------------------------

    def power_on(self) -> None:
        for applet in self._applets:
            applet.reset()
        self.selected = self.piv
        self._pending = b""
        self._chain = None

    power_off = power_on
    reset = power_on

    # -- APDUs ----------------------------------------------------------------------------

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU with response data + SW1 SW2."""
        self.commands += 1
        if self.fail_after is not None and self.commands > self.fail_after:
            raise CardPulled(f"card pulled after {self.fail_after} APDUs")
        try:
            cmd = parse_command(apdu)
            if cmd.cla & ~0x10:
                raise CardError(SW.CLA_NOT_SUPPORTED)
            if cmd.ins == INS_GET_RESPONSE and not cmd.chained:
                return self._get_response(cmd)
            self._pending = b""
            whole = self._join_chain(cmd)
            if whole is None:
                return SW.OK.to_bytes(2, "big")
            data = self._dispatch(whole)
        except CardError as exc:
            log.debug("INS %02X -> %04X", apdu[1] if len(apdu) > 1 else 0, exc.sw)
            return exc.sw.to_bytes(2, "big")
        except Exception:
            # A bug in the emulator must not kill the bridge: a real card answers 6F00.
            log.exception("internal error on INS %02X", apdu[1])
            return (0x6F00).to_bytes(2, "big")
        return self._respond(data, cmd.max_response)

    def _join_chain(self, cmd: Command) -> Command | None:
        chain, self._chain = self._chain, None
        if chain is not None and chain[:3] != (cmd.ins, cmd.p1, cmd.p2):
            # A host that gave up on a chain must not stay stuck: start over with this one.
            log.debug("chain for INS %02X abandoned", chain[0])
            chain = None
        buffered = chain[3] if chain else b""
        if len(buffered) + len(cmd.data) > MAX_CHAIN:
            raise CardError(SW.NOT_ENOUGH_MEMORY)
        if cmd.chained:
            self._chain = (cmd.ins, cmd.p1, cmd.p2, buffered + cmd.data)
            return None
        return cmd.with_data(buffered + cmd.data) if buffered else cmd

    def _dispatch(self, cmd: Command) -> bytes:
        if cmd.ins == INS_SELECT and cmd.p1 == P1_SELECT_BY_NAME:
            return self._select(cmd)
        if self.selected is None:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        return self.selected.process(cmd)

    def _select(self, cmd: Command) -> bytes:
        if cmd.p2 not in (0x00, 0x04, 0x0C):
            raise CardError(SW.INCORRECT_P1P2)
        for applet in self._applets:
            if applet.matches(cmd.data):
                if applet is not self.selected and self.selected is not None:
                    self.selected.reset()
                self.selected = applet
                answer = applet.select()
                return b"" if cmd.p2 == 0x0C else answer
        raise CardError(SW.FILE_NOT_FOUND)

    def _respond(self, data: bytes, limit: int) -> bytes:
        if len(data) > limit:
            data, self._pending = data[:limit], data[limit:]
            # 61 00: 256 bytes or more still waiting (ISO 7816-4 short SW2 cannot say more).
            return data + bytes([0x61, len(self._pending) if len(self._pending) < 256 else 0])
        return data + SW.OK.to_bytes(2, "big")

    def _get_response(self, cmd: Command) -> bytes:
        if (cmd.p1, cmd.p2) != (0, 0):
            raise CardError(SW.INCORRECT_P1P2)
        if not self._pending:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        data, self._pending = self._pending, b""
        return self._respond(data, cmd.max_response)
