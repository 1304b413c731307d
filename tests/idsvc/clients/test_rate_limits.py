"""Rate-limit syncs under load: while one request adds its worker's count to the database, the
requests arriving meanwhile count in memory instead of each starting a write of their own (a
stampede of commits that once cost more than the verifications it guarded), and none of them
is lost from the shared count."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event, select

from idsvc.clients.rate_limits import Limit, RateLimits
from idsvc.services import Services
from idsvc.storage.client_tables import RateWindowRow
from tests.support.settings import NOW


def test_requests_during_a_sync_count_locally_and_reach_the_database(
    service: Services,
) -> None:
    clock = [100.0]
    limits = RateLimits(service.infra.db, sync_interval=1.0, monotonic=lambda: clock[0])
    limit = Limit(1000)
    writes: list[str] = []
    in_sync, release = threading.Event(), threading.Event()

    def pause_first_write(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "rate_windows" in statement and statement.lstrip().upper().startswith("INSERT"):
            writes.append(statement)
            if len(writes) == 1:  # hold the first sync open while others arrive
                in_sync.set()
                assert release.wait(10)

    event.listen(service.infra.db.engine, "before_cursor_execute", pause_first_write)
    try:
        first = threading.Thread(target=limits.hit, args=("addr:a", limit, NOW))
        first.start()
        assert in_sync.wait(10)
        counts = [limits.hit("addr:a", limit, NOW) for _ in range(50)]  # none may block
        release.set()
        first.join(10)
        assert writes == writes[:1], "requests during a sync started syncs of their own"
        assert counts == list(range(2, 52))  # the in-flight request is counted too
        clock[0] += 1.0  # the next look is due
        assert limits.hit("addr:a", limit, NOW) == 52
    finally:
        event.remove(service.infra.db.engine, "before_cursor_execute", pause_first_write)
    assert len(writes) == 2
    with service.infra.db.transaction() as session:
        stored = session.execute(select(RateWindowRow.count)).scalar_one()
    assert stored == 52  # every request reached the shared count
