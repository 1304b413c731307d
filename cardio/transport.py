"""The byte-level seam between the card protocols and whatever carries the bytes.

``Transport`` is all a session needs: send one command APDU, get back the response data and
the status word. ``cardio.pcsc.PcscTransport`` is the real one (a PC/SC reader);
``ScriptedTransport`` replays a recorded exchange for unit tests and fails loudly the moment
the code under test sends anything other than what was recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Transport(Protocol):
    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return (response data, SW1SW2)."""
        ...

    def close(self) -> None: ...


class ScriptMismatch(AssertionError):
    """The code under test deviated from the recorded exchange."""


def _unhex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


class ScriptedTransport:
    """Replays ``(command hex, response hex)`` pairs; the response hex ends with SW1 SW2.

    Whitespace inside the hex strings is ignored, so scripts can be laid out by field.
    A command that differs from the next recorded one, or any command after the script is used
    up, raises ``ScriptMismatch`` (and keeps raising: the transport is then poisoned, so a
    swallowed mismatch cannot make a test pass).
    """

    def __init__(self, exchanges: Iterable[tuple[str, str]]) -> None:
        self._script = [(_unhex(cmd), _unhex(rsp)) for cmd, rsp in exchanges]
        for index, (_, rsp) in enumerate(self._script):
            if len(rsp) < 2:
                raise ValueError(f"exchange {index}: response needs at least SW1 SW2")
        self._position = 0
        self._failure: ScriptMismatch | None = None
        self.sent: list[bytes] = []
        self.closed = False

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        if self._failure is not None:
            raise self._failure
        if self.closed:
            self._fail(f"transmit after close: {apdu.hex().upper()}")
        self.sent.append(bytes(apdu))
        if self._position >= len(self._script):
            self._fail(
                f"unexpected command #{self._position} after the script ended: {apdu.hex().upper()}"
            )
        expected, response = self._script[self._position]
        if apdu != expected:
            self._fail(
                f"command #{self._position} differs from the script\n"
                f"  expected {expected.hex().upper()}\n"
                f"  got      {apdu.hex().upper()}"
            )
        self._position += 1
        return response[:-2], int.from_bytes(response[-2:], "big")

    def _fail(self, message: str) -> None:
        self._failure = ScriptMismatch(message)
        raise self._failure

    @property
    def remaining(self) -> int:
        return len(self._script) - self._position

    def assert_done(self) -> None:
        """Raise unless every recorded exchange was used and nothing went wrong."""
        if self._failure is not None:
            raise self._failure
        if self.remaining:
            nxt = self._script[self._position][0].hex().upper()
            raise ScriptMismatch(f"{self.remaining} recorded exchange(s) unused; next: {nxt}")

    def close(self) -> None:
        self.closed = True
