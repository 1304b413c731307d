"""Payroll checks: is each person a bank is about to pay an active civil servant?

A check is a lookup in the register, not a signature verification: a batch of 10,000 items
costs a handful of queries (one per chunk of identifiers), not one per item. An item names the
person by ``employee_id``, by ``card_serial`` (the card the bank knows), or by a ``credential``
the person presented: that one is verified like any credential, since its text is all the bank
has.

Answers come per item, in order: ``status`` (the HR status, or ``unknown``),
``active_for_payroll`` and reason codes. ``active_for_payroll`` is about the person: a lost card
that was revoked does not stop a salary, so card states are reported as reasons only. Suspended
people are not active for payroll (HR suspends pay with employment; the bank sees why).

Ghost workers are often several register entries paid into one account. An item may carry the
``account`` it is about to be paid into; the service keeps only a keyed hash of it (HMAC-SHA256
with a server key, scoped to the calling bank) with the employee id and when it was last seen.
When one account goes with two or more employees, in this batch or in the bank's batches of the
last ``window``, every one of them is flagged ``ACCOUNT_SHARED``. The flag does not turn
``active_for_payroll`` false: a person has to look at it.

Errors: ``PayrollError`` (exit 22) → ``InvalidPayrollBatch`` (empty, too large, an item that
does not name exactly one identifier).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy.orm import Session

from idsvc.access_log import CheckedBy, CheckRecord, record_check
from idsvc.errors import InvalidPayrollBatch
from idsvc.formats.hr_csv import ENDED_STATUSES
from idsvc.storage.bulk import rows_matching, upsert_rows
from idsvc.storage.db import Database
from idsvc.storage.payroll_tables import PayrollAccountRow
from idsvc.storage.tables import CivilServantRow, CredentialRow
from idsvc.verification import Reason, VerificationResult

MAX_ITEMS: Final = 10_000
_UNTRUSTED: Final = frozenset({Reason.BAD_SIGNATURE, Reason.UNKNOWN_KEY, Reason.MALFORMED})
_CARD_REASONS: Final = {
    "revoked": "CARD_REVOKED",
    "suspended": "CARD_SUSPENDED",
    "superseded": "CARD_SUPERSEDED",
}

CredentialVerifier = Callable[[str, datetime], VerificationResult]


class PayrollReason(StrEnum):
    UNKNOWN_EMPLOYEE = "UNKNOWN_EMPLOYEE"
    UNKNOWN_CARD = "UNKNOWN_CARD"
    HOLDER_INACTIVE = "HOLDER_INACTIVE"
    HOLDER_SUSPENDED = "HOLDER_SUSPENDED"
    CARD_REVOKED = "CARD_REVOKED"
    CARD_SUSPENDED = "CARD_SUSPENDED"
    CARD_SUPERSEDED = "CARD_SUPERSEDED"
    ACCOUNT_SHARED = "ACCOUNT_SHARED"


@dataclass(frozen=True, slots=True)
class PayrollItem:
    """Exactly one of ``employee_id``, ``card_serial``, ``credential``; ``account`` optional."""

    employee_id: str | None = None
    card_serial: str | None = None
    credential: str | None = None
    account: str | None = None

    def identifiers(self) -> int:
        return sum(1 for v in (self.employee_id, self.card_serial, self.credential) if v)


@dataclass(frozen=True, slots=True)
class PayrollResult:
    employee_id: str | None
    status: str
    active_for_payroll: bool
    reasons: tuple[str, ...]
    credential_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "employee_id": self.employee_id,
            "status": self.status,
            "active_for_payroll": self.active_for_payroll,
            "reasons": list(self.reasons),
        }


_FORMATTING: Final = str.maketrans("", "", " -.\t")


def account_hash(key: bytes | hmac.HMAC, client_id: str, account: str) -> str:
    """Keyed hash of an account number, scoped to one bank. Spaces, hyphens and dots are
    formatting, and letters (IBAN) are compared in capitals. ``key`` may be an HMAC already
    keyed with it (``hmac.new(key, digestmod="sha256")``): copying that skips the key setup,
    which is most of the cost of one short HMAC (a batch makes 10,000)."""
    normal = account.translate(_FORMATTING).upper()
    message = client_id.encode() + b"\x00" + normal.encode()
    if isinstance(key, hmac.HMAC):
        keyed = key.copy()
        keyed.update(message)
        return keyed.hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def validate_batch(items: Sequence[PayrollItem]) -> None:
    if not items:
        raise InvalidPayrollBatch("the batch holds no items")
    if len(items) > MAX_ITEMS:
        raise InvalidPayrollBatch(f"at most {MAX_ITEMS} items per batch, got {len(items)}")
    for number, item in enumerate(items, start=1):
        if item.identifiers() != 1:
            raise InvalidPayrollBatch(
                f"item {number}: give exactly one of employee_id, card_serial, credential"
            )
        if item.account is not None and not item.account.strip():
            raise InvalidPayrollBatch(f"item {number}: account is empty")


def _statuses(session: Session, employee_ids: set[str]) -> dict[str, str]:
    return dict(
        rows_matching(
            session,
            (CivilServantRow.employee_id, CivilServantRow.status),
            CivilServantRow.employee_id,
            sorted(employee_ids),
        )
    )


def _cards(session: Session, serials: set[str]) -> dict[str, tuple[str, str, str]]:
    """card serial → (employee id, credential id, credential state) of cards that went live."""
    found: dict[str, tuple[str, str, str]] = {}
    for serial, employee_id, credential_id, state in rows_matching(
        session,
        (
            CredentialRow.card_serial,
            CredentialRow.employee_id,
            CredentialRow.id,
            CredentialRow.state,
        ),
        CredentialRow.card_serial,
        sorted(serials),
        CredentialRow.state.not_in(("pending", "abandoned")),
    ):
        found[serial] = (employee_id, credential_id, state)
    return found


def _person(employee_id: str | None, status: str | None, extra: list[str]) -> PayrollResult:
    if employee_id is None or status is None:
        reasons = extra or [PayrollReason.UNKNOWN_EMPLOYEE]
        return PayrollResult(None, "unknown", False, tuple(reasons))
    reasons = list(extra)
    if status in ENDED_STATUSES:
        reasons.insert(0, PayrollReason.HOLDER_INACTIVE)
    elif status == "suspended":
        reasons.insert(0, PayrollReason.HOLDER_SUSPENDED)
    return PayrollResult(employee_id, status, status == "active", tuple(dict.fromkeys(reasons)))


class PayrollChecks:
    """The payroll-check use case; each ``check`` is one transaction."""

    def __init__(
        self,
        db: Database,
        *,
        account_key: bytes,
        account_window: timedelta,
        verify_credential: CredentialVerifier,
    ) -> None:
        self._db = db
        self._account_key = hmac.new(account_key, digestmod=hashlib.sha256)
        self._window = account_window
        self._verify = verify_credential

    def check(
        self, items: Sequence[PayrollItem], *, by: CheckedBy, now: datetime
    ) -> list[PayrollResult]:
        validate_batch(items)
        # Presented credentials are verified first, each in the verifier's own short
        # transaction; the batch lookup below then treats them like employee ids.
        verified: dict[int, VerificationResult] = {
            i: self._verify(item.credential, now) for i, item in enumerate(items) if item.credential
        }
        with self._db.transaction() as session:
            results = self._lookup(session, items, verified)
            if any(item.account for item in items):
                results = self._flag_shared_accounts(session, items, results, by, now)
            record_check(
                session,
                (
                    CheckRecord("payroll", r.employee_id, r.credential_id, r.status, r.reasons)
                    for r in results
                ),
                by=by,
                now=now,
            )
        return results

    def _lookup(
        self,
        session: Session,
        items: Sequence[PayrollItem],
        verified: dict[int, VerificationResult],
    ) -> list[PayrollResult]:
        subjects: dict[int, str] = {}
        for i, outcome in verified.items():
            sub = outcome.claims.get("sub")
            if not _UNTRUSTED.intersection(outcome.reasons) and isinstance(sub, str):
                subjects[i] = sub
        cards = _cards(session, {item.card_serial for item in items if item.card_serial})
        wanted = {item.employee_id for item in items if item.employee_id}
        wanted.update(subjects.values())
        wanted.update(employee_id for employee_id, _, _ in cards.values())
        statuses = _statuses(session, wanted)
        results: list[PayrollResult] = []
        for i, item in enumerate(items):
            if item.employee_id:
                results.append(_person(item.employee_id, statuses.get(item.employee_id), []))
            elif item.card_serial:
                card = cards.get(item.card_serial)
                if card is None:
                    results.append(PayrollResult(None, "unknown", False, ("UNKNOWN_CARD",)))
                    continue
                employee_id, credential_id, state = card
                extra = [_CARD_REASONS[state]] if state in _CARD_REASONS else []
                person = _person(employee_id, statuses.get(employee_id), extra)
                results.append(_with_credential(person, credential_id))
            else:
                outcome = verified[i]
                codes = [str(r) for r in outcome.reasons if r != Reason.HOLDER_INACTIVE]
                sub = subjects.get(i)
                if sub is None:
                    results.append(PayrollResult(None, "unknown", False, tuple(codes)))
                    continue
                person = _person(sub, statuses.get(sub), codes)
                results.append(_with_credential(person, outcome.credential_id))
        return results

    def _flag_shared_accounts(
        self,
        session: Session,
        items: Sequence[PayrollItem],
        results: list[PayrollResult],
        by: CheckedBy,
        now: datetime,
    ) -> list[PayrollResult]:
        client = by.client_id or ""
        hashes: dict[int, str] = {
            i: account_hash(self._account_key, client, item.account)
            for i, item in enumerate(items)
            if item.account and results[i].employee_id
        }
        seen = {(digest, results[i].employee_id or "") for i, digest in hashes.items()}
        people: dict[str, set[str]] = defaultdict(set)
        for digest, employee_id in seen:
            people[digest].add(employee_id)
        for digest, employee_id in rows_matching(
            session,
            (PayrollAccountRow.account_hash, PayrollAccountRow.employee_id),
            PayrollAccountRow.account_hash,
            sorted(people),
            PayrollAccountRow.last_seen_at >= now - self._window,
        ):
            people[digest].add(employee_id)
        self._remember(session, seen, now)
        flagged = list(results)
        for i, digest in hashes.items():
            if len(people[digest]) > 1:
                r = results[i]
                flagged[i] = PayrollResult(
                    r.employee_id,
                    r.status,
                    r.active_for_payroll,
                    (*r.reasons, PayrollReason.ACCOUNT_SHARED),
                    r.credential_id,
                )
        return flagged

    @staticmethod
    def _remember(session: Session, seen: set[tuple[str, str]], now: datetime) -> None:
        """Store this batch's (account, employee) pairs; only they are refreshed, so a pair
        the bank stopped sending ages out of the window."""
        rows = [
            {"account_hash": d, "employee_id": e, "first_seen_at": now, "last_seen_at": now}
            for d, e in sorted(seen)
        ]
        upsert_rows(
            session,
            PayrollAccountRow.metadata.tables[PayrollAccountRow.__tablename__],
            rows,
            keys=("account_hash", "employee_id"),
            update=("last_seen_at",),
        )


def _with_credential(result: PayrollResult, credential_id: str | None) -> PayrollResult:
    return PayrollResult(
        result.employee_id,
        result.status,
        result.active_for_payroll,
        result.reasons,
        credential_id,
    )
