"""HR sync: line ministries' HR systems upsert register records over the API.

Thin on purpose: the records go through ``idsvc.register.records.import_records``, the import use
case
behind ``idsvc import-hr`` too, so the rules and the per-row reasons are the same; a rejected
record is reported by its number in the request (1 = the first), where a file reports its line.

Concurrency: the import takes each person's lock before it reads them (``idsvc.register.records``),
so
two requests for one person are judged one after the other, whatever the interleaving. The
records are taken in employee-id order, so two requests lock the people they share in the same
order. A cycle can still form where a batch spans several chunks of ``idsvc.register.records`` (the
change feed's and the audit log's heads are taken between chunks) or meets a streamed file
import (which locks in file order); PostgreSQL breaks it by aborting one side, and this side
then retries, up to ``ATTEMPTS`` times, before answering ``ConcurrentUpdate`` (409, nothing
stored).

Idempotency: with a key, the first answer is stored (per client, with a SHA-256 of the request)
in the same transaction as the import; the same key with the same body replays it, with another
body it is refused (``IdempotencyConflict``). Two concurrent requests with one key: the loser's
transaction fails on the key's primary key, rolls its import back, and replays the winner's.

Errors: ``HrSyncError`` (exit 22) → ``InvalidHrRecords`` (too many, unknown members, a value that
is not text), ``IdempotencyConflict``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.exc import IntegrityError

from idsvc.errors import IdempotencyConflict, InvalidHrRecords
from idsvc.formats.hr_csv import COLUMNS, HrRow
from idsvc.register import records as register
from idsvc.storage.db import ConcurrentUpdate, Database
from idsvc.storage.payroll_tables import IdempotencyRecordRow

MAX_RECORDS: Final = 10_000
MAX_KEY: Final = 255
ATTEMPTS: Final = 3


@dataclass(frozen=True)
class HrSyncAnswer:
    body: dict[str, Any]
    replayed: bool


def request_hash(records: Sequence[Mapping[str, Any]]) -> str:
    canonical = json.dumps(list(records), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def as_rows(records: Sequence[Mapping[str, Any]]) -> list[HrRow]:
    """The records as register rows, positioned by record number (1 = the first)."""
    rows: list[HrRow] = []
    for number, record in enumerate(records, start=1):
        unknown = sorted(set(record) - set(COLUMNS))
        if unknown:
            raise InvalidHrRecords(f"record {number}: unknown member {unknown[0][:40]!r}")
        values: dict[str, object] = {}
        # Only the members the record has: as for a file's columns, a member an HR system does
        # not send yet (``contract_end`` from before it existed) is unknown, not empty.
        for column in COLUMNS:
            if column not in record:
                continue
            value = record[column]
            if value is not None and not isinstance(value, str):
                raise InvalidHrRecords(f"record {number}: {column} must be text or null")
            values[column] = value or ""
        rows.append((number, values))
    return rows


def _answer(report: register.ImportReport) -> dict[str, Any]:
    return {
        "records": report.rows,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "status_changes": report.status_changes,
        "credentials_changed": report.credentials_changed,
        "rejected": [
            {"record": r.line, "employee_id": r.employee_id, "reason": r.reason}
            for r in report.rejects
        ],
    }


class HrSync:
    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        client_id: str,
        client_name: str,
        idempotency_key: str | None,
        now: datetime,
    ) -> HrSyncAnswer:
        if not records:
            raise InvalidHrRecords("send at least one record")
        if len(records) > MAX_RECORDS:
            raise InvalidHrRecords(f"at most {MAX_RECORDS} records per request")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_KEY:
            raise InvalidHrRecords(f"Idempotency-Key must be 1 to {MAX_KEY} characters")
        # Stable: of two records for one person, the first still wins (and is named as such).
        rows = sorted(as_rows(records), key=lambda row: str(row[1].get("employee_id", "")))
        digest = request_hash(records)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._upsert_once(
                    rows,
                    digest,
                    client_id=client_id,
                    client_name=client_name,
                    idempotency_key=idempotency_key,
                    now=now,
                )
            except ConcurrentUpdate:
                if attempt == ATTEMPTS:
                    raise
                time.sleep(0.05 * attempt)  # the other side holds its locks a moment longer
        raise AssertionError("unreachable")

    def _upsert_once(
        self,
        rows: list[HrRow],
        digest: str,
        *,
        client_id: str,
        client_name: str,
        idempotency_key: str | None,
        now: datetime,
    ) -> HrSyncAnswer:
        try:
            with self._db.transaction() as session:
                if idempotency_key is not None:
                    stored = session.get(IdempotencyRecordRow, (client_id, idempotency_key))
                    if stored is not None:
                        return _replay(stored, digest)
                report = register.import_records(
                    session,
                    rows,
                    source_id=digest,
                    source_name=f"api:{client_name}",
                    actor=f"api-client:{client_name}",
                    now=now,
                )
                body = _answer(report)
                if idempotency_key is not None:
                    session.add(
                        IdempotencyRecordRow(
                            client_id=client_id,
                            key=idempotency_key,
                            request_hash=digest,
                            status_code=200,
                            response=body,
                            created_at=now,
                        )
                    )
                    session.flush()
        except IntegrityError:
            if idempotency_key is None:
                raise
            with self._db.transaction() as session:
                stored = session.get(IdempotencyRecordRow, (client_id, idempotency_key))
                if stored is None:
                    raise
                return _replay(stored, digest)
        return HrSyncAnswer(body, replayed=False)


def _replay(stored: IdempotencyRecordRow, digest: str) -> HrSyncAnswer:
    if stored.request_hash != digest:
        raise IdempotencyConflict()
    return HrSyncAnswer(dict(stored.response), replayed=True)
