"""The operations feature: one method per ``idsvc`` operations command (and the API's health).

They use the shared infrastructure (database, settings, key rings, signers) and take ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

from idsvc import DEFAULT_ISSUER
from idsvc.audit import chain as audit
from idsvc.credentials import issuers
from idsvc.credentials.infrastructure import Infrastructure
from idsvc.operations import backup, publish, sweeper
from idsvc.operations.readiness import Readiness
from idsvc.register import contracts
from idsvc.storage.db import check_connection, current_revision, require_current_schema
from idsvc.storage.schema import SchemaState, UpgradeResult, schema_state, upgrade_schema


@dataclass(frozen=True)
class RestoreOutcome:
    report: backup.RestoreReport
    audit: audit.AuditCheck
    schema: SchemaState


class Operations:
    def __init__(self, infra: Infrastructure) -> None:
        self.infra = infra

    @cached_property
    def readiness(self) -> Readiness:
        """Readiness (``/readyz``), its report kept ``IDSVC_READINESS_CACHE`` seconds."""
        return Readiness(self.infra, cache_seconds=self.infra.settings.readiness_cache)

    def health(self) -> dict[str, str]:
        self.infra.require_ready()
        check_connection(self.infra.db.engine)
        return {"status": "ok"}

    def db_status(self) -> SchemaState:
        return schema_state(self.infra.db.engine)

    def db_upgrade(self, target: str = "head") -> UpgradeResult:
        return upgrade_schema(self.infra.db.engine, target)

    def backup(self, out: Path, *, now: datetime, pg_bindir: Path | None) -> backup.BackupReport:
        engine = self.infra.db.engine
        require_current_schema(engine)  # a half-migrated database restores nowhere useful
        return backup.create_backup(
            engine,
            self.infra.settings.keys_dir,
            out,
            revision=current_revision(engine),
            now=now,
            pg_bindir=pg_bindir,
        )

    def restore(self, path: Path, *, force: bool, pg_bindir: Path | None) -> RestoreOutcome:
        """Restore, then prove it: the audit chain verifies and the schema state is known."""
        engine = self.infra.db.engine
        report = backup.restore_backup(
            engine, self.infra.settings.keys_dir, path, force=force, pg_bindir=pg_bindir
        )
        with self.infra.db.transaction() as session:
            check = audit.verify_chain(session)
        return RestoreOutcome(report=report, audit=check, schema=schema_state(engine))

    def sweep(self, *, actor: str, now: datetime) -> int:
        """Close every overdue unconfirmed issuance, one batch per transaction."""
        require_current_schema(self.infra.db.engine)
        total = 0
        while True:
            with self.infra.db.transaction() as session:
                closed = sweeper.sweep_batch(session, actor=actor, now=now)
            total += closed
            if closed < sweeper.SWEEP_BATCH:
                return total

    def end_contracts(self, *, actor: str, now: datetime) -> int:
        """Turn every contract that has ended into the status ``contract_ended``, as an HR
        import would (``idsvc.register.contracts``), one batch per transaction."""
        require_current_schema(self.infra.db.engine)
        total = 0
        while True:
            with self.infra.db.transaction() as session:
                done = contracts.end_contracts_batch(session, actor=actor, now=now)
            if done is None:
                return total
            total += done.status_changes
            # A batch that changed nobody would be found again: stop rather than spin.
            if done.rows < contracts.BATCH or done.status_changes == 0:
                return total

    def expire_approvals(self, *, actor: str, now: datetime) -> int:
        """Close every pending approval past its time limit, one batch per transaction."""
        require_current_schema(self.infra.db.engine)
        total = 0
        while True:
            with self.infra.db.transaction() as session:
                closed = sweeper.expire_approvals_batch(session, actor=actor, now=now)
            total += closed
            if closed < sweeper.SWEEP_BATCH:
                return total

    def delete_expired_wallet_rows(self, *, now: datetime) -> int:
        """Delete holder sessions and wallet nonces past their end (idsvc.operations.sweeper)."""
        require_current_schema(self.infra.db.engine)
        with self.infra.db.transaction() as session:
            return sweeper.delete_expired_wallet_rows(session, now=now)

    def publish(self, out: Path, *, now: datetime) -> publish.PublishReport:
        svc = self.infra
        require_current_schema(svc.db.engine)
        with svc.db.transaction() as session:
            return publish.publish(
                session,
                issuers.load_issuers(session, svc.rings),
                svc.signer,
                out=out,
                now=now,
                ttl=svc.settings.status_list_ttl,
                lifetime=svc.settings.status_list_lifetime,
                default_slug=DEFAULT_ISSUER,
                private=svc.settings.home,
            )
