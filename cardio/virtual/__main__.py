"""``python -m cardio.virtual start|stop|run|status --reader N --state FILE``.

``run`` is the card itself (foreground, used by ``start`` and the test fixtures); ``start``
ensures pcscd, spawns ``run`` detached, and waits until PC/SC sees the card. The pidfile lives
next to the state file (``FILE.pid``), the card's log in ``FILE.log``. If ``start`` had to start
pcscd, it records that in ``FILE.pcscd.pid`` so that ``stop`` stops that pcscd and no other.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from . import bench
from .applet import VirtualCard
from .attestation import ATTESTATION_SLOT, AttestationCa
from .vpcd import run

PR_SET_PDEATHSIG = 1


def _write_pidfile(pidfile: Path) -> None:
    tmp = pidfile.with_name(pidfile.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, pidfile)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _exit_with_parent(parent: int) -> None:
    """Ask Linux for SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        raise SystemExit(0)


def cmd_run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    state_file = Path(args.state).resolve()
    pidfile = Path(args.pidfile) if args.pidfile else bench.pidfile_for(state_file)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if args.exit_with_parent is not None:
        _exit_with_parent(args.exit_with_parent)
    card = VirtualCard.from_file(state_file, fail_after=args.fail_after)
    if args.attestation_ca is not None and ATTESTATION_SLOT not in card.state.keys:
        # The factory step: the card gets its attestation key from the (test) maker CA.
        AttestationCa.load_or_create(Path(args.attestation_ca)).provision(card.state)
        card.state.save(state_file)
    _write_pidfile(pidfile)
    try:
        run(card, args.reader, connect_timeout=args.connect_timeout)
    except ConnectionError as exc:
        print(f"virtual card: {exc}", file=sys.stderr)
        return 1
    finally:
        if bench.read_pidfile(pidfile) == os.getpid():
            pidfile.unlink(missing_ok=True)
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    state_file = Path(args.state).resolve()
    if bench.card_from_pidfile(args.reader, state_file) is not None:
        print(f"virtual card already running for {state_file}", file=sys.stderr)
        return 1
    pcscd = bench.ensure_pcscd()
    if pcscd.started and pcscd.pid is not None:
        _pcscd_record(state_file).write_text(f"{pcscd.pid}\n")
    card = bench.start_card(
        args.reader,
        state_file,
        fail_after=args.fail_after,
        detach=True,
        attestation_ca=args.attestation_ca,
    )
    try:
        bench.wait_card_present(card.reader_name, timeout=args.timeout)
    except TimeoutError as exc:
        bench.stop_card(card)
        print(f"virtual card: {exc}; see {bench.logfile_for(state_file)}", file=sys.stderr)
        return 1
    print(f"card in {card.reader_name!r} (pid {card.pid})")
    return 0


def _pcscd_record(state_file: Path) -> Path:
    return state_file.with_name(state_file.name + ".pcscd.pid")


def cmd_stop(args: argparse.Namespace) -> int:
    state_file = Path(args.state).resolve()
    card = bench.card_from_pidfile(args.reader, state_file)
    if card is None:
        print("no virtual card running", file=sys.stderr)
    else:
        shown = bench.reader_state(card.reader_name)
        bench.stop_card(card)
        if shown is not None and shown.present:  # a card started next must be seen
            bench.wait_card_removed(card.reader_name, shown, timeout=args.timeout)
        else:
            bench.wait_card_present(card.reader_name, present=False, timeout=args.timeout)
        print(f"card removed from {card.reader_name!r}")
    record = _pcscd_record(state_file)
    pid = bench.read_pidfile(record)
    if pid is not None:
        if bench.read_pidfile(bench.PCSCD_PIDFILE) == pid:  # still the pcscd we started
            bench.stop_pcscd(bench.PcscdHandle(pid=pid, started=True))
        record.unlink(missing_ok=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_file = Path(args.state).resolve()
    card = bench.card_from_pidfile(args.reader, state_file)
    name = bench.reader_name(args.reader)
    if card is None:
        print(f"stopped ({state_file})")
        return 3
    present = "present" if bench.card_present(name) else "not seen by pcscd"
    print(f"running pid {card.pid}, {name!r}: card {present}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cardio.virtual", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (
        ("run", cmd_run),
        ("start", cmd_start),
        ("stop", cmd_stop),
        ("status", cmd_status),
    ):
        p = sub.add_parser(name)
        p.add_argument("--reader", type=int, choices=(0, 1), default=0)
        p.add_argument("--state", required=True, help="card state file (JSON, created if absent)")
        p.add_argument("--timeout", type=float, default=10.0)
        if name in ("run", "start"):
            p.add_argument("--fail-after", type=int, default=None)
            p.add_argument(
                "--attestation-ca",
                default=None,
                metavar="DIR",
                help="test maker CA (made there if absent) that certifies the card's "
                "attestation key, so that the card can attest its keys (PIV ATTEST)",
            )
        if name == "run":
            p.add_argument("--pidfile", default=None)
            p.add_argument("--connect-timeout", type=float, default=10.0)
            p.add_argument("--exit-with-parent", type=int, default=None, metavar="PID")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except bench.BenchError as exc:
        print(f"virtual card: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
