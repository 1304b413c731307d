"""The audit feature: checking the hash chain of the audit log (``idsvc audit verify``).

``audit`` is part of the base every feature uses, so it takes the database and the readiness
check it needs rather than the shared infrastructure (which lives above it, in
``idsvc.credentials.infrastructure``).
"""

from __future__ import annotations

from collections.abc import Callable

from idsvc.audit import chain
from idsvc.storage.db import Database


class Audit:
    def __init__(self, db: Database, require_ready: Callable[[], None]) -> None:
        self.db = db
        self._require_ready = require_ready

    def verify_chain(self) -> chain.AuditCheck:
        self._require_ready()
        with self.db.transaction() as session:
            return chain.verify_chain(session)
