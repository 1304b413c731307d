"""The operations use cases over one ``IdService``: one method per ``idsvc`` command.

They reuse the service's database, settings, key rings and signers, and take ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from idsvc.audit import chain as audit
from idsvc.credentials import issuers
from idsvc.operations import backup, publish, sweeper
from idsvc.service import DEFAULT_ISSUER, IdService
from idsvc.storage.db import current_revision, require_current_schema
from idsvc.storage.schema import SchemaState, UpgradeResult, schema_state, upgrade_schema


@dataclass(frozen=True)
class RestoreOutcome:
    report: backup.RestoreReport
    audit: audit.AuditCheck
    schema: SchemaState


class Operations:
    def __init__(self, service: IdService) -> None:
        self.service = service

    def db_status(self) -> SchemaState:
        return schema_state(self.service.db.engine)

    def db_upgrade(self, target: str = "head") -> UpgradeResult:
        return upgrade_schema(self.service.db.engine, target)

    def backup(self, out: Path, *, now: datetime, pg_bindir: Path | None) -> backup.BackupReport:
        engine = self.service.db.engine
        require_current_schema(engine)  # a half-migrated database restores nowhere useful
        return backup.create_backup(
            engine,
            self.service.settings.keys_dir,
            out,
            revision=current_revision(engine),
            now=now,
            pg_bindir=pg_bindir,
        )

    def restore(self, path: Path, *, force: bool, pg_bindir: Path | None) -> RestoreOutcome:
        """Restore, then prove it: the audit chain verifies and the schema state is known."""
        engine = self.service.db.engine
        report = backup.restore_backup(
            engine, self.service.settings.keys_dir, path, force=force, pg_bindir=pg_bindir
        )
        with self.service.db.transaction() as session:
            check = audit.verify_chain(session)
        return RestoreOutcome(report=report, audit=check, schema=schema_state(engine))

    def sweep(self, *, actor: str, now: datetime) -> int:
        """Close every overdue unconfirmed issuance, one batch per transaction."""
        require_current_schema(self.service.db.engine)
        total = 0
        while True:
            with self.service.db.transaction() as session:
                closed = sweeper.sweep_batch(session, actor=actor, now=now)
            total += closed
            if closed < sweeper.SWEEP_BATCH:
                return total

    def expire_approvals(self, *, actor: str, now: datetime) -> int:
        """Close every pending approval past its time limit, one batch per transaction."""
        require_current_schema(self.service.db.engine)
        total = 0
        while True:
            with self.service.db.transaction() as session:
                closed = sweeper.expire_approvals_batch(session, actor=actor, now=now)
            total += closed
            if closed < sweeper.SWEEP_BATCH:
                return total

    def publish(self, out: Path, *, now: datetime) -> publish.PublishReport:
        svc = self.service
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
