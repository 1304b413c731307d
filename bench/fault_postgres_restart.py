"""Fault: PostgreSQL stopped and started again under mixed load; idsvc is not restarted.

    .venv/bin/python bench/fault_postgres_restart.py [--seconds 60] [--down-at 15]
                                                     [--down-for 20] [--connections 8]

A private cluster (``tests/support/private_postgres.py``: ``initdb`` + ``pg_ctl`` in a temp folder
on
a free port; the machine's shared PostgreSQL is never touched) serves ``idsvc serve --workers
2`` while ``wrk`` sends the mixed load of ``load_mixed.py``. At ``--down-at`` seconds the
cluster is stopped (``pg_ctl stop -m fast``: every session is cut, open transactions roll
back) and ``--down-for`` seconds later started again on the same port.

While it is down a prober asks, every half second: ``/readyz`` (must say not ready, database
check failing, 503 with ``Retry-After``), an HR update and a payroll batch (each must be a 503
``application/problem+json`` ``DATABASE_UNAVAILABLE`` with ``Retry-After``, answered in
seconds: never a hang, never a 500, never a stack trace). An HR update refused with 503 must
not be stored. After the restart the same workers (same PIDs: nothing restarted them) must
take HR updates again and ``/readyz`` must say ready; the time this took is printed. The load's
HR updates are checked as in ``load_mixed.py`` (wrk's HR client sends refused ones again, same
``Idempotency-Key``): every one answered 2xx is stored once, with its audit event, and the audit
chain verifies. PASS/FAIL, not a speed figure. The suite runs the same code for ~8 s
(``tests/system/test_fault_postgres_restart.py``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_rig

from tests.support.private_postgres import PrivateCluster, private_cluster

PROBE_EVERY = 0.5
ANSWER_WITHIN = 10.0  # seconds: an answer later than this counts as a hang


@dataclass
class Probe:
    at: float  # seconds since the outage began (negative: before)
    what: str
    status: int | None  # None: no answer at all
    seconds: float
    problem: bool = False  # application/problem+json with Retry-After
    code: str = ""
    detail: str = ""


@dataclass
class PgDrill:
    load: load_rig.LoadResult
    kept: load_rig.Stored
    probes_down: list[Probe]
    probes_after: list[Probe]
    recovered_after: float | None  # seconds from restart to the first stored HR update
    ready_after: float | None
    workers_before: list[int]
    workers_after: list[int]
    refused_ids: list[str]  # probe HR updates answered 503
    refused_but_stored: set[str]
    server_problems: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        found = []
        hr = [p for p in self.probes_down if p.what == "hr"]
        if not hr:
            found.append("no HR probe while the database was down")
        for p in self.probes_down:
            if p.status is None or p.seconds > ANSWER_WITHIN:
                found.append(f"{p.what}: no answer within {ANSWER_WITHIN} s ({p.seconds:.1f} s)")
            elif p.what in ("hr", "payroll") and not (
                p.status == 503 and p.problem and p.code == "DATABASE_UNAVAILABLE"
            ):
                found.append(f"{p.what} while down: {p.status} {p.code or p.detail[:80]}")
            elif p.what == "readyz" and p.status not in (200, 503):
                found.append(f"readyz while down: {p.status}")
            if "Traceback" in p.detail or "psycopg" in p.detail.lower():
                found.append(f"{p.what} leaked internals: {p.detail[:80]}")
        if not any(p.what == "readyz" and p.status == 503 and p.problem for p in self.probes_down):
            found.append("/readyz never said not ready while the database was down")
        if self.recovered_after is None:
            found.append("HR updates never succeeded again after the restart")
        if self.ready_after is None:
            found.append("/readyz never said ready again after the restart")
        if self.workers_after != self.workers_before:
            found.append(f"workers changed: {self.workers_before} -> {self.workers_after}")
        if self.refused_but_stored:
            found.append(f"{len(self.refused_but_stored)} HR updates refused with 503 were stored")
        fives = self.load.statuses(lambda s: s >= 500 and s != 503)
        if fives:
            found.append(f"{fives} load answers were 5xx other than 503")
        unexpected = self.load.unexpected(also_ok=frozenset({503}))
        if unexpected:
            found.append(f"unexpected load answers: {unexpected}")
        found += load_rig.hr_failures(self.load, self.kept)
        if self.server_problems:
            found.append(f"server log: {self.server_problems[:3]}")
        return found

    def lines(self) -> list[str]:
        by_what: dict[str, list[Probe]] = {}
        for p in self.probes_down:
            by_what.setdefault(p.what, []).append(p)
        out = ["while PostgreSQL was down:"]
        for what, probes in sorted(by_what.items()):
            statuses = sorted({str(p.status) for p in probes})
            slowest = max(p.seconds for p in probes)
            codes = sorted({p.code for p in probes if p.code})
            out.append(
                f"  {what:8} {len(probes):3} probes, answers {'/'.join(statuses)} "
                f"{' '.join(codes)}, slowest {slowest * 1000:.0f} ms"
            )
        out += [
            f"after the restart: HR updates stored again after "
            f"{_secs(self.recovered_after)}, /readyz ready after {_secs(self.ready_after)}; "
            f"workers {self.workers_before} -> {self.workers_after}",
            f"probe HR updates refused with 503: {len(self.refused_ids)}, of them stored: "
            f"{len(self.refused_but_stored)}",
            load_rig.latency_line("load (whole run)", self.load.all_latencies(), self.load.rps),
            *load_rig.per_kind_lines(self.load),
            f"HR updates under load: sent {len(self.load.hr_sent)}, answered 2xx "
            f"{len(self.load.hr_ok)}, 503 then sent again {len(self.load.hr_5xx)}, stored "
            f"{len(self.kept.people)}, pending at the end {len(self.load.hr_pending)}; "
            f"{self.kept.audit_line}",
            *self.notes,
        ]
        failures = self.failures
        out.append("PASS" if not failures else "FAIL: " + "; ".join(failures))
        return out


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def probe(client: httpx.Client, prep: load_rig.Prepared, what: str, at: float, hr: str) -> Probe:
    started = time.monotonic()
    try:
        if what == "readyz":
            r = client.get("/readyz")
        elif what == "hr":
            r = client.post(
                "/v1/hr/records",
                json={"records": [load_rig.hr_record(hr)]},
                headers={"authorization": f"Bearer {prep.hr_secret}"},
            )
        else:
            items = [{"employee_id": i} for i in prep.payroll_ids[:10]]
            r = client.post(
                "/v1/payroll/checks",
                json={"items": items},
                headers={"authorization": f"Bearer {prep.bank_secret}"},
            )
    except httpx.HTTPError as exc:
        return Probe(at, what, None, time.monotonic() - started, detail=type(exc).__name__)
    seconds = time.monotonic() - started
    ctype = r.headers.get("content-type", "")
    retry = r.headers.get("retry-after", "")
    body: dict[str, Any] = {}
    if "json" in ctype:
        body = r.json()
    is_problem = retry.isdigit() and (
        ctype.startswith("application/problem+json")
        or (what == "readyz" and body.get("status") == "not ready")
    )
    return Probe(at, what, r.status_code, seconds, is_problem, str(body.get("code", "")), r.text)


def drill(
    cluster: PrivateCluster,
    tmp: Path,
    *,
    seconds: float,
    down_at: float,
    down_for: float,
    connections: int,
    people: int = 200,
) -> PgDrill:
    # /readyz is recomputed at most every second here (default 5 s) so that a short drill
    # sees it change; what it checks is the same.
    prep = load_rig.prepare(
        tmp / "home", cluster.url, people=people, extra_env={"IDSVC_READINESS_CACHE": "1"}
    )
    served = load_rig.serve_idsvc(prep, tmp / "serve.log", 2)
    wrk = load_rig.BackgroundWrk(
        served.base, prep, tmp, seconds=seconds, connections=connections, phase="P"
    )

    probes_down: list[Probe] = []
    probes_after: list[Probe] = []
    refused: list[str] = []
    recovered = ready = None
    workers_before = served.workers()
    seq = 0
    try:
        wrk.start()
        with httpx.Client(base_url=served.base, timeout=ANSWER_WITHIN + 5) as client:
            time.sleep(down_at)
            cluster.stop("fast")
            t_down = time.monotonic()
            while time.monotonic() - t_down < down_for:
                for what in ("readyz", "hr", "payroll"):
                    seq += 1
                    hr = load_rig.hr_id("Z", 0, seq)
                    p = probe(client, prep, what, time.monotonic() - t_down, hr)
                    probes_down.append(p)
                    if what == "hr" and p.status == 503:
                        refused.append(hr)
                time.sleep(PROBE_EVERY)
            cluster.start()
            t_up = time.monotonic()
            while (recovered is None or ready is None) and time.monotonic() - t_up < 60:
                for what in ("hr", "readyz"):
                    seq += 1
                    p = probe(
                        client, prep, what, time.monotonic() - t_down, load_rig.hr_id("Y", 0, seq)
                    )
                    probes_after.append(p)
                    if what == "hr" and p.status == 200 and recovered is None:
                        recovered = time.monotonic() - t_up
                    if what == "readyz" and p.status == 200 and ready is None:
                        ready = time.monotonic() - t_up
                time.sleep(0.2)
        load = wrk.join()
        workers_after = served.workers()
    finally:
        log = served.stop()
    kept = load_rig.stored(prep, "P")
    return PgDrill(
        load=load,
        kept=kept,
        probes_down=probes_down,
        probes_after=probes_after,
        recovered_after=recovered,
        ready_after=ready,
        workers_before=workers_before,
        workers_after=workers_after,
        refused_ids=refused,
        refused_but_stored=set(refused) & load_rig.stored_ids(prep, load_rig.hr_prefix("Z")),
        server_problems=load_rig.problems_in_log(log),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--down-at", type=float, default=15.0)
    parser.add_argument("--down-for", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if args.down_at + args.down_for + 10 > args.seconds:
        parser.error("leave at least 10 s of load after the restart")
    with tempfile.TemporaryDirectory(prefix="fault-pg-") as tmp, private_cluster() as cluster:
        result = drill(
            cluster,
            Path(tmp),
            seconds=args.seconds,
            down_at=args.down_at,
            down_for=args.down_for,
            connections=args.connections,
        )
    print(
        f"PostgreSQL (private cluster) stopped at {args.down_at:.0f} s for {args.down_for:.0f} s "
        f"of {args.seconds:.0f} s mixed load, idsvc serve --workers 2, wrk {args.connections} "
        "connections"
    )
    for line in result.lines():
        print(line)
    sys.exit(0 if not result.failures else 1)


if __name__ == "__main__":
    main()
