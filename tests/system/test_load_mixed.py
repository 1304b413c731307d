"""Mixed traffic against ``idsvc serve --workers 2`` on PostgreSQL for a few seconds, from wrk
(the short version of ``bench/load_mixed.py``, which runs the same code for 60 s)."""

from __future__ import annotations

from pathlib import Path

from tests.support.bench import bench_module


def test_mixed_load_on_two_workers_loses_nothing(tmp_path: Path, postgres_db: str) -> None:
    load_mixed = bench_module("load_mixed")
    report = load_mixed.run(
        postgres_db, tmp_path, seconds=4, floor_seconds=2, connections=4, people=200
    )
    print("\n".join(report.lines()))
    assert report.failures == []
    load = report.load
    # Every kind of the mix was served, with its expected answer (not just "no 5xx").
    assert load.counts["verify_jwt"]["200"] > 0 and load.counts["verify_qr"]["200"] > 0
    assert load.counts["payroll"]["200"] > 0 and load.counts["challenge"]["201"] > 0
    assert load.counts["jwks_inm"]["304"] > 0 and load.counts["status_inm"]["304"] > 0
    # HR updates: each answered one is stored, once, with its own audit event.
    assert len(load.hr_ok) > 10
    assert load.hr_ok <= report.stored.people <= load.hr_sent
    assert report.stored.audit_missing(report.stored.people) == set()
    assert report.stored.audit_ok
    # The floor really ran, in the same run.
    assert report.floor.counts["bare"]["200"] > 0
    # Each worker's peak RSS was read while it ran (two workers each), and is printed.
    assert len(report.peak_rss) == 2 and len(report.floor_peak_rss) == 2
    assert all(kib > 10_000 for kib in [*report.peak_rss.values(), *report.floor_peak_rss.values()])
    assert any(line.startswith("peak RSS per worker (idsvc") for line in report.lines())
