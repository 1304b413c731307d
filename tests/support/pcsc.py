"""pytest fixtures for the card bench: pcscd + vpcd + virtual PIV cards.

Register with ``pytest_plugins = ["tests.support.pcsc"]``. The ``pcscd`` fixture FAILS (never
skips) when pcscd or the vpcd driver is missing: a skipped card bench would hide that the
PC/SC path was never exercised. Waiting is done by polling PC/SC (``cardio.virtual.bench``,
via ctypes on libpcsclite, since cardio.virtual may not import pyscard).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from smartcard.CardConnection import CardConnection
from smartcard.System import readers

from cardio.tlv import Tlv
from cardio.virtual import VirtualCard, bench
from cardio.virtual.attestation import AttestationCa
from cardio.virtual.bench import CardProcess, PcscdHandle
from cardio.virtual.pcsclite import ReaderState

CARD_TIMEOUT = 5.0


@pytest.fixture(scope="session")
def pcscd() -> Iterator[PcscdHandle]:
    """pcscd with the two vpcd readers; started (and later stopped) only if none was running.

    The session holds the machine-wide bench lock: a concurrent test session waits for it
    rather than sharing readers (and pcscd's lifetime) with this one.
    """
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(bench.bench_lock())
            handle = bench.ensure_pcscd()
        except bench.BenchError as exc:
            pytest.fail(f"card bench unavailable: {exc}", pytrace=False)
        yield handle
        bench.stop_pcscd(handle)


@dataclass
class VirtualCardHandle:
    process: CardProcess
    stopped: bool = field(default=False)
    inserted: ReaderState | None = None  # what pcscd showed once it saw the card

    @property
    def reader(self) -> int:
        return self.process.reader

    @property
    def reader_name(self) -> str:
        return self.process.reader_name

    @property
    def state_file(self) -> Path:
        return self.process.state_file

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.alive()

    def pidfile_exists(self) -> bool:
        return self.process.pidfile.exists()

    def stop(self, wait: bool = True) -> None:
        """Pull the card and (``wait``) wait until pcscd has seen it go (``wait_removed``)."""
        if not self.stopped:
            bench.stop_card(self.process)
            self.stopped = True
        if wait:
            self.wait_removed()

    def wait_removed(self) -> None:
        """Wait until pcscd's reader thread has seen this card go, so that a card inserted next
        is reported (``bench.wait_card_removed``: the reader may look empty sooner)."""
        if self.inserted is None:
            bench.wait_card_present(self.reader_name, present=False, timeout=CARD_TIMEOUT)
        else:
            bench.wait_card_removed(self.reader_name, self.inserted, timeout=CARD_TIMEOUT)

    def wait_pulled(self, timeout: float = CARD_TIMEOUT) -> None:
        """After ``fail_after``: wait for the card process to leave and the reader to empty."""
        if self.process.process is not None:
            self.process.process.wait(timeout)
        self.stop()


VirtualCardFactory = Callable[..., VirtualCardHandle]


@pytest.fixture(scope="session")
def attestation_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test maker CA of the bench's cards (``ca.pem``): made once, before any card process
    could race to make it, so every card's ATTEST chains to this one."""
    directory = tmp_path_factory.mktemp("attestation-ca")
    AttestationCa.load_or_create(directory)
    return directory


@pytest.fixture
def virtual_card(
    pcscd: PcscdHandle, tmp_path: Path, attestation_ca: Path
) -> Iterator[VirtualCardFactory]:
    """Factory: ``virtual_card(reader=0, state_file=None, fail_after=None) -> handle``.

    The card is present in PC/SC when the factory returns. A ``state_file`` that does not exist
    yet becomes a blank card, given an attestation key by ``attestation_ca``; reusing one
    "reinserts" the same card. All cards are pulled on teardown, and teardown waits until
    pcscd has seen them go.
    """
    handles: list[VirtualCardHandle] = []

    def start(
        reader: int = 0, state_file: Path | None = None, fail_after: int | None = None
    ) -> VirtualCardHandle:
        state = Path(state_file) if state_file is not None else tmp_path / f"card{reader}.json"
        name = bench.reader_name(reader)
        # One card per reader: an earlier one is pulled first, and pcscd's reader thread must
        # have seen it go, or it may miss this one (``bench.wait_card_removed``).
        for earlier in handles:
            if earlier.reader == reader:
                earlier.stop()
        bench.wait_card_present(name, present=False, timeout=CARD_TIMEOUT)
        handle = VirtualCardHandle(
            bench.start_card(reader, state, fail_after=fail_after, attestation_ca=attestation_ca)
        )
        handles.append(handle)
        try:
            handle.inserted = bench.wait_card_present(name, present=True, timeout=CARD_TIMEOUT)
        except TimeoutError as exc:
            log = bench.logfile_for(handle.state_file)
            output = log.read_text(errors="replace") if log.exists() else ""
            handle.stop()
            pytest.fail(f"{exc}\ncard log:\n{output}", pytrace=False)
        return handle

    yield start
    # Stop every process first: a failed wait must not leave a later card running.
    for handle in handles:
        handle.stop(wait=False)
    for handle in handles:
        handle.wait_removed()


# -- APDU helpers shared by the virtual-card tests (in-process and through pcscd) -----------

Transmit = Callable[[bytes], tuple[bytes, int]]

DEFAULT_MGMT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")
PIV_AID = bytes.fromhex("A000000308000010000100")


def apdu(
    cla: int,
    ins: int,
    p1: int,
    p2: int,
    data: bytes = b"",
    le: int | None = None,
    *,
    extended: bool = False,
) -> bytes:
    """Encode a C-APDU (short unless ``extended``); ``le=0`` means "all" (256 / 65536)."""
    header = bytes([cla, ins, p1, p2])
    if extended:
        body = (b"\x00" + len(data).to_bytes(2, "big") + data) if data else b""
        if le is not None:
            body += (b"" if data else b"\x00") + (le % 65536).to_bytes(2, "big")
        return header + body
    body = (bytes([len(data)]) + data) if data else b""
    if le is not None:
        body += bytes([le % 256])
    return header + body


def card_transmit(card: VirtualCard) -> Transmit:
    """``Transmit`` over an in-process ``VirtualCard``."""

    def transmit(command: bytes) -> tuple[bytes, int]:
        response = card.process(command)
        return response[:-2], int.from_bytes(response[-2:], "big")

    return transmit


def send(transmit: Transmit, command: bytes) -> tuple[bytes, int]:
    """Send and follow 61xx with GET RESPONSE, as a host stack does."""
    data, sw = transmit(command)
    while sw >> 8 == 0x61:
        more, sw = transmit(apdu(0, 0xC0, 0, 0, le=sw & 0xFF))
        data += more
    return data, sw


def send_chained(
    transmit: Transmit, ins: int, p1: int, p2: int, data: bytes, chunk: int = 255
) -> tuple[bytes, int]:
    """Short APDUs with command chaining (CLA 10) for data longer than ``chunk``."""
    while len(data) > chunk:
        _, sw = transmit(apdu(0x10, ins, p1, p2, data[:chunk]))
        if sw != 0x9000:
            return b"", sw
        data = data[chunk:]
    return send(transmit, apdu(0, ins, p1, p2, data, le=0))


def block_cipher(key_type: int, key: bytes) -> Cipher[modes.ECB]:
    algorithm = TripleDES(key) if key_type == 0x03 else algorithms.AES(key)
    return Cipher(algorithm, modes.ECB())  # one block, as the protocol defines


def authenticate_management(
    transmit: Transmit, key: bytes = DEFAULT_MGMT_KEY, key_type: int = 0x03
) -> int:
    """SP 800-73-4 mutual authentication; returns the final SW (9000 on success)."""
    cipher = block_cipher(key_type, key)
    data, sw = send(transmit, apdu(0, 0x87, key_type, 0x9B, Tlv(0x7C, Tlv(0x80)), le=0))
    if sw != 0x9000:
        return sw
    witness = Tlv.unpack(0x80, Tlv.unpack(0x7C, data))
    decryptor = cipher.decryptor()
    plain = decryptor.update(witness) + decryptor.finalize()
    challenge = os.urandom(len(witness))
    body = Tlv(0x7C, Tlv(0x80, plain) + Tlv(0x81, challenge))
    data, sw = send(transmit, apdu(0, 0x87, key_type, 0x9B, body, le=0))
    if sw != 0x9000:
        return sw
    encryptor = cipher.encryptor()
    assert Tlv.unpack(0x82, Tlv.unpack(0x7C, data)) == (
        encryptor.update(challenge) + encryptor.finalize()
    ), "card answered the host challenge wrongly"
    return sw


def pyscard_connect(reader_name: str) -> CardConnection:
    """A connected pyscard connection to ``reader_name`` (keep it referenced while in use)."""
    reader = next((r for r in readers() if str(r) == reader_name), None)
    assert reader is not None, f"no reader {reader_name!r} in {readers()}"
    connection = reader.createConnection()
    connection.connect()
    return connection


def pyscard_transmit(connection: CardConnection) -> Transmit:
    def transmit(command: bytes) -> tuple[bytes, int]:
        data, sw1, sw2 = connection.transmit(list(command))
        return bytes(data), (sw1 << 8) | sw2

    return transmit
