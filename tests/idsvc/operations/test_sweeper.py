"""The sweeper expires unconfirmed issuances, each audited, and leaves the rest alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from idsvc.config import Settings
from idsvc.credentials.issuance import PENDING_TTL, begin_issuance
from idsvc.services import Services
from idsvc.storage.tables import AuditEventRow, CredentialRow
from tests.support.cli_runner import Cli
from tests.support.settings import NOW

ACTIVE = ("KH-MCS-010002", "LA-MOHA-000101", "LA-MOHA-000102")


def _begin(service: Services, employee_id: str, at: timedelta) -> str:
    with service.infra.db.transaction() as session:
        issuer = service.infra.issuer(session)
        return begin_issuance(
            session,
            employee_id=employee_id,
            issuer=issuer,
            signer=service.infra.signer(issuer),
            policy=service.credentials.policy,
            actor="desk-7",
            now=NOW + at,
        ).credential_id


def _state(service: Services, credential_id: str) -> tuple[str, str | None]:
    with service.infra.db.transaction() as session:
        row = session.get(CredentialRow, credential_id)
        assert row is not None
        return row.state, row.state_reason


def test_sweep_expires_only_overdue_pending_issuances(service: Services) -> None:
    stale = _begin(service, ACTIVE[0], timedelta(0))
    fresh = _begin(service, ACTIVE[1], timedelta(minutes=10))
    live = service.credentials.issue(ACTIVE[2], actor="desk", now=NOW).id
    sweep_at = NOW + PENDING_TTL + timedelta(minutes=1)

    assert service.operations.sweep(actor="sweeper", now=sweep_at) == 1
    assert _state(service, stale) == ("abandoned", "expired unconfirmed")
    assert _state(service, fresh)[0] == "pending"  # its desk still has time
    assert _state(service, live)[0] == "live"
    with service.infra.db.transaction() as session:
        event = session.execute(
            select(AuditEventRow).where(
                AuditEventRow.target_id == stale, AuditEventRow.action == "credential.abandon"
            )
        ).scalar_one()
    assert event.actor == "sweeper" and event.details == {"reason": "expired unconfirmed"}
    assert service.operations.sweep(actor="sweeper", now=sweep_at) == 0  # idempotent
    assert service.audit.verify_chain().events > 0


def test_sweep_command(service: Services, settings: Settings) -> None:
    stale = _begin(service, ACTIVE[0], -PENDING_TTL - timedelta(days=1))
    cli = Cli(settings.home, str(settings.database_url))
    proc = cli("sweep", env={"IDSVC_OPERATOR": "sweeper@ops"})
    assert proc.returncode == 0, proc.stderr
    assert "1 unconfirmed issuance(s) expired" in proc.stdout
    assert _state(service, stale) == ("abandoned", "expired unconfirmed")


def test_a_failed_issuance_transaction_leaves_no_pending_row(service: Services) -> None:
    # The status-slot savepoint must not commit on its own (pysqlite would, at RELEASE of an
    # outermost SAVEPOINT): a transaction that fails after begin_issuance leaves nothing.
    class Boom(Exception):
        pass

    with pytest.raises(Boom), service.infra.db.transaction() as session:
        issuer = service.infra.issuer(session)
        begin_issuance(
            session,
            employee_id=ACTIVE[0],
            issuer=issuer,
            signer=service.infra.signer(issuer),
            policy=service.credentials.policy,
            actor="desk-7",
            now=NOW,
        )
        raise Boom
    assert service.credentials.credentials_of(ACTIVE[0]) == []
    assert service.operations.sweep(actor="sweeper", now=NOW + PENDING_TTL * 2) == 0
