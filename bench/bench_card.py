"""APDUs and seconds per card personalisation and per challenge check, on the virtual PIV card.

    python bench/bench_card.py [--rounds N] [--reader 0|1]

Starts pcscd if none answers (and stops it at the end only then), inserts a virtual PIV card
(``cardio.virtual``) into a vpcd reader, all under the machine-wide card-bench lock, and runs
against a throw-away ``Services`` (temp home, SQLite, the sample HR file):

- the bare APDU round-trip (SELECT of the PIV application), to show the vpcd latency trap
  (~45 ms per APDU with delayed ACKs) is avoided;
- ``idsvc.desk_client.cards.personalise_card`` (what ``idsvc issue --reader`` does, with a new PIN
  and PUK),
  timed per step, with time on the wire and time at the centre (sign, confirm) split out;
- ``idsvc.desk_client.cards.inspect_card(challenge=True)`` (``idsvc card verify``): the card part
  (APDUs)
  and the whole check (connect, APDUs, chain and challenge checks, ``Services.verify``).

Goals: a personalisation in at most 40 commands (``commands_sent``: chaining frames and GET
RESPONSE not counted) and under 2 s; a challenge check in at most 4 APDUs and under 50 ms.
Round 1 writes a blank card; later rounds re-issue to the same card. Not a test: nothing
asserts, but a failing card step stops the run.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cardio.pcsc import PcscTransport
from cardio.piv import PIV_AID, ManagementKeyType
from cardio.virtual import bench as card_bench
from idsvc.config import Settings
from idsvc.credentials.handover import KeyAttestation, PendingIssuance
from idsvc.credentials.views import CredentialView
from idsvc.desk_client.cards import (
    DEFAULT_PIN,
    DEFAULT_PUK,
    ISSUE_STEPS,
    CardSecrets,
    IssuedCard,
    inspect_card,
    personalise_card,
)
from idsvc.services import Services
from idsvc.verification.rules import VerificationResult

PASSPHRASE = "bench passphrase, not a secret"
SAMPLE_CSV = Path(__file__).resolve().parent.parent / "idsvc" / "data" / "hr_sample.csv"
PERSON = "KH-MCS-010002"
# The PIV test management key every blank card ships with (as idsvc.cli.card_commands).
MANAGEMENT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")
SELECT_PIV = bytes([0x00, 0xA4, 0x04, 0x00, len(PIV_AID)]) + PIV_AID + b"\x00"

GOAL_ISSUE_COMMANDS = 40
GOAL_ISSUE_SECONDS = 2.0
GOAL_CHECK_APDUS = 4
GOAL_CHECK_SECONDS = 0.050
CARD_TIMEOUT = 5.0


def now() -> datetime:
    return datetime.now(UTC)


class TimedTransport:
    """A ``Transport`` that counts frames and the time spent waiting for the card."""

    def __init__(self, inner: PcscTransport, *, short_apdus: bool = False) -> None:
        self.inner = inner
        self.short_apdus = short_apdus
        self.frames = 0
        self.seconds = 0.0

    @property
    def extended_length(self) -> bool:
        """As the ATR says, unless told to behave like a card without extended APDUs."""
        return self.inner.extended_length and not self.short_apdus

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        start = time.perf_counter()
        try:
            return self.inner.transmit(apdu)
        finally:
            self.seconds += time.perf_counter() - start
            self.frames += 1

    def close(self) -> None:
        self.inner.close()


class TimedCentre:
    """The in-process centre (the local credentials feature, an ``IssuanceCentre``), timing
    each call."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.seconds = 0.0

    @contextmanager
    def _timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start

    def check_eligible(self, employee_id: str) -> None:
        with self._timed():
            self.svc.credentials.check_eligible(employee_id)

    def begin_card_issuance(
        self,
        employee_id: str,
        *,
        card_key: ec.EllipticCurvePublicKey,
        card_uuid: Any,
        actor: str,
        now: datetime,
        attestation: KeyAttestation | None = None,
    ) -> PendingIssuance:
        with self._timed():
            return self.svc.credentials.begin_card_issuance(
                employee_id,
                card_key=card_key,
                card_uuid=card_uuid,
                actor=actor,
                now=now,
                attestation=attestation,
            )

    def confirm_issuance(self, credential_id: str, *, actor: str, now: datetime) -> CredentialView:
        with self._timed():
            return self.svc.credentials.confirm_issuance(credential_id, actor=actor, now=now)

    def abandon_issuance(
        self, credential_id: str, *, reason: str, actor: str, now: datetime
    ) -> None:
        with self._timed():
            self.svc.credentials.abandon_issuance(
                credential_id, reason=reason, actor=actor, now=now
            )


@dataclass
class Samples:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def mean(self, name: str) -> float:
        return statistics.fmean(self.values[name])

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def worst(self, name: str) -> float:
        return max(self.values[name])


def print_rows(title: str, samples: Samples, names: list[str], unit: str = "ms") -> None:
    scale = 1e3 if unit == "ms" else 1e6
    print(f"{title:42} {'mean':>9} {'median':>9} {'max':>9}  ({unit})")
    for name in names:
        print(
            f"  {name:40} {samples.mean(name) * scale:9.2f} {samples.median(name) * scale:9.2f}"
            f" {samples.worst(name) * scale:9.2f}"
        )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bare_round_trip(reader: str, calls: int) -> Samples:
    samples = Samples()
    with PcscTransport.open(reader) as transport:
        for _ in range(calls):
            start = time.perf_counter()
            _, sw = transport.transmit(SELECT_PIV)
            samples.add("SELECT PIV (one APDU)", time.perf_counter() - start)
            if sw >> 8 not in (0x90, 0x61):
                raise RuntimeError(f"SELECT PIV answered {sw:04X}")
    return samples


def personalise_once(
    svc: Services, reader: str, secrets: CardSecrets, samples: Samples, *, short_apdus: bool
) -> IssuedCard:
    centre = TimedCentre(svc)
    ca = svc.credentials.ca_certificate()  # the CLI reads it before connecting to the card
    marks: list[tuple[str, float]] = []

    def progress(step: str) -> None:
        marks.append((step, time.perf_counter()))

    start = time.perf_counter()
    with ExitStack() as stack:
        transport = TimedTransport(PcscTransport.open(reader), short_apdus=short_apdus)
        stack.callback(transport.close)
        opened = time.perf_counter()
        issued = personalise_card(
            transport,
            centre,
            employee_id=PERSON,
            card_secrets=secrets,
            ca_certificate=ca,
            verify_url_base=svc.settings.resolved_verify_url,
            actor="bench-desk",
            now=now(),
            progress=progress,
        )
        done = time.perf_counter()
    end = time.perf_counter()
    marks.append(("", done))
    for (step, at), (_, until) in itertools.pairwise(marks):
        samples.add(step, until - at)
    samples.add("connect (open transport)", opened - start)
    samples.add("total (connect to disconnect)", end - start)
    samples.add("  of which on the wire (APDUs)", transport.seconds)
    samples.add("  of which at the centre", centre.seconds)
    samples.add("  of which desk host work", end - start - transport.seconds - centre.seconds)
    samples.add("frames", float(transport.frames))
    return issued


def check_once(
    svc: Services, reader: str, samples: Samples, *, short_apdus: bool
) -> tuple[int, int, VerificationResult, bool]:
    verify_seconds = 0.0

    def check_token(token: str, key: ec.EllipticCurvePublicKey | None) -> VerificationResult:
        nonlocal verify_seconds
        begin = time.perf_counter()
        try:
            return svc.verification.verify(token, now=now(), card_key=key)
        finally:
            verify_seconds += time.perf_counter() - begin

    cas = svc.credentials.ca_certificates()  # loaded once per desk session, not per card
    start = time.perf_counter()
    with ExitStack() as stack:
        transport = TimedTransport(PcscTransport.open(reader), short_apdus=short_apdus)
        stack.callback(transport.close)
        opened = time.perf_counter()
        report = inspect_card(
            transport, ca_certificates=cas, check_token=check_token, now=now(), challenge=True
        )
    end = time.perf_counter()
    samples.add("whole check (connect to disconnect)", end - start)
    samples.add("  connect (open transport)", opened - start)
    samples.add("  card part (APDUs on the wire)", transport.seconds)
    samples.add("  token check (Services.verify)", verify_seconds)
    samples.add(
        "  host work (chain, challenge, parse)",
        end - opened - transport.seconds - verify_seconds,
    )
    samples.add("check without token verify", end - start - verify_seconds)
    return report.commands_sent, transport.frames, report.result, report.challenge_checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="personalisations (default 10)")
    parser.add_argument("--checks", type=int, default=50, help="challenge checks (default 50)")
    parser.add_argument("--reader", type=int, choices=(0, 1), default=0, help="vpcd reader")
    parser.add_argument(
        "--wait", type=float, default=900.0, help="seconds to wait for a busy card bench (900)"
    )
    parser.add_argument(
        "--short-apdus",
        action="store_true",
        help="short APDUs with chaining and GET RESPONSE, as for a card without extended length",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="idsvc-card-bench-") as tmp:
        home = Path(tmp) / "home"
        settings = Settings(
            home=home,
            database_url=f"sqlite:///{home / 'idsvc.sqlite3'}",
            key_passphrase=SecretStr(PASSPHRASE),
            issuer="https://id.mcs.gov.kh/issuers/default",
            public_url="https://id.mcs.gov.kh",
        )
        svc = Services.from_settings(settings, lambda: PASSPHRASE.encode())
        svc.credentials.init(now=now(), actor="bench-admin")
        svc.register.import_hr(
            SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="bench", now=now()
        )
        try:
            with card_bench.bench_lock(timeout=args.wait):
                with_card(args, svc, Path(tmp) / "card.json")
        except card_bench.BenchError as exc:
            sys.exit(f"card bench unavailable: {exc}")
        finally:
            svc.infra.db.dispose()


def with_card(args: argparse.Namespace, svc: Services, state_file: Path) -> None:
    name = card_bench.reader_name(args.reader)
    pcscd = card_bench.ensure_pcscd()
    try:
        card_bench.wait_card_present(name, present=False, timeout=CARD_TIMEOUT)
        card = card_bench.start_card(args.reader, state_file)
        try:
            card_bench.wait_card_present(name, present=True, timeout=CARD_TIMEOUT)
            print(
                f"pcscd {'started by this bench' if pcscd.started else 'already running'}"
                f" (pid {pcscd.pid}); virtual card pid {card.pid} in {name!r}"
            )
            run(args, svc, name)
        finally:
            card_bench.stop_card(card)
            card_bench.wait_card_present(name, present=False, timeout=CARD_TIMEOUT)
    finally:
        card_bench.stop_pcscd(pcscd)


def run(args: argparse.Namespace, svc: Services, reader: str) -> None:
    # A desk that hands the card over sets the holder's own PIN and PUK: that is the full
    # personalisation. Setting the defaults again keeps the card reusable across rounds.
    secrets = CardSecrets(
        MANAGEMENT_KEY, ManagementKeyType.TDES, new_pin=DEFAULT_PIN, new_puk=DEFAULT_PUK
    )
    bare = bare_round_trip(reader, 200)
    with PcscTransport.open(reader) as probe:
        atr_extended = probe.extended_length
    mode = "short (forced)" if args.short_apdus else ("extended" if atr_extended else "short")
    print(f"APDUs: {mode}; the card's ATR announces extended length: {atr_extended}")

    issue = Samples()
    counts: list[tuple[int, int]] = []
    for _ in range(args.rounds):
        issued = personalise_once(svc, reader, secrets, issue, short_apdus=args.short_apdus)
        counts.append((issued.commands_sent, issued.apdus_sent))

    check = Samples()
    check_counts: set[tuple[int, int]] = set()
    results: set[tuple[str, bool]] = set()
    short = args.short_apdus
    check_once(svc, reader, Samples(), short_apdus=short)  # warm-up: lazy imports, caches
    for _ in range(args.checks):
        sent, seen, result, challenged = check_once(svc, reader, check, short_apdus=short)
        check_counts.add((sent, seen))
        results.add((result.status, challenged))

    print()
    print_rows("bare APDU round-trip (200)", bare, ["SELECT PIV (one APDU)"], unit="µs")
    print()
    steps = [s for s in ISSUE_STEPS if s in issue.values]
    print_rows(f"personalisation, per step ({args.rounds} rounds)", issue, steps)
    totals = [
        "connect (open transport)",
        "total (connect to disconnect)",
        "  of which on the wire (APDUs)",
        "  of which at the centre",
        "  of which desk host work",
    ]
    print_rows("personalisation, totals", issue, totals)
    commands = sorted({c for c, _ in counts})
    apdus = sorted({a for _, a in counts})
    frames = sorted({int(f) for f in issue.values["frames"]})
    per_apdu = issue.median("  of which on the wire (APDUs)") / statistics.median(frames) * 1e3
    print(
        f"  commands_sent {commands}, apdus_sent {apdus} (frames seen on the wire {frames});"
        f" {per_apdu:.2f} ms per frame on the wire"
    )
    print()
    print_rows(
        f"challenge check ({args.checks} checks)",
        check,
        [
            "whole check (connect to disconnect)",
            "  connect (open transport)",
            "  card part (APDUs on the wire)",
            "  token check (Services.verify)",
            "  host work (chain, challenge, parse)",
            "check without token verify",
        ],
    )
    print(
        f"  commands_sent/frames {sorted(check_counts)}; result (status, challenge passed)"
        f" {sorted(results)}"
    )

    worst_commands = max(commands)
    issue_median = issue.median("total (connect to disconnect)")
    issue_worst = issue.worst("total (connect to disconnect)")
    check_commands = max(c for c, _ in check_counts)
    check_frames = max(f for _, f in check_counts)
    check_median = check.median("whole check (connect to disconnect)")
    check_worst = check.worst("whole check (connect to disconnect)")
    over = sum(x >= GOAL_CHECK_SECONDS for x in check.values["whole check (connect to disconnect)"])
    print()
    print("goals:")
    print(
        f"  personalisation commands: {worst_commands} ≤ {GOAL_ISSUE_COMMANDS}: "
        f"{verdict(worst_commands <= GOAL_ISSUE_COMMANDS)} (apdus_sent {max(apdus)})"
    )
    print(
        f"  personalisation time: median {issue_median:.3f} s, worst {issue_worst:.3f} s "
        f"< {GOAL_ISSUE_SECONDS} s: {verdict(issue_worst < GOAL_ISSUE_SECONDS)}"
    )
    print(
        f"  challenge check APDUs: {check_commands} commands ≤ {GOAL_CHECK_APDUS}: "
        f"{verdict(check_commands <= GOAL_CHECK_APDUS)} ({check_frames} frames on the wire)"
    )
    print(
        f"  challenge check time: median {check_median * 1e3:.1f} ms, worst "
        f"{check_worst * 1e3:.1f} ms < {GOAL_CHECK_SECONDS * 1e3:.0f} ms: "
        f"{verdict(check_median < GOAL_CHECK_SECONDS)} (median; {over} of {args.checks} over)"
    )
    slow = [x for x in bare.values["SELECT PIV (one APDU)"] if x > 0.040]
    print(
        f"  latency trap (~45 ms per APDU): median round-trip "
        f"{bare.median('SELECT PIV (one APDU)') * 1e3:.2f} ms, {len(slow)}/200 above 40 ms: "
        f"{verdict(bare.median('SELECT PIV (one APDU)') < 0.005 and not slow)}"
    )


if __name__ == "__main__":
    main()
