"""Sustained mixed traffic against ``idsvc serve --workers 2`` on PostgreSQL, next to a bare
FastAPI floor served with the same server settings in the same run.

    .venv/bin/python bench/load_mixed.py [--seconds 60] [--floor-seconds 20] [--connections 8]
                                         [--workers 2] [--people 2000]

The mix (``load_rig.MIX``, per 20 requests): 5 JWT verifications (anonymous), 3 printed-QR
verifications (API client), 2 payroll batches of 100 people, 1 JWKS and 2 JWKS revalidations
(``If-None-Match``: 304), 1 status-list fetch and 2 revalidations, 2 HR updates (``POST
/v1/hr/records``, one new person each) and 2 card challenges. ``wrk`` drives it (see
``load_rig`` for why and how each answer is counted).

The floor is ``bench/api_baseline_app.py`` (a FastAPI endpoint doing one PyJWT decode, no
database), run first through the same ``run_server``. What must hold, printed as PASS/FAIL:
zero 5xx, every answer the expected one (valid verifications, whole payroll batches active,
304 where the ETag matches), zero lost HR updates (each answered 2xx stored, nothing stored
that was not sent, each with its own ``hr.import`` audit event) and the audit chain
verifies (``idsvc audit verify``'s check, in-process). Also printed: each worker's peak
resident memory (``VmHWM`` from ``/proc/<pid>/status``, read at the end of each load, before
the servers stop), for idsvc and for the floor. PostgreSQL: a fresh schema on
``IDSVC_BENCH_POSTGRES_URL`` (else ``IDSVC_TEST_POSTGRES_URL``, else the local default),
dropped at the end. The suite runs the same code for a few seconds
(``tests/system/test_load_mixed.py``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_rig

POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class MixedReport:
    floor: load_rig.LoadResult
    load: load_rig.LoadResult
    stored: load_rig.Stored
    server_problems: list[str]
    # Peak resident memory (VmHWM, KiB) of each worker by PID, read at the end of each load.
    floor_peak_rss: dict[int, int]
    peak_rss: dict[int, int]

    @property
    def failures(self) -> list[str]:
        found = []
        fives = self.load.statuses(lambda s: s >= 500)
        if fives:
            found.append(f"{fives} answers were 5xx")
        unexpected = self.load.unexpected()
        if unexpected:
            found.append(f"unexpected answers: {unexpected}")
        if self.load.lost() or any(self.load.socket_errors.values()):
            found.append(f"requests without an answer: {self.load.socket_errors}")
        found += load_rig.hr_failures(self.load, self.stored)
        if self.server_problems:
            found.append(f"server log: {self.server_problems[:3]}")
        return found

    def lines(self) -> list[str]:
        floor_lat, load_lat = self.floor.all_latencies(), self.load.all_latencies()
        out = [
            load_rig.latency_line("bare FastAPI + PyJWT (floor)", floor_lat, self.floor.rps),
            load_rig.latency_line("idsvc mixed traffic", load_lat, self.load.rps),
            f"ratio idsvc/floor: req/s {self.load.rps / self.floor.rps:.2f}x, "
            f"p50 {load_rig.percentile(load_lat, 50) / load_rig.percentile(floor_lat, 50):.2f}x,"
            f" p99 {load_rig.percentile(load_lat, 99) / load_rig.percentile(floor_lat, 99):.2f}x",
            "per kind (latency; answers by status):",
            *load_rig.per_kind_lines(self.load),
            f"HR updates: sent {len(self.load.hr_sent)}, answered 2xx {len(self.load.hr_ok)}, "
            f"stored {len(self.stored.people)}, retried {self.load.hr_retried}, "
            f"audit events {sum(self.stored.audited.values())}; {self.stored.audit_line}",
            peak_rss_line("idsvc", self.peak_rss),
            peak_rss_line("floor", self.floor_peak_rss),
        ]
        failures = self.failures
        out.append("PASS" if not failures else "FAIL: " + "; ".join(failures))
        return out


def peak_rss_line(label: str, peaks: dict[int, int]) -> str:
    each = ", ".join(f"{kib / 1024:.1f}" for _, kib in sorted(peaks.items())) or "none read"
    return f"peak RSS per worker ({label}, VmHWM at the end of the load): {each} MiB"


def postgres_url() -> str:
    """The server the load and fault drills use (see the module docstring)."""
    return os.environ.get(
        "IDSVC_BENCH_POSTGRES_URL", os.environ.get("IDSVC_TEST_POSTGRES_URL", POSTGRES_DEFAULT)
    )


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on ``url``, selected through ``search_path``; dropped afterwards."""
    import sqlalchemy

    schema = f"load_{secrets.token_hex(4)}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def run(
    db_url: str,
    tmp: Path,
    *,
    seconds: float,
    floor_seconds: float,
    connections: int = 8,
    workers: int = 2,
    people: int = 2000,
) -> MixedReport:
    prep = load_rig.prepare(tmp / "home", db_url, people=people)
    bare = load_rig.serve_bare(prep, tmp, workers)
    try:
        floor = load_rig.run_wrk(
            bare.base,
            prep,
            tmp,
            seconds=floor_seconds,
            connections=connections,
            phase="F",
            mix={"bare": 1},
        )
        floor_peaks = bare.peak_rss()
    finally:
        bare.stop()
    served = load_rig.serve_idsvc(prep, tmp / "serve.log", workers)
    try:
        load = load_rig.run_wrk(
            served.base, prep, tmp, seconds=seconds, connections=connections, phase="A"
        )
        peaks = served.peak_rss()
    finally:
        log = served.stop()
    stored = load_rig.stored(prep, "A")
    return MixedReport(floor, load, stored, load_rig.problems_in_log(log), floor_peaks, peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--floor-seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--people", type=int, default=2000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="load-mixed-") as tmp,
        postgres_schema(postgres_url()) as db,
    ):
        report = run(
            db,
            Path(tmp),
            seconds=args.seconds,
            floor_seconds=args.floor_seconds,
            connections=args.connections,
            workers=args.workers,
            people=args.people,
        )
    print(
        f"PostgreSQL, idsvc serve --workers {args.workers}, wrk {args.connections} connections "
        f"(one per thread), {args.seconds:.0f} s mixed (floor {args.floor_seconds:.0f} s)"
    )
    for line in report.lines():
        print(line)
    sys.exit(0 if not report.failures else 1)


if __name__ == "__main__":
    main()
