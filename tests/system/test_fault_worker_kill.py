"""``kill -9`` of one of two workers under mixed load (the short version of
``bench/fault_worker_kill.py``): the other serves, uvicorn's supervisor replaces the dead one,
only the killed worker's in-flight requests fail, and no HR update is lost or doubled."""

from __future__ import annotations

from pathlib import Path

from idsvc.cli.server import WORKER_HEALTHCHECK
from tests.support.bench import bench_module


def test_killed_worker_is_replaced_and_nothing_is_lost(tmp_path: Path, postgres_db: str) -> None:
    fault = bench_module("fault_worker_kill")
    # Stopped for a second first (a hung worker): the supervisor is then waiting for its answer
    # to a health ping when it dies, the case where uvicorn alone waited the full timeout.
    result = fault.drill(postgres_db, tmp_path, seconds=8, kill_at=2, connections=4, hang_first=1.0)
    print("\n".join(result.lines()))
    assert result.failures == []
    # A new process took the dead one's place and served a connection of its own.
    assert result.victim not in result.workers_after
    assert len(result.workers_after) == 2 and result.replacement_answered
    assert result.replaced_after is not None and result.replaced_after < WORKER_HEALTHCHECK / 2
    # Fresh connections during the gap were all answered (by the surviving worker).
    assert result.gap_probes and set(result.gap_probes) == {200}
    # What failed is bounded by what the dead worker held; HR updates it swallowed were sent
    # again with their Idempotency-Key and stored once.
    load = result.load
    assert load.lost() <= result.victim_connections
    assert load.hr_ok <= result.kept.people <= load.hr_sent
    assert result.kept.audit_missing(result.kept.people) == set()
