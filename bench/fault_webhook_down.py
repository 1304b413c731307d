"""Fault: a bank's webhook receiver is down for minutes while HR status changes keep coming.

    .venv/bin/python bench/fault_webhook_down.py [--down-for 120] [--changes 300]
                                                 [--first-retry 5] [--max-retry 60] [--no-load]

Two banks subscribe to ``employee.*`` (real loopback HTTP receivers, ``tests/webhook_receiver``):
one stays up, the other is down (nothing listens on its port) for ``--down-for`` seconds. The
real ``idsvc webhooks deliver`` process sends, with its back-off schedule set by configuration
(``IDSVC_WEBHOOK_FIRST_RETRY``, ``IDSVC_WEBHOOK_MAX_RETRY``; production: 30 s doubling, at
most 6 h). HR systems suspend ``--changes`` people through ``POST /v1/hr/records`` on
``idsvc serve --workers 2``: half while the receiver is down, half after it is back, with the
mixed wrk load of ``load_mixed.py`` running during the outage (``--no-load``: without).

What must hold: every HR write is answered 200 while the receiver is down (no slower for it:
HR latency is printed for both halves), the receiver that stayed up gets each of its events
during the outage, and after the other returns it gets every event too, each at least once,
signed, with nothing ``failed`` in the outbox and no delivery left pending. PostgreSQL as in
``load_mixed.py``. PASS/FAIL; the suite runs it with a few seconds of outage and a back-off of
half a second (``tests/system/test_fault_webhook_down.py``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_mixed
import load_rig

from tests.support.webhook_receiver import Receiver, free_port, receiver, verify_v1a


@dataclass
class WebhookDrill:
    changes: int
    hr_down: list[tuple[int, float]]  # (status, seconds) of HR writes while the receiver was down
    hr_up: list[tuple[int, float]]
    steady_during_outage: int  # events the receiver that stayed up had before the other returned
    expected: dict[str, set[str]]  # subscription -> webhook-ids of its outbox rows
    received: dict[str, set[str]]  # subscription -> distinct webhook-ids received
    duplicates: dict[str, int]
    bad_signatures: int
    outbox: dict[str, int]  # delivery rows by state
    attempts: dict[str, int]  # subscription -> most attempts one of its deliveries took
    caught_up_after: float | None  # seconds from the receiver's return to its last event
    load: load_rig.LoadResult | None
    deliverer_log: str

    @property
    def failures(self) -> list[str]:
        found = []
        writes = self.hr_down + self.hr_up
        if len(writes) != self.changes or any(s != 200 for s, _ in writes):
            found.append(f"HR writes not all 200: {sorted({s for s, _ in writes})}")
        for name, ids in self.expected.items():
            if len(ids) != self.changes:
                found.append(f"{name}: {len(ids)} outbox rows for {self.changes} changes")
            missing = ids - self.received[name]
            if missing:
                found.append(f"{name}: {len(missing)} events never delivered")
            if self.received[name] - ids:
                found.append(f"{name}: received events it was not sent")
        if self.steady_during_outage < len(self.hr_down):
            found.append(
                f"the receiver that stayed up had {self.steady_during_outage} of "
                f"{len(self.hr_down)} outage events when the other returned: it was held up"
            )
        if self.attempts.get("flaky", 0) < 2:
            found.append("the receiver that was down was never retried: was it down?")
        if self.outbox.get("failed") or self.outbox.get("pending"):
            found.append(f"outbox not drained: {self.outbox}")
        if self.bad_signatures:
            found.append(f"{self.bad_signatures} deliveries with a bad signature")
        if self.caught_up_after is None:
            found.append("the returned receiver never caught up")
        if self.load is not None:
            fives = self.load.statuses(lambda s: s >= 500)
            if fives or self.load.unexpected():
                found.append(f"load during the outage: {self.load.unexpected()}")
        if "Traceback" in self.deliverer_log:
            found.append("the deliverer logged a traceback")
        return found

    def lines(self) -> list[str]:
        def p50(rows: list[tuple[int, float]]) -> float:
            values = sorted(int(s * 1e6) for _, s in rows)
            return load_rig.percentile(values, 50) / 1000

        out = [
            f"HR status changes: {len(self.hr_down)} while the receiver was down (p50 "
            f"{p50(self.hr_down):.1f} ms, max {max(s for _, s in self.hr_down) * 1000:.0f} ms), "
            f"{len(self.hr_up)} after (p50 {p50(self.hr_up):.1f} ms)",
            f"receiver that stayed up: {self.steady_during_outage} events during the outage",
            "caught up "
            + (
                "never"
                if self.caught_up_after is None
                else f"{self.caught_up_after:.1f} s after the receiver returned"
            ),
        ]
        for name in sorted(self.expected):
            out.append(
                f"  {name:7} outbox {len(self.expected[name])}, received "
                f"{len(self.received[name])} distinct ({self.duplicates[name]} repeats)"
            )
        out.append(
            f"outbox rows by state: {self.outbox}; most attempts per delivery: {self.attempts}; "
            f"bad signatures {self.bad_signatures}"
        )
        if self.load is not None:
            out.append(
                load_rig.latency_line(
                    "wrk load during the outage", self.load.all_latencies(), self.load.rps
                )
            )
        failures = self.failures
        out.append("PASS" if not failures else "FAIL: " + "; ".join(failures))
        return out


def _suspend(client: httpx.Client, prep: load_rig.Prepared, i: int) -> tuple[int, float]:
    today = datetime.now(UTC).date().isoformat()
    # People after the first 100: the load's payroll batch expects those 100 active.
    record = load_rig.payroll_record(100 + i, "suspended", today)
    started = time.monotonic()
    r = client.post(
        "/v1/hr/records",
        json={"records": [record]},
        headers={"authorization": f"Bearer {prep.hr_secret}"},
    )
    ok = r.status_code == 200 and r.json().get("status_changes") == 1
    return (r.status_code if ok else -r.status_code), time.monotonic() - started


def _distinct(box: Receiver) -> set[str]:
    return {g.headers["webhook-id"] for g in list(box.got)}


def _subscribe(prep: load_rig.Prepared, urls: dict[str, str]) -> tuple[dict[str, str], str]:
    from idsvc.bank.server_secret import ServerKeys, load_server_secret
    from idsvc.bank.webhooks import Webhooks
    from idsvc.storage.db import Database

    db = Database(prep.settings.resolved_database_url)
    try:
        keys = ServerKeys.from_secret(
            load_server_secret(prep.settings.resolved_server_secret_file, create=True)
        )
        made = {}
        public_key = ""
        for name, url in urls.items():
            new = Webhooks(db, keys, private_targets=True).add(  # loopback receivers
                url,
                client_name="Load Bank",
                events=["employee.*"],
                use_hmac=False,
                now=datetime.now(UTC),
                actor="load-rig",
            )
            made[name], public_key = new.view.id, new.public_key
        return made, public_key
    finally:
        db.dispose()


def _outbox(
    prep: load_rig.Prepared, subs: dict[str, str]
) -> tuple[dict[str, set[str]], dict[str, int], dict[str, int]]:
    from sqlalchemy import func, select

    from idsvc.storage.db import Database
    from idsvc.storage.payroll_tables import ChangeEventRow, WebhookDeliveryRow

    db = Database(prep.settings.resolved_database_url)
    try:
        with db.transaction() as session:
            expected = {
                name: {
                    f"msg_{event_id}"
                    for event_id in session.execute(
                        select(ChangeEventRow.event_id)
                        .join(
                            WebhookDeliveryRow,
                            WebhookDeliveryRow.event_position == ChangeEventRow.position,
                        )
                        .where(WebhookDeliveryRow.subscription_id == sub)
                    ).scalars()
                }
                for name, sub in subs.items()
            }
            states = {
                state: int(n)
                for state, n in session.execute(
                    select(WebhookDeliveryRow.state, func.count()).group_by(
                        WebhookDeliveryRow.state
                    )
                )
            }
            attempts = {
                name: int(
                    session.execute(
                        select(func.max(WebhookDeliveryRow.attempts)).where(
                            WebhookDeliveryRow.subscription_id == sub
                        )
                    ).scalar_one()
                    or 0
                )
                for name, sub in subs.items()
            }
        return expected, states, attempts
    finally:
        db.dispose()


def drill(
    db_url: str,
    tmp: Path,
    *,
    down_for: float,
    changes: int,
    first_retry: float,
    max_retry: float,
    with_load: bool,
    connections: int = 4,
) -> WebhookDrill:
    prep = load_rig.prepare(
        tmp / "home",
        db_url,
        people=100 + changes,
        extra_env={
            "IDSVC_WEBHOOK_FIRST_RETRY": str(first_retry),
            "IDSVC_WEBHOOK_MAX_RETRY": str(max_retry),
            "IDSVC_WEBHOOK_PRIVATE_TARGETS": "1",  # the receivers listen on loopback
        },
    )
    flaky_port = free_port()
    with ExitStack() as stack:
        steady = stack.enter_context(receiver())
        urls = {"steady": steady.url, "flaky": f"http://127.0.0.1:{flaky_port}/hooks/idsvc"}
        subs, public_key = _subscribe(prep, urls)
        served = load_rig.serve_idsvc(prep, tmp / "serve.log", 2)
        stack.callback(served.stop)
        deliver_log = tmp / "deliver.log"
        out = stack.enter_context(deliver_log.open("wb"))
        deliverer = subprocess.Popen(
            [load_rig.IDSVC, "webhooks", "deliver", "--interval", "0.2", "--timeout", "2"],
            env=prep.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        stack.callback(deliverer.wait, 30)
        stack.callback(deliverer.terminate)

        results: list[load_rig.LoadResult] = []
        wrk = None
        if with_load:
            wrk = threading.Thread(
                target=lambda: results.append(
                    load_rig.run_wrk(
                        served.base,
                        prep,
                        tmp,
                        seconds=down_for,
                        connections=connections,
                        phase="W",
                    )
                )
            )
        half = changes // 2
        with httpx.Client(base_url=served.base, timeout=30) as client:
            # The bank checks its payroll first: its webhooks carry the people it checked.
            client.post(
                "/v1/payroll/checks",
                json={"items": [{"employee_id": e} for e in prep.payroll_ids]},
                headers={"authorization": f"Bearer {prep.bank_secret}"},
            ).raise_for_status()
            outage = time.monotonic()
            if wrk is not None:
                wrk.start()
            pause = down_for / max(half, 1) / 2  # spread the first half over the outage
            hr_down = []
            for i in range(half):
                hr_down.append(_suspend(client, prep, i))
                time.sleep(pause)
            # Give the receiver that stayed up the rest of the outage (and at least a few
            # passes of the deliverer) to get what was written.
            time.sleep(max(down_for - (time.monotonic() - outage), 2.0))
            steady_count = len(_distinct(steady))
            if wrk is not None:
                wrk.join()
            flaky = stack.enter_context(receiver(port=flaky_port))
            back = time.monotonic()
            hr_up = [_suspend(client, prep, i) for i in range(half, changes)]
            expected, _, _ = _outbox(prep, subs)
            caught_up = None
            deadline = back + max_retry * 2.5 + 30
            while time.monotonic() < deadline:
                if expected["flaky"] <= _distinct(flaky) and expected["steady"] <= _distinct(
                    steady
                ):
                    caught_up = time.monotonic() - back
                    break
                time.sleep(0.2)
            time.sleep(1.0)  # let the deliverer record its last outcomes
            expected, states, attempts = _outbox(prep, subs)
        bad = 0
        for box in (steady, flaky):
            for got in list(box.got):
                try:
                    verify_v1a(public_key, got)
                except Exception:
                    bad += 1
        boxes = {"steady": steady, "flaky": flaky}
        received = {name: _distinct(box) for name, box in boxes.items()}
        duplicates = {name: len(box.got) - len(received[name]) for name, box in boxes.items()}
    return WebhookDrill(
        changes=changes,
        hr_down=hr_down,
        hr_up=hr_up,
        steady_during_outage=steady_count,
        expected=expected,
        received=received,
        duplicates=duplicates,
        bad_signatures=bad,
        outbox=states,
        attempts=attempts,
        caught_up_after=caught_up,
        load=results[0] if results else None,
        deliverer_log=deliver_log.read_text(errors="replace"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--down-for", type=float, default=120.0)
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--first-retry", type=float, default=5.0)
    parser.add_argument("--max-retry", type=float, default=60.0)
    parser.add_argument("--no-load", action="store_true")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="fault-webhook-") as tmp,
        load_mixed.postgres_schema(load_mixed.postgres_url()) as db,
    ):
        result = drill(
            db,
            Path(tmp),
            down_for=args.down_for,
            changes=args.changes,
            first_retry=args.first_retry,
            max_retry=args.max_retry,
            with_load=not args.no_load,
        )
    print(
        f"webhook receiver down {args.down_for:.0f} s, {args.changes} HR status changes, "
        f"back-off {args.first_retry:g} s doubling to {args.max_retry:g} s, "
        f"{'with' if not args.no_load else 'without'} wrk load (PostgreSQL, 2 workers)"
    )
    for line in result.lines():
        print(line)
    sys.exit(0 if not result.failures else 1)


if __name__ == "__main__":
    main()
