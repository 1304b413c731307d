"""Two concurrent issuances that draw the same random status index both succeed: the loser
of the race for the slot draws again (real threads, each with its own connection, on
PostgreSQL, where the second insert waits on the first one's row lock and then fails)."""

from __future__ import annotations

import secrets
import threading
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from idsvc.config import Settings
from idsvc.credentials import status_lists as status_store
from idsvc.services import Services
from idsvc.storage.tables import CredentialRow
from tests.support.settings import NOW, make_service

ACTIVE = ("KH-MCS-010002", "LA-MOHA-000101", "LA-MOHA-000102")


@pytest.fixture
def db_url(postgres_db: str) -> str:
    """PostgreSQL only: SQLite serialises writers, so this race cannot happen there."""
    return postgres_db


def test_concurrent_issuances_drawing_the_same_index_both_succeed(
    service: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.credentials.issue(ACTIVE[2], actor="desk", now=NOW)  # the list both will draw from
    both_drew = threading.Barrier(2, timeout=30)
    first_draw: set[int] = set()
    lock = threading.Lock()

    def randbelow(n: int) -> int:
        # Each thread's first draw is index 7, and neither inserts before both have checked
        # that 7 is free: the collision that random draws make rare but certain at scale.
        me = threading.get_ident()
        with lock:
            first = me not in first_draw
            first_draw.add(me)
        if first:
            both_drew.wait()
            return 7
        return secrets.randbelow(n)

    monkeypatch.setattr(
        status_store, "secrets", SimpleNamespace(randbelow=randbelow, token_hex=secrets.token_hex)
    )
    results: dict[str, object] = {}

    def issue(employee_id: str) -> None:
        svc = make_service(settings)  # its own engine and connection, like another worker
        try:
            results[employee_id] = svc.credentials.issue(employee_id, actor="desk", now=NOW)
        except Exception as exc:  # the assertion below names it
            results[employee_id] = exc
        finally:
            svc.infra.db.dispose()

    threads = [threading.Thread(target=issue, args=(e,)) for e in ACTIVE[:2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(not isinstance(r, Exception) for r in results.values()), results
    with service.infra.db.transaction() as session:
        rows = session.execute(
            select(CredentialRow.status_list_id, CredentialRow.status_idx).where(
                CredentialRow.employee_id.in_(ACTIVE[:2])
            )
        ).all()
    assert len(rows) == 2 and len(set(rows)) == 2
    assert (rows[0][0], 7) in rows or (rows[1][0], 7) in rows  # one of them kept index 7
    service.audit.verify_chain()
