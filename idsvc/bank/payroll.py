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
last ``window``, every one of them is flagged ``ACCOUNT_SHARED``. Account numbers are compared
in one written form (``normal_account``): a no-break or zero-width space, a slash or full-width
or Lao digits do not make another account. The other ghost pattern is one person on two lines
of a batch (with one account or two): each of those lines is flagged ``DUPLICATE_IN_BATCH``.
Neither flag turns ``active_for_payroll`` false: a person has to look at it.

The controls against the other ghost patterns (a contract that ended, past retirement age, one
person recorded twice, never enrolled at a desk, a salary moved to another account) are
``idsvc.bank.payroll_controls``; every code and what a bank should do about it is
``idsvc.bank.payroll_reasons``. Only ``CONTRACT_ENDED`` among them stops a salary.

Each answer keeps the line's own identifiers (``PayrollResult.as_dict``): the ``employee_id``
the bank sent, also for someone the register does not know, its ``card_serial``, and ``ref``,
a free reference the bank may put on any line; so a bank matches answers to its lines by its
own keys, not only by position. They are capped at ``MAX_IDENTIFIER`` characters.

Errors: ``PayrollError`` → ``InvalidPayrollBatch`` (empty, too large, an item that
does not name exactly one identifier, an identifier too long, an account with no digit or
letter).
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from operator import add, attrgetter
from typing import Any, Final, NamedTuple

from sqlalchemy import case
from sqlalchemy.orm import Session

from idsvc.audit.who_checked import CheckedBy, CheckRecord, record_check
from idsvc.bank.change_feed import note_people_checked
from idsvc.bank.payroll_controls import (
    PayrollControls,
    Person,
    changed_accounts,
    duplicate_identities,
    may_have_changed,
    never_enrolled,
    people,
)
from idsvc.bank.payroll_reasons import PayrollReason
from idsvc.errors import InvalidPayrollBatch
from idsvc.formats.hr_csv import ENDED_STATUSES
from idsvc.storage.bulk import rows_matching, upsert_rows
from idsvc.storage.db import Database
from idsvc.storage.payroll_tables import PayrollAccountRow
from idsvc.storage.tables import CredentialRow
from idsvc.verification.rules import Reason, VerificationResult

MAX_ITEMS: Final = 10_000
MAX_IDENTIFIER: Final = 128  # employee_id, card_serial and ref: echoed back, so capped
_UNTRUSTED: Final = frozenset({Reason.BAD_SIGNATURE, Reason.UNKNOWN_KEY, Reason.MALFORMED})
_CARD_REASONS: Final = {
    "revoked": "CARD_REVOKED",
    "suspended": "CARD_SUSPENDED",
    "superseded": "CARD_SUPERSEDED",
}

CredentialVerifier = Callable[[str, datetime], VerificationResult]

# What a remembered (account, employee) pair is to the checking bank (``_known_accounts``):
# another bank's (or from before banks were recorded), its own since within the change window,
# its own since before it.
_OTHER: Final = 0
_RECENT: Final = 1
_SETTLED: Final = 2


# Items and results are named tuples, not frozen dataclasses: a batch makes 10,000 of each,
# and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost twice as
# much as building the tuple.
class PayrollItem(NamedTuple):
    """Exactly one of ``employee_id``, ``card_serial``, ``credential``; ``account`` and the
    bank's own ``ref`` for the line optional."""

    employee_id: str | None = None
    card_serial: str | None = None
    credential: str | None = None
    account: str | None = None
    ref: str | None = None


class PayrollResult(NamedTuple):
    employee_id: str | None
    status: str
    active_for_payroll: bool
    reasons: tuple[str, ...]
    credential_id: str | None = None

    def as_dict(self, given: PayrollItem | None = None) -> dict[str, Any]:
        """The answer to the line ``given``: ``employee_id`` is the register's person, or the
        id the line gave when the register does not know it; ``card_serial`` and ``ref`` are
        there when the line gave them (as given). ``employee_id`` stays ``None`` (the check
        log's value) for a card or credential line that names nobody known."""
        employee_id = self.employee_id
        if employee_id is None and given is not None:
            employee_id = given.employee_id
        answer: dict[str, Any] = {
            "employee_id": employee_id,
            "status": self.status,
            "active_for_payroll": self.active_for_payroll,
            "reasons": list(self.reasons),
        }
        if given is not None:
            if given.card_serial:
                answer["card_serial"] = given.card_serial
            if given.ref:
                answer["ref"] = given.ref
        return answer


# ASCII bytes that are neither a digit nor a letter: deleted in one C pass (the common case).
_ASCII_NOISE: Final = bytes(b for b in range(128) if not chr(b).isalnum())
# The same but the line feed, which separates the accounts of a batch (``_normal_accounts``).
_ASCII_NOISE_BUT_LF: Final = _ASCII_NOISE.replace(b"\n", b"")


def normal_account(account: str) -> str:
    """The account number as compared: Unicode NFKC (full-width and compatibility forms), every
    decimal digit of any script as its ASCII digit (Lao, Khmer, Thai, Arabic-Indic…), letters
    in capitals, and nothing else: spaces of any kind, format characters (zero-width space,
    BOM), punctuation (``-./_``) are formatting. Empty when the number has no digit or letter.

    Accounts of ASCII digits, letters, spaces, hyphens and dots keep the form the first rule
    (those removed, capitals) gave them, so their stored hashes still match."""
    if account.isascii():
        return account.encode("ascii").translate(None, _ASCII_NOISE).decode("ascii").upper()
    kept: list[str] = []
    for char in unicodedata.normalize("NFKC", account):
        digit = unicodedata.decimal(char, None)
        if digit is not None:
            kept.append(str(digit))
        elif char.isalpha():
            kept.append(char.upper())
    return "".join(kept)


def _normal_accounts(accounts: list[str]) -> list[str]:
    """``normal_account`` of each of ``accounts``. A batch of ASCII accounts (the common case)
    is normalised as one text, the accounts one per line, in three C passes: per account,
    the four calls cost as much as the batch's register lookup. An account holding a line feed
    (noise, but it would split the text) or any other character goes one by one."""
    joined = "\n".join(accounts)
    if accounts and joined.isascii() and joined.count("\n") == len(accounts) - 1:
        kept = joined.encode("ascii").translate(None, _ASCII_NOISE_BUT_LF)
        return kept.decode("ascii").upper().split("\n")
    return [normal_account(account) for account in accounts]


class AccountKey:
    """HMAC-SHA256 (RFC 2104) with one server key, its inner and outer SHA-256 states computed
    once: an account's hash is then two state copies and two short updates in C. Copying an
    ``hmac.HMAC`` instead builds a Python object per account, which cost as much as the rest
    of the hashing (a batch makes 10,000)."""

    _BLOCK: Final = 64  # SHA-256's block size

    def __init__(self, key: bytes) -> None:
        if len(key) > self._BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(self._BLOCK, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigests(self, client_id: str, normals: Iterable[str]) -> list[str]:
        """``_keyed_hash`` of each account of ``normals`` (``normal_account``) for one bank:
        the bank's part of the message goes into the inner state once, not once per account."""
        scoped = self._inner.copy()
        scoped.update(_scope(client_id))
        outer = self._outer
        digests: list[str] = []
        for normal in normals:
            inner = scoped.copy()
            inner.update(normal.encode())
            final = outer.copy()
            final.update(inner.digest())
            digests.append(final.hexdigest())
        return digests


def _scope(client_id: str) -> bytes:
    """What precedes the account in the hashed message: the bank's id and a separator."""
    return client_id.encode() + b"\x00"


def account_hash(key: bytes | AccountKey, client_id: str, account: str) -> str:
    """Keyed hash of an account number (``normal_account``), scoped to one bank."""
    return _keyed_hash(key, client_id, normal_account(account))


def _keyed_hash(key: bytes | AccountKey, client_id: str, normal: str) -> str:
    """``key`` may be an ``AccountKey`` made with it, which skips the key setup: most of the
    cost of one short HMAC."""
    if isinstance(key, AccountKey):
        return key.hexdigests(client_id, (normal,))[0]
    return hmac.new(key, _scope(client_id) + normal.encode(), hashlib.sha256).hexdigest()


def validate_batch(items: Sequence[PayrollItem]) -> dict[int, str]:
    """Refuse the batch as a whole, or return the items' accounts (by position) in the form
    they are compared in (``normal_account``)."""
    if not items:
        raise InvalidPayrollBatch("the batch holds no items")
    if len(items) > MAX_ITEMS:
        raise InvalidPayrollBatch(f"at most {MAX_ITEMS} items per batch, got {len(items)}")
    # Field by field with map (C loops): a loop over 10,000 items per field cost more than
    # the batch's whole register lookup. The item is looked for only once one is wrong.
    employee, card, credential = (
        map(bool, map(attrgetter(name), items))
        for name in ("employee_id", "card_serial", "credential")
    )
    given = list(map(add, map(add, employee, card), credential))
    if given.count(1) != len(given):
        number = next(n for n, count in enumerate(given, 1) if count != 1)
        raise InvalidPayrollBatch(
            f"item {number}: give exactly one of employee_id, card_serial, credential"
        )
    for name in ("employee_id", "card_serial", "ref"):
        field = attrgetter(name)
        if max(map(len, filter(None, map(field, items))), default=0) > MAX_IDENTIFIER:
            number = next(
                n for n, it in enumerate(items, 1) if len(field(it) or "") > MAX_IDENTIFIER
            )
            raise InvalidPayrollBatch(
                f"item {number}: {name} may be at most {MAX_IDENTIFIER} characters"
            )
    with_account = [i for i, a in enumerate(map(attrgetter("account"), items)) if a is not None]
    normals = _normal_accounts([items[i].account or "" for i in with_account])
    accounts = dict(zip(with_account, normals, strict=True))
    if not all(accounts.values()):
        first = min(i for i, normal in accounts.items() if not normal)
        raise InvalidPayrollBatch(f"item {first + 1}: account has no digit or letter")
    return accounts


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
        CredentialRow.kind == "card",  # a bank pays against ATM cards, never a phone's serial
    ):
        found[serial] = (employee_id, credential_id, state)
    return found


def _person(employee_id: str, person: Person | None, extra: Sequence[str]) -> PayrollResult:
    if person is None:
        return PayrollResult(
            None, "unknown", False, tuple(extra) or (PayrollReason.UNKNOWN_EMPLOYEE,)
        )
    status = person.status
    if status == "active" and not extra and not person.flags:
        return PayrollResult(employee_id, status, True, ())  # almost every line
    reasons: list[str] = list(extra)
    if status in ENDED_STATUSES:
        reasons.insert(0, PayrollReason.HOLDER_INACTIVE)
    elif status == "suspended":
        reasons.insert(0, PayrollReason.HOLDER_SUSPENDED)
    reasons += person.flags
    active = status == "active" and PayrollReason.CONTRACT_ENDED not in person.flags
    return PayrollResult(employee_id, status, active, tuple(dict.fromkeys(reasons)))


class PayrollChecks:
    """The payroll-check use case; each ``check`` is one transaction."""

    def __init__(
        self,
        db: Database,
        *,
        account_key: bytes,
        account_window: timedelta,
        verify_credential: CredentialVerifier,
        controls: PayrollControls | None = None,
    ) -> None:
        self._db = db
        self._controls = controls or PayrollControls()
        self._account_key = AccountKey(account_key)
        self._window = account_window
        self._verify = verify_credential

    def check(
        self, items: Sequence[PayrollItem], *, by: CheckedBy, now: datetime
    ) -> list[PayrollResult]:
        accounts = validate_batch(items)
        # Presented credentials are verified first, each in the verifier's own short
        # transaction; the batch lookup below then treats them like employee ids.
        verified: dict[int, VerificationResult] = {
            i: self._verify(item.credential, now) for i, item in enumerate(items) if item.credential
        }
        with self._db.transaction() as session:
            client = by.client_id or ""
            # The bank's earlier accounts are counted per person only for a batch with accounts.
            results, batch = self._lookup(
                session, items, verified, now.date(), client if accounts else None
            )
            paid = [i for i in accounts if results[i].employee_id]
            digests = self._account_key.hexdigests(client, [accounts[i] for i in paid])
            hashes = dict(zip(paid, digests, strict=True))
            known = self._known_accounts(session, hashes, client, now) if hashes else []
            flags = self._batch_flags(session, batch, results, hashes, known, client, now)
            seen = {(digest, results[i].employee_id or "") for i, digest in hashes.items()}
            results = _flagged(results, _shared_accounts(hashes, seen, known), flags)
            records = [
                CheckRecord("payroll", r.employee_id, r.credential_id, r.status, r.reasons)
                for r in results
            ]
            # The writes come last, one after the other: on SQLite the first takes the
            # database's write lock, which the other workers' batches wait for until this
            # transaction commits, so nothing that can be done before it is done under it.
            self._remember(session, seen, client, now)
            record_check(session, records, by=by, now=now)
            # The people this bank pays: the scope of its change feed and webhooks.
            note_people_checked(session, by.client_id, (r.employee_id for r in results), now=now)
        return results

    def _lookup(
        self,
        session: Session,
        items: Sequence[PayrollItem],
        verified: dict[int, VerificationResult],
        today: date,
        client: str | None,
    ) -> tuple[list[PayrollResult], dict[str, Person]]:
        """Each line's answer from the register, and the people it names (with the accounts
        the bank ``client`` paid them into before, when given)."""
        subjects: dict[int, str] = {}
        for i, outcome in verified.items():
            sub = outcome.claims.get("sub")
            if not _UNTRUSTED.intersection(outcome.reasons) and isinstance(sub, str):
                subjects[i] = sub
        cards = _cards(session, {item.card_serial for item in items if item.card_serial})
        wanted = {item.employee_id for item in items if item.employee_id}
        wanted.update(subjects.values())
        wanted.update(employee_id for employee_id, _, _ in cards.values())
        found = people(session, wanted, self._controls, today, client_id=client)
        results: list[PayrollResult] = []
        for i, item in enumerate(items):
            if item.employee_id:
                employee_id = item.employee_id
                results.append(_person(employee_id, found.get(employee_id), ()))
            elif item.card_serial:
                card = cards.get(item.card_serial)
                if card is None:
                    results.append(PayrollResult(None, "unknown", False, ("UNKNOWN_CARD",)))
                    continue
                employee_id, credential_id, state = card
                extra = [_CARD_REASONS[state]] if state in _CARD_REASONS else []
                person = _person(employee_id, found.get(employee_id), extra)
                results.append(_with_credential(person, credential_id))
            else:
                outcome = verified[i]
                codes = [str(r) for r in outcome.reasons if r != Reason.HOLDER_INACTIVE]
                sub = subjects.get(i)
                if sub is None:
                    results.append(PayrollResult(None, "unknown", False, tuple(codes)))
                    continue
                person = _person(sub, found.get(sub), codes)
                results.append(_with_credential(person, outcome.credential_id))
        return results, found

    def _known_accounts(
        self, session: Session, hashes: dict[int, str], client: str, now: datetime
    ) -> list[tuple[str, str, int]]:
        """The pairs (account hash, employee id, ``_OTHER``/``_RECENT``/``_SETTLED``) the bank's
        batches of the window paid into the accounts of ``hashes`` (position → this bank's keyed
        hash): who else an account goes with (``ACCOUNT_SHARED``) and, for this bank's own
        pairs, whether it first paid into the account before the change window
        (``ACCOUNT_CHANGED``), judged by the database in the same read."""
        row = PayrollAccountRow
        mine = row.client_id == client
        state = case(
            (mine & (row.first_seen_at < now - self._controls.account_change), _SETTLED),
            (mine, _RECENT),
            else_=_OTHER,
        )
        return [
            (digest, employee_id, kind)
            for digest, employee_id, kind in rows_matching(
                session,
                (row.account_hash, row.employee_id, state),
                row.account_hash,
                sorted(set(hashes.values())),
                row.last_seen_at >= now - self._window,
            )
        ]

    def _batch_flags(
        self,
        session: Session,
        batch: dict[str, Person],
        results: list[PayrollResult],
        hashes: dict[int, str],
        known: list[tuple[str, str, int]],
        client: str,
        now: datetime,
    ) -> dict[str, list[str]]:
        """Flags that compare a person with other records: per employee id, in code order.
        ``batch`` is the people the lines name (``_lookup``), each on at least one line;
        ``known`` the pairs of ``_known_accounts``."""
        controls = self._controls
        found: dict[str, list[str]] = defaultdict(list)
        for employee_id in sorted(duplicate_identities(session, batch)):
            found[employee_id].append(PayrollReason.DUPLICATE_IDENTITY)
        for employee_id in sorted(never_enrolled(session, batch)):
            found[employee_id].append(PayrollReason.NO_CARD)
        paid = {results[i].employee_id or "": digest for i, digest in hashes.items()}
        this_bank = {(d, e): kind == _SETTLED for d, e, kind in known if kind != _OTHER}
        wanted = may_have_changed(paid, batch, this_bank)
        window = controls.account_change
        for employee_id in changed_accounts(session, client, wanted, window=window, now=now):
            found[employee_id].append(PayrollReason.ACCOUNT_CHANGED)
        return found

    @staticmethod
    def _remember(session: Session, seen: set[tuple[str, str]], client: str, now: datetime) -> None:
        """Store this batch's (account, employee) pairs with the bank that sent them; only they
        are refreshed, so a pair the bank stopped sending ages out of the window. A pair's
        ``first_seen_at`` stays: it dates the account's first use (``ACCOUNT_CHANGED``)."""
        rows = [
            {
                "account_hash": d,
                "employee_id": e,
                "first_seen_at": now,
                "last_seen_at": now,
                "client_id": client,
            }
            for d, e in sorted(seen)
        ]
        upsert_rows(
            session,
            PayrollAccountRow.metadata.tables[PayrollAccountRow.__tablename__],
            rows,
            keys=("account_hash", "employee_id"),
            update=("last_seen_at",),
        )


def _shared_accounts(
    hashes: dict[int, str], seen: set[tuple[str, str]], known: list[tuple[str, str, int]]
) -> set[int]:
    """Positions of the items whose account (``hashes``: position → this bank's keyed hash)
    goes with more than one person, in this batch (``seen``: its (account hash, employee id)
    pairs) or in the bank's batches of the window (``known``)."""
    if not hashes:
        return set()
    # The people an account goes with, counted as distinct (account, employee) pairs of the
    # batch and of the window: one set and a count in C, not a set per account.
    pairs = seen.union((digest, employee_id) for digest, employee_id, _ in known)
    people = Counter(digest for digest, _ in pairs)
    return {i for i, digest in hashes.items() if people[digest] > 1}


def _flagged(
    results: list[PayrollResult], shared: set[int], flags: dict[str, list[str]]
) -> list[PayrollResult]:
    """``results`` with the batch ``flags`` of each person, ``DUPLICATE_IN_BATCH`` on every
    line of a person named on several lines (by employee id, card or credential alike) and
    ``ACCOUNT_SHARED`` on the ``shared`` positions. People the register does not know are not
    counted: they are refused already."""
    lines = Counter(map(attrgetter("employee_id"), results))
    twice = {employee_id for employee_id, n in lines.items() if n > 1 and employee_id is not None}
    if not twice and not shared and not flags:
        return results
    flagged = list(results)
    for i, r in enumerate(results):
        extra: tuple[str, ...] = tuple(flags.get(r.employee_id or "", ()))
        if r.employee_id in twice:
            extra += (PayrollReason.DUPLICATE_IN_BATCH,)
        if i in shared:
            extra += (PayrollReason.ACCOUNT_SHARED,)
        if extra:
            flagged[i] = PayrollResult(
                r.employee_id, r.status, r.active_for_payroll, r.reasons + extra, r.credential_id
            )
    return flagged


def _with_credential(result: PayrollResult, credential_id: str | None) -> PayrollResult:
    return PayrollResult(
        result.employee_id,
        result.status,
        result.active_for_payroll,
        result.reasons,
        credential_id,
    )
