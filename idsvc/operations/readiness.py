"""Readiness: may this process take traffic? (``GET /readyz``; ``/healthz`` only says "alive").

Four named checks, each ``ok`` or not with a short reason an operator can act on:

- ``database``: a connection answers (for SQLite the file must still be there: a pooled
  connection keeps reading a deleted file, so the file is looked at too);
- ``migrations``: the schema is at this idsvc's newest revision (``idsvc db upgrade``);
- ``signing_key``: every issuer's active key signs, and the signature verifies with its
  public key (a missing passphrase, an unplugged HSM or a damaged key file shows here);
- ``status_lists``: the lists ``idsvc publish`` wrote to ``IDSVC_PUBLISHED_DIR`` are not
  about to expire (less than a quarter of their lifetime left means the publisher stopped).
  Without that setting the lists are signed on request by the API and cannot go stale.

A load balancer polls this every few seconds on every worker; the report is kept for
``cache_seconds`` (one computation at a time), so an answer costs microseconds and the database
sees at most one probe per worker per period. Raises nothing: every failure is a failed check.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from idsvc.credentials import issuers
from idsvc.credentials.infrastructure import Infrastructure
from idsvc.storage.db import (
    SchemaOutdated,
    StorageError,
    check_connection,
    current_revision,
    require_current_schema,
)
from keys.errors import KeysError
from keys.signer import verify_signature

PUBLISHED_INDEX = "index.json"
PROBE = b"idsvc readiness probe"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ReadinessReport:
    checks: tuple[Check, ...]
    checked_at: datetime

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not ready",
            "checked_at": self.checked_at.isoformat(),
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
        }


@dataclass(frozen=True)
class PublishedList:
    name: str
    exp: datetime
    signed_at: datetime


def published_lists(folder: Path, *, lifetime: timedelta) -> list[PublishedList]:
    """The status lists in ``folder/index.json`` (written by ``idsvc publish``).

    Raises ``ValueError`` (with what is wrong) when the index is missing or malformed.
    """
    try:
        index = json.loads((folder / PUBLISHED_INDEX).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no {PUBLISHED_INDEX} in the published folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{PUBLISHED_INDEX} unreadable ({type(exc).__name__})") from None
    lists = index.get("status_lists") if isinstance(index, dict) else None
    if not isinstance(lists, dict):
        raise ValueError(f"{PUBLISHED_INDEX} has no status_lists")
    found = []
    for name, entry in sorted(lists.items()):
        exp = entry.get("exp") if isinstance(entry, dict) else None
        if not isinstance(exp, int):
            raise ValueError(f"{PUBLISHED_INDEX}: list {name!r} has no exp")
        at = datetime.fromtimestamp(exp).astimezone()
        found.append(PublishedList(str(name), at, at - lifetime))
    return found


class Readiness:
    """The readiness use case over the shared infrastructure; one instance per worker."""

    def __init__(self, infra: Infrastructure, *, cache_seconds: float = 5.0) -> None:
        self._infra = infra
        self._cache = timedelta(seconds=cache_seconds)
        self._lock = threading.Lock()
        self._last: ReadinessReport | None = None

    def report(self, *, now: datetime) -> ReadinessReport:
        with self._lock:  # one probe at a time; the others get its result
            last = self._last
            if last is not None and timedelta(0) <= now - last.checked_at < self._cache:
                return last
            report = ReadinessReport(self._run_checks(now), now)
            self._last = report
            return report

    def _run_checks(self, now: datetime) -> tuple[Check, ...]:
        database = self._database()
        if not database.ok:  # the others need the database: say so instead of timing out
            skipped = "not checked: the database is unreachable"
            return (
                database,
                Check("migrations", False, skipped),
                Check("signing_key", False, skipped),
                self._status_lists(now),
            )
        return (database, self._migrations(), self._signing_key(), self._status_lists(now))

    def _database(self) -> Check:
        engine = self._infra.db.engine
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            path = Path(str(engine.url.database).removeprefix("file:"))
            if not path.is_file():
                return Check("database", False, "the SQLite database file is missing")
        try:
            check_connection(engine)
        except StorageError as exc:
            return Check("database", False, type(exc).__name__)
        return Check("database", True, engine.dialect.name)

    def _migrations(self) -> Check:
        engine = self._infra.db.engine
        try:
            require_current_schema(engine)  # one SELECT of alembic_version
        except SchemaOutdated as exc:
            return Check("migrations", False, str(exc))
        except StorageError as exc:
            return Check("migrations", False, f"cannot read the revision ({type(exc).__name__})")
        return Check("migrations", True, f"at {current_revision(engine)}")

    def _signing_key(self) -> Check:
        infra = self._infra
        try:
            with infra.db.transaction() as session:
                all_issuers = issuers.load_issuers(session, infra.rings)
            if not all_issuers:
                return Check("signing_key", False, "no issuer: run `idsvc init`")
            for issuer in all_issuers:
                signer = infra.signer(issuer)
                verify_signature(signer.public_key(), signer.alg, PROBE, signer.sign(PROBE))
        except (KeysError, StorageError) as exc:
            return Check("signing_key", False, type(exc).__name__)
        except Exception as exc:
            return Check("signing_key", False, f"cannot sign ({type(exc).__name__})")
        return Check("signing_key", True, f"{len(all_issuers)} issuer(s) sign")

    def _status_lists(self, now: datetime) -> Check:
        settings = self._infra.settings
        folder = settings.published_dir
        if folder is None:
            return Check("status_lists", True, "signed on request (no IDSVC_PUBLISHED_DIR)")
        try:
            lists = published_lists(folder, lifetime=settings.status_list_lifetime)
        except ValueError as exc:
            return Check("status_lists", False, str(exc))
        if not lists:
            return Check("status_lists", True, "no status lists yet")
        margin = settings.status_list_lifetime / 4
        soonest = min(lists, key=lambda p: p.exp)
        left = soonest.exp - now
        if left < margin:
            return Check(
                "status_lists",
                False,
                f"list {soonest.name} expires in {int(left.total_seconds())} s: "
                "is `idsvc publish --watch` running?",
            )
        return Check("status_lists", True, f"{len(lists)} list(s), soonest exp in {left}")
