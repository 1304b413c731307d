"""The audit chain vouches for current state: replaying its events must give what is stored.

An event proves a change happened; without this check, someone who edits a row directly
(a revoked credential back to ``live``, a deceased person back to ``active``) leaves the chain
intact. ``StateReplay`` follows the events as ``audit.verify_chain`` walks them and then names
every credential and person whose stored state disagrees.

- **Credentials**: each credential event sets the state it records (``credential.begin`` →
  pending, ``credential.issue`` → live, ``credential.supersede`` → superseded,
  ``credential.abandon`` → abandoned, revoke/suspend/reinstate → their ``to``). A stored
  credential with no events, or in another state, is named, as is one the events know but the
  table lost.
- **People**: a person's stored status must be the newest entry of their status history, and
  the history itself must be vouched for: each ``hr.import`` event carries the count and
  SHA-256 of the history rows it wrote (``history_digest``), and each correction event stands
  for one row. (Imports recorded before that digest existed are vouched for by count only.)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.storage.tables import CivilServantRow, CredentialRow, StatusHistoryRow

_SETS_STATE = {
    "credential.begin": "pending",
    "credential.issue": "live",
    "credential.supersede": "superseded",
    "credential.abandon": "abandoned",
}
_CORRECTIONS = ("hr.correct", "register.correct_status")
# Names listed in one message; the count says how many more.
_SHOWN = 20


def history_digest(rows: Iterable[tuple[str, str, date]]) -> str:
    """SHA-256 over (employee id, status, status date) of history rows, order-independent."""
    lines = sorted(f"{e}\t{s}\t{d.isoformat()}" for e, s, d in rows)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


class StateReplay:
    def __init__(self) -> None:
        self.credentials: dict[str, str] = {}
        self.imports: dict[str, tuple[int, str | None]] = {}
        self.corrections: Counter[tuple[str, str]] = Counter()

    def follow(self, action: str, target_id: str, details: Mapping[str, Any]) -> None:
        if action.startswith("credential."):
            state = _SETS_STATE.get(action) or details.get("to")
            if isinstance(state, str):
                self.credentials[target_id] = state
        elif action == "hr.import":
            source = details.get("history_source")
            if isinstance(source, str):
                count, digest = details.get("history_rows", 0), details.get("history_digest")
                self.imports[source] = (int(count), digest if isinstance(digest, str) else None)
        elif action in _CORRECTIONS:
            status = details.get("to", details.get("status"))
            if isinstance(status, str):
                self.corrections[(target_id, status)] += 1

    def disagreements(self, session: Session) -> list[str]:
        found = self._credentials(session) + self._people(session)
        if len(found) > _SHOWN:
            found = [*found[:_SHOWN], f"... and {len(found) - _SHOWN} more"]
        return found

    def _credentials(self, session: Session) -> list[str]:
        found: list[str] = []
        seen: set[str] = set()
        for cred_id, employee_id, state in session.execute(
            select(CredentialRow.id, CredentialRow.employee_id, CredentialRow.state).order_by(
                CredentialRow.id
            )
        ):
            seen.add(cred_id)
            expected = self.credentials.get(cred_id)
            if expected is None:
                found.append(f"credential {cred_id} ({employee_id}) has no audit event")
            elif expected != state:
                found.append(
                    f"credential {cred_id} ({employee_id}) is stored as {state!r}, "
                    f"the audit log says {expected!r}"
                )
        for cred_id in sorted(set(self.credentials) - seen):
            found.append(f"credential {cred_id} is in the audit log but missing from the table")
        return found

    def _people(self, session: Session) -> list[str]:
        found: list[str] = []
        latest: dict[str, str] = {}
        by_source: dict[str, list[tuple[str, str, date]]] = {}
        corrections: Counter[tuple[str, str]] = Counter()
        for employee_id, status, status_date, source in session.execute(
            select(
                StatusHistoryRow.employee_id,
                StatusHistoryRow.status,
                StatusHistoryRow.status_date,
                StatusHistoryRow.source,
            ).order_by(StatusHistoryRow.id)
        ):
            latest[employee_id] = status
            if source.startswith("hr-import:"):
                by_source.setdefault(source, []).append((employee_id, status, status_date))
            else:
                corrections[(employee_id, status)] += 1
        for source, rows in sorted(by_source.items()):
            vouched = self.imports.get(source)
            if vouched is None:
                continue  # written before imports recorded their history in the audit log
            count, digest = vouched
            if count != len(rows) or (digest is not None and digest != history_digest(rows)):
                found.append(f"status history of import {source} differs from its audit event")
        for (employee_id, status), n in sorted((corrections - self.corrections).items()):
            found.append(
                f"person {employee_id}: {n} status change(s) to {status!r} with no audit event"
            )
        for employee_id, status in session.execute(
            select(CivilServantRow.employee_id, CivilServantRow.status).order_by(
                CivilServantRow.employee_id
            )
        ):
            recorded = latest.get(employee_id)
            if recorded != status:
                found.append(
                    f"person {employee_id} is stored as {status!r}, the status history says "
                    f"{recorded!r}"
                )
        return found
