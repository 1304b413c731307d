"""Per-person serialisation of the register's writes, the same on SQLite and PostgreSQL.

Every write whose rules read a person's stored state (an HR import or sync, a status
correction, an issuance, a reinstatement) takes that person's lock *before* it reads the state
and keeps it until it commits. Without it, two HR writers each read "active", one writes
"deceased" and the other, still judging by what it read, writes "active" over it: the dead
come back to the payroll. With it, the second writer reads what the first committed.

- PostgreSQL: ``SELECT … FOR UPDATE`` of the ``civil_servants`` rows, in employee-id order, so
  that two writers of sorted batches never wait on each other in a cycle. Row locks live in the
  rows, not in the server's lock table, so a whole-register import may hold 300,000 of them.
  Under READ COMMITTED the locked read returns the newest committed version of each row, which
  is the version the rules must judge.
- SQLite: one writer at a time for the whole file. What matters is *when* the write lock is
  taken: pysqlite opens its transaction only at the first INSERT/UPDATE, so reads before that
  hold nothing and may be stale by the time the write lands. ``hold_write_lock`` issues
  ``BEGIN IMMEDIATE`` when no transaction is open yet, so the reads that follow are the
  writer's own (waiting up to the busy timeout for another writer to finish).

A lock cycle that PostgreSQL still finds (a streamed import locks its chunks in file order; a
writer of several chunks takes the change feed's and the audit log's heads between them) is
broken by aborting one transaction; ``idsvc.storage.db`` turns that into ``ConcurrentUpdate``,
which the API answers with 409 ``CONCURRENT_UPDATE`` and nothing stored.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.storage.tables import CivilServantRow

__all__ = ["hold_write_lock", "lock_servant", "lock_servants"]


def hold_write_lock(session: Session) -> None:
    """On SQLite, make sure this transaction holds the database's write lock from now on."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    dbapi = connection.connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def lock_servants(session: Session, employee_ids: Iterable[str]) -> dict[str, CivilServantRow]:
    """Lock these people (those in the register) and return their rows as stored now."""
    hold_write_lock(session)
    wanted = sorted(set(employee_ids))
    if not wanted:
        return {}
    rows = session.scalars(
        select(CivilServantRow)
        .where(CivilServantRow.employee_id.in_(wanted))
        .order_by(CivilServantRow.employee_id)
        .with_for_update()
        # The session may hold an older copy of a row from before the lock: refresh it.
        .execution_options(populate_existing=True)
    )
    return {row.employee_id: row for row in rows}


def lock_servant(session: Session, employee_id: str) -> CivilServantRow | None:
    """Lock one person and return the row as stored now, or None if not in the register."""
    return lock_servants(session, [employee_id]).get(employee_id)
