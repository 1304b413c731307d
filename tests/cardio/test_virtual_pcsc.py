"""The virtual card through the real path: pyscard -> pcscd -> vpcd -> card process."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from smartcard.Exceptions import CardConnectionException, NoCardException

from cardio.errors import CardError
from cardio.pcsc import PcscTransport
from cardio.tlv import Tlv
from cardio.virtual import CardState, VirtualCard, bench
from cardio.virtual.vpcd import ATR, VpcdBridge
from tests.support.pcsc import (
    CARD_TIMEOUT,
    PIV_AID,
    VirtualCardFactory,
    apdu,
    authenticate_management,
    pyscard_connect,
    pyscard_transmit,
    send,
    send_chained,
)

pytestmark = pytest.mark.pcsc

OK = 0x9000
VERIFY_STATUS = apdu(0, 0x20, 0, 0x80)


def pin_block(pin: str) -> bytes:
    return pin.encode().ljust(8, b"\xff")


def test_card_appears_with_our_atr(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card()
    assert card.reader_name == "Virtual PCD 00 00"
    connection = pyscard_connect(card.reader_name)
    assert bytes(connection.getATR()) == ATR
    tx = pyscard_transmit(connection)
    data, sw = tx(apdu(0, 0xA4, 4, 0, PIV_AID[:5], le=0))
    assert sw == OK and data.startswith(b"\x61")
    assert tx(apdu(0, 0xFD, 0, 0, le=0)) == (bytes([5, 7, 1]), OK)
    connection.disconnect()


def test_latency_per_apdu(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card()
    connection = pyscard_connect(card.reader_name)
    tx = pyscard_transmit(connection)
    command = apdu(0, 0xFD, 0, 0, le=0)
    samples = []
    for _ in range(200):
        start = time.perf_counter()
        assert tx(command)[1] == OK
        samples.append(time.perf_counter() - start)
    median_ms = statistics.median(samples) * 1000
    p95_ms = statistics.quantiles(samples, n=20)[-1] * 1000
    print(f"\nvirtual card APDU round trip: median {median_ms:.3f} ms, p95 {p95_ms:.3f} ms")
    connection.disconnect()
    # ~45 ms would mean the delayed-ACK trap is back (TCP_NODELAY / TCP_QUICKACK lost).
    assert median_ms < 10


def test_chaining_and_extended_apdus_through_pcscd(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card()
    connection = pyscard_connect(card.reader_name)
    tx = pyscard_transmit(connection)
    assert authenticate_management(tx) == OK
    value = bytes(range(256)) * 6
    body = Tlv(0x5C, b"\x5f\xc1\x05") + Tlv(0x53, value)
    assert send_chained(tx, 0xDB, 0x3F, 0xFF, body)[1] == OK
    read = Tlv(0x5C, b"\x5f\xc1\x05")
    first, sw = tx(apdu(0, 0xCB, 0x3F, 0xFF, read, le=0))
    assert (len(first), sw) == (256, 0x6100)
    assert send(tx, apdu(0, 0xCB, 0x3F, 0xFF, read, le=0)) == (bytes(Tlv(0x53, value)), OK)
    extended = apdu(0, 0xCB, 0x3F, 0xFF, read, le=0, extended=True)
    assert tx(extended) == (bytes(Tlv(0x53, value)), OK)
    connection.disconnect()


def test_reconnect_powers_the_card_off(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card()
    connection = pyscard_connect(card.reader_name)
    tx = pyscard_transmit(connection)
    assert tx(apdu(0, 0x20, 0, 0x80, pin_block("123456")))[1] == OK
    assert tx(VERIFY_STATUS)[1] == OK
    connection.disconnect()  # pyscard unpowers the card: vpcd sends "00"
    connection = pyscard_connect(card.reader_name)
    assert pyscard_transmit(connection)(VERIFY_STATUS)[1] == 0x63C3
    connection.disconnect()


def test_pulled_card_and_reinsertion(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card(fail_after=3)
    connection = pyscard_connect(card.reader_name)
    tx = pyscard_transmit(connection)
    assert tx(apdu(0, 0xA4, 4, 0, PIV_AID))[1] == OK
    assert tx(apdu(0, 0x20, 0, 0x80, pin_block("000000")))[1] == 0x63C2
    assert tx(VERIFY_STATUS)[1] == 0x63C2
    with pytest.raises(CardConnectionException):
        tx(VERIFY_STATUS)  # the 4th APDU meets an empty reader
    card.wait_pulled()
    assert not card.alive()
    with contextlib.suppress(CardConnectionException):
        connection.disconnect()
    with pytest.raises((NoCardException, CardConnectionException)):
        pyscard_connect(card.reader_name)

    again = virtual_card(state_file=card.state_file)  # same card, reinserted
    connection = pyscard_connect(again.reader_name)
    assert pyscard_transmit(connection)(VERIFY_STATUS)[1] == 0x63C2  # counter persisted
    connection.disconnect()


@contextlib.contextmanager
def inserted_in_process(state_file: Path, reader: int) -> Iterator[None]:
    """The card in ``state_file`` inserted within milliseconds (a card process needs 0.2-0.5 s
    to start, which on a busy machine hides a window shorter than that)."""
    bridge = VpcdBridge(VirtualCard.from_file(state_file), reader=reader)
    bridge.connect()
    serving = threading.Thread(target=bridge.serve, daemon=True)
    serving.start()
    try:
        yield
    finally:
        bridge.pull()
        serving.join(CARD_TIMEOUT)
        bench.wait_card_present(bench.reader_name(reader), present=False, timeout=CARD_TIMEOUT)


def test_card_back_at_once_after_a_reset_of_the_pulled_card(
    virtual_card: VirtualCardFactory,
) -> None:
    """Issue 16: the desk's pattern. The card is pulled during an APDU, the application's
    disconnect resets (SCARD_RESET_CARD) the now empty reader, the card comes straight back.
    That disconnect makes pcscd publish "empty" before its reader thread (polling vpcd every
    400 ms) has seen the removal; a card back before that poll looks to the thread like the
    card it knew, so pcscd never reports it. ``wait_pulled`` must wait for the thread."""
    card = virtual_card(fail_after=1)
    transport = PcscTransport.open(card.reader_name)
    with pytest.raises(CardError):
        for _ in range(2):
            transport.transmit(apdu(0, 0xFD, 0, 0, le=0))  # the second meets the pulled card
    transport.close()  # SCARD_RESET_CARD on the empty reader, as every cardio session ends
    card.wait_pulled()
    with inserted_in_process(card.state_file, card.reader):
        bench.wait_card_present(card.reader_name, timeout=CARD_TIMEOUT)
        with PcscTransport.open(card.reader_name) as again:
            assert again.transmit(apdu(0, 0xFD, 0, 0, le=0)) == (bytes([5, 7, 1]), OK)


def test_two_readers(virtual_card: VirtualCardFactory) -> None:
    first = virtual_card(reader=0)
    second = virtual_card(reader=1)
    assert second.reader_name == "Virtual PCD 00 01"
    serials = []
    for handle in (first, second):
        connection = pyscard_connect(handle.reader_name)
        serials.append(pyscard_transmit(connection)(apdu(0, 0xF8, 0, 0, le=0))[0])
        connection.disconnect()
    expected = [CardState.load(h.state_file).serial.to_bytes(4, "big") for h in (first, second)]
    assert serials == expected


def test_stop_waits_for_absent(virtual_card: VirtualCardFactory) -> None:
    card = virtual_card()
    card.stop()
    assert not bench.card_present(card.reader_name)
    assert not card.pidfile_exists()


def test_command_line_start_status_stop(pcscd: bench.PcscdHandle, tmp_path: Path) -> None:
    state = tmp_path / "desk-card.json"
    name = bench.reader_name(1)
    bench.wait_card_present(name, present=False)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "cardio.virtual", *args, "--reader", "1", "--state"]
        return subprocess.run([*argv, str(state)], capture_output=True, text=True, timeout=30)

    started = cli("start")
    try:
        assert started.returncode == 0, started.stderr
        assert "Virtual PCD 00 01" in started.stdout
        assert bench.card_present(name)
        pid = bench.read_pidfile(bench.pidfile_for(state))
        assert pid is not None and bench.is_card_process(pid)
        assert cli("start").returncode == 1  # already running
        status = cli("status")
        assert status.returncode == 0 and "present" in status.stdout
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not bench.card_present(name)
    assert not bench.pidfile_for(state).exists()
    assert cli("status").returncode == 3
    assert CardState.load(state).pin.retries == 3  # the card file stays for next time
