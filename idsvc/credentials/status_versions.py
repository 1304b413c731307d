"""Each status list's content version: raised by every commit that changes a bit of the list.

A published status list is signed once per (version, minute) and then served from memory, so
the version must move with every credential state change, whichever use case made it (HR
import, operator, issuance, sweeper). Hooking the session's flushes instead of each use case
means a new code path that changes ``CredentialRow.state`` through the ORM cannot forget it,
and a bulk ORM update is refused. The one writer that goes to the connection instead (the
issuance's insert, supersession and going live, ``idsvc.credentials.issuance``, for speed)
notes its lists with ``note_state_change``; tests/idsvc/credentials/test_issuance.py fails if
it does not.

The bump is the last statement of the transaction (``before_commit``): on PostgreSQL the
status list row stays locked only for the commit itself, not for a whole HR import, and a
transaction bumping several lists locks them in id order, so two of them cannot deadlock.
Noted lists are not forgotten on a savepoint's rollback: a needless bump costs one signing,
a missed one would serve a revoked credential as valid.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, event, inspect, update
from sqlalchemy.orm import Session

from idsvc.storage.tables import CredentialRow, StatusListRow

_CHANGED = "idsvc.status_lists_changed"
# Built once, run on the session's connection: every issuance commits through here, and the
# ORM's per-statement work cost more than the UPDATE itself.
_LISTS = cast(Table, StatusListRow.__table__)
_BUMP = (
    update(_LISTS).where(_LISTS.c.id == bindparam("list_id")).values(version=_LISTS.c.version + 1)
)


def _changed_lists(session: Session) -> set[int]:
    changed: set[int] = session.info.setdefault(_CHANGED, set())
    return changed


def note_state_change(session: Session, status_list_id: int) -> None:
    """For a credential's state written on the connection (Core), which the flush hook below
    never sees: its list's version moves at commit all the same."""
    _changed_lists(session).add(status_list_id)


@event.listens_for(Session, "before_flush")
def _note_state_changes(session: Session, _context: Any, _instances: Any) -> None:
    for row in session.new:
        if isinstance(row, CredentialRow):
            _changed_lists(session).add(row.status_list_id)
    for row in session.dirty:
        if isinstance(row, CredentialRow):
            history = inspect(row).attrs.state.history
            if history.has_changes():
                _changed_lists(session).add(row.status_list_id)


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_credential_writes(state: Any) -> None:
    # A bulk UPDATE/DELETE of credentials through the session never reaches before_flush, so its
    # list would keep serving the old bits: change credentials row by row (as every use case does).
    if (state.is_update or state.is_delete) and any(
        mapper.class_ is CredentialRow for mapper in state.all_mappers
    ):
        raise RuntimeError("bulk writes to credentials would bypass the status-list versions")


@event.listens_for(Session, "before_commit")
def _bump_versions(session: Session) -> None:
    session.flush()  # so that the last changes are noted too
    changed = session.info.pop(_CHANGED, set())
    if not changed:
        return
    conn = session.connection()
    for list_id in sorted(changed):
        conn.execute(_BUMP, {"list_id": list_id})
