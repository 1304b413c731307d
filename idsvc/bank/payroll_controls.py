"""The ghost-worker flags of a payroll check, found for a whole batch at once.

Each flag is a stable reason code a bank acts on (``idsvc.bank.payroll_reasons``):

- ``CONTRACT_ENDED``: the contract's last day (``contract_end``) has passed. The person is not
  active for payroll, from the first day after it, whether or not the sweep has recorded the
  status yet.
- ``PAST_RETIREMENT_AGE``: still active in HR at or past the retirement age
  (``RetirementAges``). A flag, not a stop: extensions exist.
- ``DUPLICATE_IDENTITY``: another employee record that is not ended carries the same national
  ID number, or the same Latin name (``name_key``), date of birth and sex.
- ``NO_CARD``: active for longer than the enrolment grace and never enrolled at a desk (no
  photo, or no credential that ever went live). The desk's in-person enrolment is the headcount.
- ``ACCOUNT_CHANGED``: the account this bank is about to pay into is not the one it paid the
  person into before, and it first paid into it recently (``PayrollControls.account_change``).
  Accounts are kept per bank, as keyed hashes: a bank never learns another bank's accounts.

Every lookup is one query per chunk of the batch's ids (``idsvc.storage.bulk.rows_matching``)
over an index: national ids, (name key, date of birth, sex), credentials and photos by employee,
accounts by (bank, employee). None reads the whole register.

What it costs a batch that raises nothing (almost every line of a real payroll): the person's
own flags come back with the row the check reads anyway, as one integer; so does the number of
accounts the bank paid the person into before, so that a bank's earlier accounts are read only
for the few people who have one other than the account of this line (``may_have_changed``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, NamedTuple

from sqlalchemy import ColumnElement, Date, case, func, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from idsvc.bank.payroll_reasons import PayrollReason
from idsvc.config import Settings
from idsvc.formats.hr_csv import ENDED_STATUSES, EmploymentStatus, add_years
from idsvc.storage.bulk import rows_matching
from idsvc.storage.payroll_tables import PayrollAccountRow
from idsvc.storage.photo_tables import PhotoRow
from idsvc.storage.tables import CivilServantRow, CredentialRow


@dataclass(frozen=True)
class RetirementAges:
    """The age at which people retire: ``default``, unless an override names the person's sex,
    category, or both, as (sex, category) with "" for the part not named (``("F", "")``,
    ``("", "contract_teacher")``, ``("F", "contract_teacher")``); the most specific override
    wins (IDSVC_RETIREMENT_AGE, IDSVC_RETIREMENT_AGE_OVERRIDES)."""

    default: int = 60
    overrides: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class PayrollControls:
    """The settings of the flags (IDSVC_RETIREMENT_AGE…, IDSVC_ENROLMENT_GRACE_DAYS,
    IDSVC_ACCOUNT_CHANGE_DAYS)."""

    retirement: RetirementAges = field(default_factory=RetirementAges)
    enrolment_grace: timedelta = timedelta(days=90)
    account_change: timedelta = timedelta(days=45)

    @classmethod
    def from_settings(cls, settings: Settings) -> PayrollControls:
        return cls(
            RetirementAges(settings.retirement_age, settings.retirement_ages),
            timedelta(days=settings.enrolment_grace_days),
            timedelta(days=settings.account_change_days),
        )


class Person(NamedTuple):
    """What the flags need of one register row, judged by the database as of a day: only the
    status and four answers travel, so that a batch of 10,000 parses no date in Python. Keyed by
    employee id (``people``) and shared by everyone with the same answers: a batch makes a
    handful, not one per line."""

    status: str
    flags: tuple[PayrollReason, ...]  # CONTRACT_ENDED, PAST_RETIREMENT_AGE
    enrolment_due: bool  # active for longer than the enrolment grace
    identity_known: bool  # has a national id or a name key: duplicates can be looked for
    # Accounts the checking bank paid this person into before (``people(client_id=…)``), 0 when
    # no bank was named.
    accounts: int = 0


# The four answers of a row as bits of one integer (``people``): a column the database sums,
# read with no per-value conversion, and one table lookup per row here.
_ENDED: Final = 1
_RETIRING: Final = 2
_DUE: Final = 4
_KNOWN: Final = 8
_ANSWERS: Final = tuple(
    (
        ((PayrollReason.CONTRACT_ENDED,) if bits & _ENDED else ())
        + ((PayrollReason.PAST_RETIREMENT_AGE,) if bits & _RETIRING else ()),
        bool(bits & _DUE),
        bool(bits & _KNOWN),
    )
    for bits in range(16)
)


def _born_by(controls: PayrollControls, today: date) -> ColumnElement[date]:
    """The latest date of birth of someone at or past their retirement age today, per row:
    the most specific override first (sex and category, then category, then sex)."""
    retirement = controls.retirement
    ranked: list[tuple[int, ColumnElement[bool], int]] = []
    for (sex, category), age in retirement.overrides.items():
        if sex and category:
            both = (CivilServantRow.sex == sex) & (CivilServantRow.category == category)
            ranked.append((0, both, age))
        elif category:
            ranked.append((1, CivilServantRow.category == category, age))
        else:
            ranked.append((2, CivilServantRow.sex == sex, age))
    default = literal(add_years(today, -retirement.default), Date)
    if not ranked:
        return default
    whens = [
        (cond, literal(add_years(today, -age), Date))
        for _, cond, age in sorted(ranked, key=lambda r: r[0])
    ]
    return case(*whens, else_=default)


def people(
    session: Session,
    employee_ids: Iterable[str],
    controls: PayrollControls,
    today: date,
    *,
    client_id: str | None = None,
) -> dict[str, Person]:
    """The people of ``employee_ids`` in the register, with the flags of their own row and,
    when ``client_id`` names a bank, how many accounts it paid each of them into before."""
    row = CivilServantRow
    active = row.status == EmploymentStatus.ACTIVE
    grace_start = today - controls.enrolment_grace
    answers = (
        case((row.contract_end.is_not(None) & (row.contract_end < today), _ENDED), else_=0)
        + case((active & (row.date_of_birth <= _born_by(controls, today)), _RETIRING), else_=0)
        + case(
            (
                active
                & (row.created_at < datetime.combine(grace_start, time(), UTC))
                & (row.hire_date.is_(None) | (row.hire_date < grace_start)),
                _DUE,
            ),
            else_=0,
        )
        + case((row.national_id.is_not(None) | row.name_key.is_not(None), _KNOWN), else_=0)
    )
    columns: list[InstrumentedAttribute[Any] | ColumnElement[Any]] = [
        row.employee_id,
        row.status,
        answers,
    ]
    if client_id is not None:
        # Correlated, per row, over the (bank, employee) index: the database counts, instead of
        # a second batch-sized read that finds nothing for almost everyone.
        accounts = (
            select(func.count())
            .where(
                PayrollAccountRow.client_id == client_id,
                PayrollAccountRow.employee_id == row.employee_id,
            )
            .scalar_subquery()
        )
        columns.append(accounts)
    else:
        columns.append(literal(0))
    wanted = sorted(set(employee_ids))
    rows = rows_matching(session, columns, row.employee_id, wanted)
    shared = _SharedPeople()
    return {employee_id: shared[status, bits, paid] for employee_id, status, bits, paid in rows}


class _SharedPeople(dict[tuple[str, int, int], Person]):
    """The ``Person`` of each (status, answer bits, accounts), made on first use: a batch's
    10,000 rows look up a handful of them, in C (``__missing__`` only for a new one)."""

    def __missing__(self, key: tuple[str, int, int]) -> Person:
        status, bits, paid = key
        flags, due, known = _ANSWERS[bits]
        person = self[key] = Person(status, flags, due, known, paid)
        return person


def duplicate_identities(session: Session, batch: Mapping[str, Person]) -> set[str]:
    """The batch's people, not ended themselves, who share a national id, or a name key with
    date of birth and sex, with another employee record that has not ended either. The
    database pairs the records (a self-join over the national id and the identity index)."""
    wanted = sorted(
        employee_id
        for employee_id, p in batch.items()
        if p.identity_known and p.status not in ENDED_STATUSES
    )
    if not wanted:
        return set()
    mine, other = aliased(CivilServantRow), aliased(CivilServantRow)
    both_living = (
        mine.employee_id != other.employee_id,
        other.status.not_in(ENDED_STATUSES),
    )
    same_person = (
        mine.national_id == other.national_id,
        (mine.name_key == other.name_key)
        & (mine.date_of_birth == other.date_of_birth)
        & (mine.sex == other.sex),
    )
    flagged: set[str] = set()
    for same in same_person:
        flagged.update(
            employee_id
            for (employee_id,) in rows_matching(
                session, (mine.employee_id,), mine.employee_id, wanted, same, *both_living
            )
        )
    return flagged


def never_enrolled(session: Session, batch: Mapping[str, Person]) -> set[str]:
    """Active people past the enrolment grace (``Person.enrolment_due``: it runs from hiring or
    from entering the register, whichever is later, so a deployment's first months do not flag
    everyone) with no photo or no credential that went live."""
    due = sorted(employee_id for employee_id, p in batch.items() if p.enrolment_due)
    if not due:
        return set()
    with_photo = {
        employee_id
        for (employee_id,) in rows_matching(
            session, (PhotoRow.employee_id,), PhotoRow.employee_id, due
        )
    }
    carded = {
        employee_id
        for (employee_id,) in rows_matching(
            session,
            (CredentialRow.employee_id,),
            CredentialRow.employee_id,
            sorted(with_photo),
            CredentialRow.state.not_in(("pending", "abandoned")),
            CredentialRow.kind == "card",  # the headcount is the desk's in-person enrolment
        )
    }
    return set(due) - carded


def may_have_changed(
    paid: Mapping[str, str],
    batch: Mapping[str, Person],
    this_bank: Mapping[tuple[str, str], bool],
) -> dict[str, str]:
    """The part of ``paid`` (employee id → this bank's account hash) that ``changed_accounts``
    has to read: people this bank paid into some other account before. ``batch`` counts each
    person's accounts at this bank (``Person.accounts``); ``this_bank`` holds the pairs (account
    hash, employee id) of this batch the bank paid before, each with whether it first paid
    into that account before the change window (then it is no change, whatever else it paid).
    A bank's first check, or one that pays everyone where it paid them last time, reads
    nothing more."""
    wanted: dict[str, str] = {}
    for employee_id, digest in paid.items():
        settled = this_bank.get((digest, employee_id))
        if settled:
            continue
        others = batch[employee_id].accounts - (0 if settled is None else 1)
        if others > 0:
            wanted[employee_id] = digest
    return wanted


def changed_accounts(
    session: Session,
    client_id: str,
    paid: Mapping[str, str],
    *,
    window: timedelta,
    now: datetime,
) -> set[str]:
    """People whose account (``paid``: employee id → this bank's keyed account hash) this bank
    first paid into within ``window``, after paying them into another one: a salary that moved.
    Read from the accounts the bank's checks remember (``PayrollAccountRow``, written by the
    check itself), so the flag costs one indexed read and no write of its own; the check reads
    only the people ``may_have_changed`` leaves."""
    first_seen: dict[str, dict[str, datetime]] = defaultdict(dict)
    for employee_id, account_hash, seen in rows_matching(
        session,
        (
            PayrollAccountRow.employee_id,
            PayrollAccountRow.account_hash,
            PayrollAccountRow.first_seen_at,
        ),
        PayrollAccountRow.employee_id,
        sorted(paid),
        PayrollAccountRow.client_id == client_id,
    ):
        first_seen[employee_id][account_hash] = seen
    flagged: set[str] = set()
    for employee_id, account_hash in paid.items():
        accounts = first_seen.get(employee_id, {})
        since = accounts.get(account_hash, now)  # not seen before: first paid into now
        earlier = any(other != account_hash and at < since for other, at in accounts.items())
        if earlier and since >= now - window:
            flagged.add(employee_id)
    return flagged
