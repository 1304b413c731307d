"""Fixed-window rate limits shared by every worker and machine, counted in the database.

The count lives in ``rate_windows`` (one row per caller and window), updated with
``INSERT .. ON CONFLICT DO UPDATE SET count = count + n .. RETURNING count`` (SQLite ≥ 3.35
and PostgreSQL), so concurrent workers add up without a lock of ours. Redis is not needed.

Why not one upsert per request: a commit per request (an fsync on SQLite) costs more than the
verification it guards. Each worker therefore counts locally and adds its count to the
database row when its last look at the row is over ``sync_interval`` seconds old (default
1 s; 0 = every request), and decides on (database count at that look + its own count since).
The bound: a worker sees the other workers' requests at most ``sync_interval`` seconds late,
so a caller can exceed the limit by what it sends to the *other* workers within that time
(never more than workers × limit per window). A fixed window also lets a caller send up to
twice the limit across a window edge; acceptable for abuse control. Old windows are deleted
when a caller's next window starts, and by ``purge``.

Errors: ``idsvc.errors.RateLimited`` (with ``retry_after`` seconds).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete
from sqlalchemy.dialects import postgresql, sqlite

from idsvc.errors import RateLimited
from idsvc.storage.client_tables import RateWindowRow
from idsvc.storage.db import Database

KEY_LENGTH = 96


@dataclass(frozen=True)
class Limit:
    requests: int  # allowed per window; 0 switches the limit off
    window_s: int = 60


@dataclass
class _Seen:
    shared: int = 0  # the database count at our last look (ours included)
    unsynced: int = 0  # our requests since then
    looked_at: float = float("-inf")  # monotonic time of that look (or of the one under way)
    in_flight: int = 0  # requests being added to the database by the look under way


class RateLimits:
    def __init__(
        self,
        db: Database,
        *,
        sync_interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._interval = sync_interval
        self._clock = monotonic
        dialect = db.engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int], _Seen] = {}

    def _add(self, key: str, window: int, n: int) -> int:
        """Add ``n`` to the window's row; return its new count."""
        stmt = (
            self._insert(cast(Table, RateWindowRow.__table__))  # Core: no ORM bulk path
            .values(key=key, window=window, count=n)
            .on_conflict_do_update(
                index_elements=["key", "window"], set_={"count": RateWindowRow.count + n}
            )
            .returning(RateWindowRow.count)
        )
        with self._db.transaction() as session:
            count = int(session.execute(stmt).scalar_one())
            if count == n:  # first requests of a new window: drop this caller's old windows
                session.execute(
                    delete(RateWindowRow).where(
                        RateWindowRow.key == key, RateWindowRow.window < window
                    )
                )
        return count

    def needs_database(self, key: str, limit: Limit, now: datetime) -> bool:
        """Whether the next ``hit`` for ``key`` will go to the database (its last look is
        stale), so that an async caller can run it off the event loop only then."""
        if limit.requests <= 0:
            return False
        window = int(now.timestamp() // limit.window_s) * limit.window_s
        with self._lock:
            seen = self._seen.get((key[:KEY_LENGTH], window))
            return seen is None or self._clock() - seen.looked_at >= self._interval

    def hit(self, key: str, limit: Limit, now: datetime) -> int:
        """Count one request for ``key``; return the count so far in this window (as this
        worker knows it). Raise ``RateLimited`` once that count exceeds the limit."""
        if limit.requests <= 0:
            return 0
        key = key[:KEY_LENGTH]
        ts = now.timestamp()
        window = int(ts // limit.window_s) * limit.window_s  # the window's start (epoch s)
        mono = self._clock()
        with self._lock:
            seen = self._seen.setdefault((key, window), _Seen())
            seen.unsynced += 1
            stale = mono - seen.looked_at >= self._interval
            if stale:
                # Claim this look now: the requests that arrive while it runs count locally
                # instead of each starting its own write (a stampede of commits under load).
                to_add, seen.unsynced, seen.looked_at = seen.unsynced, 0, mono
                seen.in_flight += to_add
            count = seen.shared + seen.in_flight + seen.unsynced
        if stale:
            try:
                shared = self._add(key, window, to_add)
            except Exception:
                with self._lock:
                    seen.in_flight -= to_add
                    seen.unsynced += to_add  # not counted yet: try again next time
                    seen.looked_at = float("-inf")
                raise
            with self._lock:
                seen.in_flight -= to_add
                seen.shared = max(seen.shared, shared)  # looks may finish out of order
                count = seen.shared + seen.in_flight + seen.unsynced
                if len(self._seen) > 10_000:  # forget windows that have ended
                    for k in [k for k in self._seen if k[1] < window]:
                        del self._seen[k]
        if count > limit.requests:
            raise RateLimited(max(1, math.ceil(window + limit.window_s - ts)))
        return count

    def purge(self, now: datetime, *, older_than_s: int = 3600) -> int:
        """Delete windows that started more than ``older_than_s`` ago."""
        cutoff = int(now.timestamp()) - older_than_s
        with self._db.transaction() as session:
            result = session.execute(delete(RateWindowRow).where(RateWindowRow.window < cutoff))
            return int(getattr(result, "rowcount", 0) or 0)
