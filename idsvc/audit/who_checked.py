"""Who checked whom: every verification, card verification and payroll check leaves a row.

A row holds when, what kind of check, the person and credential checked, the caller (API
client or anonymous address) and the result with its reason codes: never the presented
token or card data. Rows older than the retention (``IDSVC_CHECK_RETENTION_DAYS``) are deleted
by ``purge_checks`` (``idsvc audit purge-checks``).

``record_check`` writes a whole batch set-based inside the caller's transaction (one
executemany; ``COPY`` on PostgreSQL), so a 10,000-item payroll batch costs one statement.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from idsvc.errors import UnknownEmployee
from idsvc.storage.bulk import append_rows
from idsvc.storage.client_tables import CheckRow
from idsvc.storage.db import Database
from idsvc.storage.tables import CivilServantRow

log = logging.getLogger("idsvc.audit.who_checked")

KINDS = frozenset({"verification", "card", "payroll"})


@dataclass(frozen=True)
class CheckedBy:
    """The caller of a check: an API client, or an anonymous address."""

    client_id: str | None
    client_name: str | None
    address: str | None


@dataclass(frozen=True)
class CheckRecord:
    """One person checked. ``result`` is a status word (valid, revoked, active, unknown…)."""

    kind: str
    employee_id: str | None
    credential_id: str | None
    result: str
    reasons: Sequence[str] = ()


@dataclass(frozen=True)
class CheckView:
    checked_at: datetime
    kind: str
    employee_id: str | None
    credential_id: str | None
    client_id: str | None
    client_name: str | None
    address: str | None
    result: str
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.isoformat(),
            "kind": self.kind,
            "employee_id": self.employee_id,
            "credential_id": self.credential_id,
            "client_id": self.client_id,
            "client_name": self.client_name,
            "address": self.address,
            "result": self.result,
            "reasons": list(self.reasons),
        }


def record_check(
    session: Session, records: Iterable[CheckRecord], *, by: CheckedBy, now: datetime
) -> int:
    """Append the checks in one multi-row insert (in the caller's transaction); return count."""
    return _append(session, [_row(r, by, now) for r in records])


def _row(r: CheckRecord, by: CheckedBy, now: datetime) -> dict[str, Any]:
    if r.kind not in KINDS:
        raise ValueError(f"unknown check kind {r.kind!r}")
    return {
        "checked_at": now,
        "kind": r.kind,
        "employee_id": r.employee_id,
        "credential_id": r.credential_id,
        "client_id": by.client_id,
        "client_name": by.client_name,
        "address": None if by.client_id else by.address,
        "result": r.result[:32],
        "reasons": " ".join(r.reasons)[:255],
    }


def _append(session: Session, rows: list[dict[str, Any]]) -> int:
    # Not the ORM's bulk path: it asks for every new primary key back (one statement per row
    # on some drivers; 2.9 s for 10,000 rows); COPY on PostgreSQL (idsvc.storage.bulk).
    append_rows(session, cast(Table, CheckRow.__table__), rows)
    return len(rows)


def checks_of(session: Session, employee_id: str, *, limit: int = 1000) -> list[CheckView]:
    """The newest checks of one person first."""
    rows = session.execute(
        select(CheckRow)
        .where(CheckRow.employee_id == employee_id)
        .order_by(CheckRow.checked_at.desc(), CheckRow.id.desc())
        .limit(limit)
    ).scalars()
    return [
        CheckView(
            r.checked_at,
            r.kind,
            r.employee_id,
            r.credential_id,
            r.client_id,
            r.client_name,
            r.address,
            r.result,
            tuple(r.reasons.split()),
        )
        for r in rows
    ]


def purge_checks(session: Session, *, now: datetime, retention: timedelta) -> int:
    """Delete checks older than the retention; return how many."""
    result = session.execute(delete(CheckRow).where(CheckRow.checked_at < now - retention))
    return int(getattr(result, "rowcount", 0) or 0)


class CheckLog:
    """The use cases on the who-checked log (the API and the CLI share them).

    ``record`` is write-behind: a verification answered by the API appends its row to a
    per-process buffer, and a background thread writes the buffer as one multi-row insert every
    ``flush_interval`` seconds (or at once past ``FLUSH_AT`` rows, and at process exit). Why: a
    commit per verification (an fsync on SQLite) costs more than the verification itself. The
    bound: a check appears in the log at most ``flush_interval`` seconds after it was answered;
    a process killed without warning (SIGKILL, power loss) loses at most that much. If the
    database is down, rows wait in memory (at most ``MAX_BUFFERED``; beyond that the oldest are
    dropped and the number dropped is logged). ``flush_interval = 0`` writes every row at once.
    """

    FLUSH_AT = 500
    MAX_BUFFERED = 100_000

    def __init__(self, db: Database, *, flush_interval: float = 1.0) -> None:
        self._db = db
        self._interval = flush_interval
        self._listeners: list[Callable[[list[CheckRecord]], None]] = []
        self._lock = threading.Lock()
        self._pending: list[tuple[CheckRecord, CheckedBy, datetime]] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._exit_hook = False

    @property
    def buffered(self) -> bool:
        """Whether ``record`` only appends to memory (write-behind), never waiting on I/O."""
        return self._interval > 0

    def listen(self, listener: Callable[[list[CheckRecord]], None]) -> None:
        """Also hand every recorded batch to ``listener`` (the API's metrics count checks);
        adding the same listener again changes nothing."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def record(self, records: Iterable[CheckRecord], *, by: CheckedBy, now: datetime) -> None:
        if self._listeners:
            records = list(records)
            for listener in self._listeners:
                listener(records)
        if self._interval <= 0:
            with self._db.transaction() as session:
                record_check(session, records, by=by, now=now)
            return
        with self._lock:
            self._pending.extend((r, by, now) for r in records)
            dropped = len(self._pending) - self.MAX_BUFFERED
            if dropped > 0:
                del self._pending[:dropped]
                log.error("check log: database unreachable, %d oldest rows dropped", dropped)
            full = len(self._pending) >= self.FLUSH_AT
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="check-log", daemon=True)
                self._thread.start()
                if not self._exit_hook:
                    atexit.register(self._flush_at_exit)
                    self._exit_hook = True
        if full:
            self._wake.set()

    def _run(self) -> None:
        """Flush every interval while rows wait; end when the buffer is empty (a new row
        starts a new thread), so an idle process holds no thread and no connection."""
        failing = False
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self.flush()
                failing = False
            except Exception as exc:  # keep the rows; try again next round
                if not failing:  # once per outage, not once a second
                    log.error("check log: flush failed (%s); will retry", type(exc).__name__)
                failing = True
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except Exception as exc:
            log.error("check log: rows lost at exit (%s)", type(exc).__name__)

    def flush(self) -> int:
        """Write every buffered row now; return how many. On error the rows stay buffered."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            # One statement for the whole batch: each answered request has its own time, so
            # grouping by (caller, time) would mean one COPY per row.
            rows = [_row(record, by, now) for record, by, now in batch]
            with self._db.transaction() as session:
                _append(session, rows)
        except Exception:
            with self._lock:
                self._pending[:0] = batch
            raise
        return len(batch)

    def of_holder(self, employee_id: str, *, limit: int = 1000) -> list[CheckView]:
        """Who checked this person, newest first; ``UnknownEmployee`` if not in the register."""
        self.flush()  # this process's own recent checks; other workers' within the interval
        with self._db.transaction() as session:
            if session.get(CivilServantRow, employee_id) is None:
                raise UnknownEmployee(employee_id)
            return checks_of(session, employee_id, limit=limit)

    def purge(self, *, now: datetime, retention_days: int) -> int:
        with self._db.transaction() as session:
            return purge_checks(session, now=now, retention=timedelta(days=retention_days))
