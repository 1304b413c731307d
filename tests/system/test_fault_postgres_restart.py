"""PostgreSQL stopped and started again under mixed load, idsvc not restarted (the short
version of ``bench/fault_postgres_restart.py``; a private cluster, never the shared one)."""

from __future__ import annotations

from pathlib import Path

from tests.support.bench import bench_module
from tests.support.private_postgres import PrivateCluster


def test_postgres_outage_is_503_then_recovers_without_restart(
    tmp_path: Path, private_postgres: PrivateCluster
) -> None:
    fault = bench_module("fault_postgres_restart")
    result = fault.drill(
        private_postgres, tmp_path, seconds=8, down_at=2, down_for=3, connections=4
    )
    print("\n".join(result.lines()))
    assert result.failures == []
    # While down: every HR update and payroll batch was a quick 503 problem with Retry-After,
    # and /readyz said so too.
    down = result.probes_down
    assert {(p.what, p.status, p.code) for p in down if p.what != "readyz"} == {
        ("hr", 503, "DATABASE_UNAVAILABLE"),
        ("payroll", 503, "DATABASE_UNAVAILABLE"),
    }
    assert all(p.problem for p in down if p.what != "readyz")
    assert any(p.what == "readyz" and p.status == 503 for p in down)
    assert result.refused_ids and not result.refused_but_stored
    # The load saw the outage (503s) and its HR updates all landed once it was over.
    assert result.load.statuses(lambda s: s == 503) > 0
    assert (
        result.load.hr_5xx
        and set(result.load.hr_5xx) - result.load.hr_pending <= result.kept.people
    )
    # Same worker processes before and after: recovery needed no restart.
    assert result.workers_after == result.workers_before
    assert result.recovered_after is not None and result.ready_after is not None
