"""ISO 7816-4 command APDUs and the request/response loop every card session runs on.

``Apdu`` encodes one command in short or extended form:

- short: ``CLA INS P1 P2 [Lc data] [Le]``, Lc 1..255, Le one byte (``00`` = 256);
- extended: ``CLA INS P1 P2 [00 Lc1 Lc2 data] [Le1 Le2]``; with no data, Le is three bytes
  ``00 Le1 Le2``; ``0000`` = 65536. As with yubikit's extended formatter, every command that
  carries data or an Le is sent in extended form when the connection is extended; a command
  with neither (ISO case 1) is the four header bytes in both forms.

``le`` follows the wire: ``None`` = no Le field, ``0`` = "as much as you have" (256 short,
65536 extended), otherwise the exact count expected.

``ApduConnection`` sends commands over a ``Transport``:

- command chaining (ISO 7816-4 §5.1.1.1): in short mode, data longer than 255 bytes goes out in
  255-byte frames with ``CLA | 0x10`` on all but the last; only the last frame carries Le;
- ``61xx``: the response continues; fetch it with GET RESPONSE ``00 C0 00 00 xx`` and
  concatenate;
- ``6Cxx``: wrong Le; resend the same frame with Le = ``xx``;
- any other status word but ``9000`` raises the typed error from ``cardio.errors``.

It counts what goes over the wire: ``apdus_sent`` (every frame, including chaining
continuation frames, GET RESPONSE and 6Cxx resends) and ``commands_sent`` (one per logical
command).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import error_for_sw
from .transport import Transport

SW_OK = 0x9000
SHORT_MAX_DATA = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_DATA = 65535
EXTENDED_MAX_LE = 65536
CLA_CHAINING = 0x10
INS_GET_RESPONSE = 0xC0


@dataclass(frozen=True)
class Apdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"{name} out of range: {value}")
        if self.le is not None and not 0 <= self.le <= EXTENDED_MAX_LE:
            raise ValueError(f"Le out of range: {self.le}")

    @property
    def header(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def encode(self, extended: bool = False) -> bytes:
        if extended:
            return self._encode_extended()
        return self._encode_short()

    def _encode_short(self) -> bytes:
        if len(self.data) > SHORT_MAX_DATA:
            raise ValueError(f"{len(self.data)} data bytes do not fit a short APDU (chain it)")
        if self.le is not None and self.le > SHORT_MAX_LE:
            raise ValueError(f"Le {self.le} does not fit a short APDU")
        out = self.header
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le & 0xFF,))
        return out

    def _encode_extended(self) -> bytes:
        if len(self.data) > EXTENDED_MAX_DATA:
            raise ValueError(f"{len(self.data)} data bytes do not fit an extended APDU")
        out = self.header
        if self.data:
            out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
        if self.le is not None:
            if not self.data:
                out += b"\x00"
            out += (self.le & 0xFFFF).to_bytes(2, "big")
        return out

    def chain(self, extended: bool = False) -> list[Apdu]:
        """The frames that carry this command: one, or a short-mode command chain."""
        if extended or len(self.data) <= SHORT_MAX_DATA:
            return [self]
        frames: list[Apdu] = []
        data = self.data
        while len(data) > SHORT_MAX_DATA:
            chunk, data = data[:SHORT_MAX_DATA], data[SHORT_MAX_DATA:]
            frames.append(replace(self, cla=self.cla | CLA_CHAINING, data=chunk, le=None))
        frames.append(replace(self, data=data))
        return frames


class ApduConnection:
    """Sends commands over a ``Transport`` in short (with chaining) or extended form."""

    MAX_6C_RETRIES = 2

    def __init__(self, transport: Transport, extended: bool = False) -> None:
        self.transport = transport
        self.extended = extended
        self.apdus_sent = 0
        self.commands_sent = 0

    def send(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> bytes:
        """Send one command; return its complete response data or raise a typed error."""
        return self.send_apdu(Apdu(cla, ins, p1, p2, bytes(data), le))

    def send_apdu(self, apdu: Apdu) -> bytes:
        self.commands_sent += 1
        frames = apdu.chain(self.extended)
        for frame in frames[:-1]:
            _, sw = self._transmit(frame)
            if sw != SW_OK:
                raise error_for_sw(sw)
        data, sw = self._exchange(frames[-1])
        if sw != SW_OK:
            raise error_for_sw(sw)
        return data

    def _exchange(self, frame: Apdu) -> tuple[bytes, int]:
        """Send one frame, then follow 6Cxx (resend with Le) and 61xx (GET RESPONSE)."""
        data, sw = self._transmit(frame)
        collected = b""
        retries_6c = 0
        while True:
            sw1 = sw >> 8
            if sw1 == 0x6C and retries_6c < self.MAX_6C_RETRIES:
                retries_6c += 1
                frame = replace(frame, le=(sw & 0xFF) or SHORT_MAX_LE)
                data, sw = self._transmit(frame)
            elif sw1 == 0x61:
                collected += data
                retries_6c = 0
                frame = Apdu(0x00, INS_GET_RESPONSE, 0x00, 0x00, le=sw & 0xFF)
                data, sw = self._transmit(frame)
            else:
                return collected + data, sw

    def _transmit(self, frame: Apdu) -> tuple[bytes, int]:
        self.apdus_sent += 1
        # GET RESPONSE echoes the card's one-byte 61xx count: always short form.
        extended = self.extended and frame.ins != INS_GET_RESPONSE
        return self.transport.transmit(frame.encode(extended))

    def close(self) -> None:
        self.transport.close()
