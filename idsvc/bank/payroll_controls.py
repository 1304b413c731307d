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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session

from idsvc.bank.payroll_reasons import PayrollReason
from idsvc.config import Settings
from idsvc.formats.hr_csv import ENDED_STATUSES, EmploymentStatus
from idsvc.storage.bulk import rows_matching
from idsvc.storage.payroll_tables import PayrollAccountRow
from idsvc.storage.photo_tables import PhotoRow
from idsvc.storage.tables import CivilServantRow, CredentialRow


@dataclass(frozen=True)
class RetirementAges:
    """The age at which people retire: ``default``, unless an override names the person's sex,
    category, or both (``"F"``, ``"contract_teacher"``, ``"F:contract_teacher"``); the most
    specific override wins (IDSVC_RETIREMENT_AGE, IDSVC_RETIREMENT_AGE_OVERRIDES)."""

    default: int = 60
    overrides: Mapping[str, int] = field(default_factory=dict)

    def for_person(self, sex: str, category: str) -> int:
        for key in (f"{sex}:{category}", category, sex):
            if key in self.overrides:
                return self.overrides[key]
        return self.default


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


@dataclass(frozen=True, slots=True)
class Person:
    """What the flags need of one register row."""

    employee_id: str
    status: str
    category: str
    sex: str
    date_of_birth: date
    hire_date: date | None
    contract_end: date | None
    national_id: str | None
    name_key: str | None
    in_register_since: date


PERSON_COLUMNS: Final = (
    CivilServantRow.employee_id,
    CivilServantRow.status,
    CivilServantRow.category,
    CivilServantRow.sex,
    CivilServantRow.date_of_birth,
    CivilServantRow.hire_date,
    CivilServantRow.contract_end,
    CivilServantRow.national_id,
    CivilServantRow.name_key,
    CivilServantRow.created_at,
)


def people(session: Session, employee_ids: Iterable[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    wanted = sorted(set(employee_ids))
    for row in rows_matching(session, PERSON_COLUMNS, CivilServantRow.employee_id, wanted):
        found[row.employee_id] = Person(
            employee_id=row.employee_id,
            status=row.status,
            category=row.category,
            sex=row.sex,
            date_of_birth=row.date_of_birth,
            hire_date=row.hire_date,
            contract_end=row.contract_end,
            national_id=row.national_id,
            name_key=row.name_key,
            in_register_since=row.created_at.date(),
        )
    return found


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def person_flags(person: Person, controls: PayrollControls, today: date) -> list[PayrollReason]:
    """The flags that need nothing but the person's own row."""
    flags: list[PayrollReason] = []
    if person.contract_end is not None and person.contract_end < today:
        flags.append(PayrollReason.CONTRACT_ENDED)
    if person.status == EmploymentStatus.ACTIVE:
        limit = controls.retirement.for_person(person.sex, person.category)
        if age_on(person.date_of_birth, today) >= limit:
            flags.append(PayrollReason.PAST_RETIREMENT_AGE)
    return flags


def duplicate_identities(session: Session, batch: Mapping[str, Person]) -> set[str]:
    """The batch's people, not ended themselves, who share a national id, or a name key with
    date of birth and sex, with another employee record that has not ended either."""
    flagged: set[str] = set()
    by_national_id: dict[str, set[str]] = defaultdict(set)
    living = [p for p in batch.values() if p.status not in ENDED_STATUSES]
    for p in living:
        if p.national_id:
            by_national_id[p.national_id].add(p.employee_id)
    for employee_id, national_id, status in rows_matching(
        session,
        (CivilServantRow.employee_id, CivilServantRow.national_id, CivilServantRow.status),
        CivilServantRow.national_id,
        sorted(by_national_id),
    ):
        if status not in ENDED_STATUSES:
            by_national_id[national_id].add(employee_id)
    for holders in by_national_id.values():
        if len(holders) > 1:
            flagged |= holders & batch.keys()
    by_identity: dict[tuple[str, date, str], set[str]] = defaultdict(set)
    for p in living:
        if p.name_key:
            by_identity[(p.name_key, p.date_of_birth, p.sex)].add(p.employee_id)
    names = sorted({key[0] for key in by_identity})
    for employee_id, key, born, sex, status in rows_matching(
        session,
        (
            CivilServantRow.employee_id,
            CivilServantRow.name_key,
            CivilServantRow.date_of_birth,
            CivilServantRow.sex,
            CivilServantRow.status,
        ),
        CivilServantRow.name_key,
        names,
    ):
        identity = (key, born, sex)
        if identity in by_identity and status not in ENDED_STATUSES:
            by_identity[identity].add(employee_id)
    for holders in by_identity.values():
        if len(holders) > 1:
            flagged |= holders & batch.keys()
    return flagged


def never_enrolled(
    session: Session, batch: Mapping[str, Person], *, grace: timedelta, today: date
) -> set[str]:
    """Active people past the enrolment grace with no photo or no credential that went live.
    The grace runs from hiring or from entering the register, whichever is later, so a
    deployment's first months do not flag everyone."""
    due = sorted(
        p.employee_id
        for p in batch.values()
        if p.status == EmploymentStatus.ACTIVE
        and max(p.hire_date or p.in_register_since, p.in_register_since) + grace < today
    )
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
        )
    }
    return set(due) - carded


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
    check itself), so the flag costs one indexed read and no write of its own."""
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
