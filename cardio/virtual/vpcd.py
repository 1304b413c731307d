"""Bridge between a ``VirtualCard`` and pcscd's vpcd reader driver (vsmartcard).

pcscd + vpcd *listen* on 127.0.0.1:35963 (reader ``Virtual PCD 00 00``) and 35964 (``... 00
01``); the card *connects*. Connected = card inserted, socket closed = card pulled. Every frame
in both directions is a 2-byte big-endian length and a payload. One-byte payloads are control
(00 power off, 01 power on, 02 reset, 04 get ATR; only 04 is answered, with the ATR); longer ones
are command APDUs, each answered by exactly one frame.

Latency: Debian's vpcd writes the length and the payload in two ``send`` calls. With Nagle and
delayed ACKs that costs ~45 ms per APDU; TCP_NODELAY plus TCP_QUICKACK re-armed before every
``recv`` (Linux resets it after each ACK) brings it to well under a millisecond.

ATR: ``3B FE 13 00 00 81 31 FE 15`` + historical bytes ``80 73 C0 21 C0 58 'idsvcPIV'`` + TCK.
 * T0 = FE: TA1..TD1 present, 14 historical bytes. yubikit looks at ``atr[1] & 0xF0 == 0xF0``
   to decide "USB" and then uses extended APDUs, so the extended path is exercised end to end.
 * T=1 only (TD1 81, TD2 31, IFSC FE), as YubiKeys and most contact PIV cards.
 * Historical bytes in ISO 7816-4 compact-TLV (category 80): card capabilities 73 C0 21 C0 =
   selection by full/partial DF name, command chaining and extended Lc/Le supported (the bytes
   a YubiKey 5 NFC sends); 58 = card issuer's data "idsvcPIV". No "Yubikey" string, so OpenSC
   treats it as a generic PIV card rather than enabling YubiKey-specific quirks.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from functools import reduce

from .applet import CardPulled, VirtualCard

log = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_BASE_PORT = 35963


def _with_tck(body: bytes) -> bytes:
    return b"\x3b" + body + bytes([reduce(lambda a, b: a ^ b, body, 0)])


ATR = _with_tck(bytes.fromhex("FE1300008131FE158073C021C058") + b"idsvcPIV")

CTRL_POWER_OFF = 0x00
CTRL_POWER_ON = 0x01
CTRL_RESET = 0x02
CTRL_GET_ATR = 0x04


def vpcd_port(reader: int) -> int:
    if reader not in (0, 1):
        raise ValueError("vpcd declares readers 0 and 1 only")
    return VPCD_BASE_PORT + reader


class LinkClosed(Exception):
    """pcscd closed the connection (stopped or restarted)."""


class VpcdBridge:
    """One card in one vpcd reader. ``serve()`` until the card is pulled or pcscd leaves."""

    def __init__(self, card: VirtualCard, *, reader: int = 0, host: str = VPCD_HOST) -> None:
        self.card = card
        self.reader = reader
        self.address = (host, vpcd_port(reader))
        self._sock: socket.socket | None = None

    def connect(self, timeout: float = 10.0) -> None:
        """Connect, retrying while pcscd is not (yet) listening; ``ConnectionError`` after that."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection(self.address, timeout=2.0)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise ConnectionError(
                        f"no vpcd reader listening on {self.address[0]}:{self.address[1]}: is "
                        "pcscd running with vsmartcard-vpcd installed?"
                    ) from exc
                time.sleep(0.1)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._quickack()
        log.info("card inserted in vpcd reader %d", self.reader)

    def pull(self) -> None:
        """Pull the card from another thread: ``serve()`` sees the link close and returns."""
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # serve() closed it in the meantime
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _quickack(self) -> None:
        quickack = getattr(socket, "TCP_QUICKACK", None)  # Linux only
        if quickack is not None and self._sock is not None:
            self._sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)

    def _recv_exact(self, size: int) -> bytes:
        assert self._sock is not None
        buf = bytearray()
        while len(buf) < size:
            self._quickack()
            chunk = self._sock.recv(size - len(buf))
            if not chunk:
                raise LinkClosed
            buf += chunk
        return bytes(buf)

    def _send(self, payload: bytes) -> None:
        assert self._sock is not None
        # One send for length + payload: two would bring back the delayed-ACK stall.
        self._sock.sendall(len(payload).to_bytes(2, "big") + payload)

    def serve(self) -> bool:
        """Answer frames. True: the card was pulled (``fail_after``); False: pcscd went away."""
        try:
            while True:
                size = int.from_bytes(self._recv_exact(2), "big")
                payload = self._recv_exact(size)
                if size == 1:
                    self._control(payload[0])
                    continue
                self._send(self.card.process(payload))
        except CardPulled:
            log.info("card pulled from vpcd reader %d", self.reader)
            return True
        except (LinkClosed, ConnectionError):
            log.info("pcscd closed vpcd reader %d", self.reader)
            return False
        finally:
            self.close()

    def _control(self, code: int) -> None:
        if code == CTRL_GET_ATR:
            self._send(ATR)
        elif code == CTRL_POWER_OFF:
            self.card.power_off()
        elif code == CTRL_POWER_ON:
            self.card.power_on()
        elif code == CTRL_RESET:
            self.card.reset()
        else:
            log.debug("unknown vpcd control byte %02X ignored", code)


def run(card: VirtualCard, reader: int, *, connect_timeout: float = 10.0) -> None:
    """Keep the card in the reader until it is pulled; reinsert it if pcscd restarts."""
    bridge = VpcdBridge(card, reader=reader)
    while True:
        bridge.connect(connect_timeout)
        if bridge.serve():
            return
        card.power_off()
        time.sleep(0.1)
