"""The monthly payroll-controls report: what a ministry's payroll controller looks at.

``build_report`` reads the register as of a day and gathers, per ministry and office with
totals (docs/payroll-controls.md maps each part to PEFA PI-23, "Payroll controls"):

- people active, enrolled (a live credential and a photo: seen at a desk) and the rate;
- each ghost-worker flag of the payroll check (``idsvc.bank.payroll_controls``), counted and
  listed: contracts ended, past retirement age, duplicate identities, never enrolled, and
  salaries whose account changed in the period (banks not named);
- the status changes recorded in the period and how late each was reported (days from the
  status date to the day the register learned it): median, 90th percentile, the late ones
  listed with the pay periods at risk (a death reported 40 days late at a fortnightly payroll
  is about three pay periods paid to the dead); retroactive changes (effective before the
  period began) as a share of the period's changes, PI-23's own measure;
- the median lag of each of the last ``LAG_MONTHS`` months, for the trend;
- maker-checker requests of the period by action and outcome.

The period is the calendar month of ``as_of``, up to and including ``as_of``. Reading is all it
does; the caller records that a report was produced (audit event ``report.controls``).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from idsvc.bank.payroll_controls import (
    PayrollControls,
    duplicate_identities,
    never_enrolled,
    people,
)
from idsvc.bank.payroll_reasons import PayrollReason
from idsvc.formats.hr_csv import EmploymentStatus
from idsvc.storage.desk_tables import ApprovalRow
from idsvc.storage.payroll_tables import PayrollAccountRow
from idsvc.storage.photo_tables import PhotoRow
from idsvc.storage.tables import CivilServantRow, CredentialRow, StatusHistoryRow

FLAGS: Final = (
    PayrollReason.CONTRACT_ENDED,
    PayrollReason.PAST_RETIREMENT_AGE,
    PayrollReason.DUPLICATE_IDENTITY,
    PayrollReason.NO_CARD,
    PayrollReason.ACCOUNT_CHANGED,
)
LAG_MONTHS: Final = 6
_CHUNK: Final = 5000
Place = tuple[str, str]  # (ministry, office); office "" where HR gave none


@dataclass(frozen=True)
class Group:
    ministry: str
    office: str
    active: int = 0
    enrolled: int = 0
    flags: dict[str, int] = field(default_factory=dict)

    @property
    def enrolment_rate(self) -> float:
        return self.enrolled / self.active if self.active else 0.0


@dataclass(frozen=True)
class Flagged:
    employee_id: str
    ministry: str
    office: str
    flag: str


@dataclass(frozen=True)
class Change:
    employee_id: str
    ministry: str
    office: str
    status: str
    status_date: date
    recorded_on: date
    lag_days: int
    pay_periods_at_risk: int
    retroactive: bool


@dataclass(frozen=True)
class MonthLag:
    month: str  # YYYY-MM
    changes: int
    median_lag_days: float | None


@dataclass(frozen=True)
class ControlsReport:
    as_of: date
    period_start: date
    ministry: str | None
    pay_period_days: int
    late_after_days: int
    groups: list[Group]
    total: Group
    flagged: list[Flagged]
    changes: list[Change]
    median_lag_days: float | None
    p90_lag_days: float | None
    retroactive_share: float | None
    lag_by_month: list[MonthLag]
    approvals: dict[str, dict[str, int]]  # action → outcome → count

    @property
    def late(self) -> list[Change]:
        return [c for c in self.changes if c.lag_days > self.late_after_days]


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _places(session: Session, ministry: str | None) -> dict[str, tuple[Place, str]]:
    """employee id → ((ministry, office), status) for everyone in scope."""
    query = select(
        CivilServantRow.employee_id,
        CivilServantRow.ministry,
        CivilServantRow.office,
        CivilServantRow.status,
    )
    if ministry is not None:
        query = query.where(CivilServantRow.ministry == ministry)
    return {e: ((m, o or ""), s) for e, m, o, s in session.execute(query)}


def _enrolled(session: Session, ministry: str | None) -> set[str]:
    query = (
        select(CivilServantRow.employee_id)
        .join(PhotoRow, PhotoRow.employee_id == CivilServantRow.employee_id)
        .where(
            CivilServantRow.status == EmploymentStatus.ACTIVE,
            select(CredentialRow.id)
            .where(
                CredentialRow.employee_id == CivilServantRow.employee_id,
                CredentialRow.kind == "card",  # enrolled: came to a desk for a card
                CredentialRow.state == "live",
            )
            .exists(),
        )
    )
    if ministry is not None:
        query = query.where(CivilServantRow.ministry == ministry)
    return set(session.scalars(query))


def _flags(
    session: Session,
    active: list[str],
    controls: PayrollControls,
    as_of: date,
    period: tuple[datetime, datetime],
) -> dict[str, list[str]]:
    """employee id → the flags the payroll check would raise on them as of ``as_of``."""
    found: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks(active):
        batch = people(session, chunk, controls, as_of)
        for employee_id, person in batch.items():
            found[employee_id] += person.flags
        for employee_id in duplicate_identities(session, batch):
            found[employee_id].append(PayrollReason.DUPLICATE_IDENTITY)
        for employee_id in never_enrolled(session, batch):
            found[employee_id].append(PayrollReason.NO_CARD)
    # A salary that moved in the period: an account a bank first paid into during the period,
    # for someone it had paid into another account before (banks stay unnamed). One read of
    # the banks' accounts, grouped here: a monthly report may read a table once.
    firsts: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for client_id, employee_id, first in session.execute(
        select(
            PayrollAccountRow.client_id,
            PayrollAccountRow.employee_id,
            PayrollAccountRow.first_seen_at,
        ).where(
            PayrollAccountRow.client_id.is_not(None), PayrollAccountRow.first_seen_at < period[1]
        )
    ):
        firsts[(client_id or "", employee_id)].append(first)
    changed = {
        employee_id
        for (_, employee_id), seen in firsts.items()
        if len(seen) > 1 and period[0] <= max(seen)
    }
    in_scope = set(active)
    for employee_id in changed:
        if employee_id in in_scope:
            found[employee_id].append(PayrollReason.ACCOUNT_CHANGED)
    return found


def _history(
    session: Session, employee_ids: Iterable[str], since: datetime, until: datetime
) -> list[tuple[str, str, date, datetime, bool]]:
    """History rows recorded in [since, until): (id, status, status date, recorded at, whether
    it changed a status the register held before, rather than recording a new person)."""
    rows = session.execute(
        select(
            StatusHistoryRow.id,
            StatusHistoryRow.employee_id,
            StatusHistoryRow.status,
            StatusHistoryRow.status_date,
            StatusHistoryRow.recorded_at,
        )
        .where(StatusHistoryRow.recorded_at >= since, StatusHistoryRow.recorded_at < until)
        .order_by(StatusHistoryRow.id)
    ).all()
    wanted = set(employee_ids)
    rows = [r for r in rows if r.employee_id in wanted]
    first_ids: dict[str, int] = {}
    for chunk in _chunks(sorted({r.employee_id for r in rows})):
        for employee_id, first in session.execute(
            select(StatusHistoryRow.employee_id, func.min(StatusHistoryRow.id))
            .where(StatusHistoryRow.employee_id.in_(chunk))
            .group_by(StatusHistoryRow.employee_id)
        ):
            first_ids[employee_id] = first
    return [
        (r.employee_id, r.status, r.status_date, r.recorded_at, r.id != first_ids[r.employee_id])
        for r in rows
    ]


def _percentile(values: list[int], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    # Nearest rank: the value a controller can find in the list below the chart.
    rank = max(1, -(-len(ordered) * share // 1))
    return float(ordered[int(rank) - 1])


def build_report(
    session: Session,
    *,
    as_of: date,
    controls: PayrollControls,
    ministry: str | None = None,
    pay_period_days: int = 14,
    late_after_days: int | None = None,
) -> ControlsReport:
    """The report as of the end of ``as_of`` (UTC), for one ministry or all."""
    period_start = _month_start(as_of)
    period = (_start_of(period_start), _start_of(as_of + timedelta(days=1)))
    late_after = pay_period_days if late_after_days is None else late_after_days
    places = _places(session, ministry)
    active = sorted(e for e, (_, status) in places.items() if status == EmploymentStatus.ACTIVE)
    enrolled = _enrolled(session, ministry)
    flags = _flags(session, active, controls, as_of, period)

    counts: dict[Place, Counter[str]] = defaultdict(Counter)
    for employee_id in active:
        place = places[employee_id][0]
        counts[place]["active"] += 1
        counts[place]["enrolled"] += employee_id in enrolled
    flagged: list[Flagged] = []
    for employee_id, codes in sorted(flags.items()):
        place = places[employee_id][0] if employee_id in places else ("", "")
        for code in dict.fromkeys(codes):
            counts[place][code] += 1
            flagged.append(Flagged(employee_id, place[0], place[1], code))

    lag_start = _start_of(_month_start(as_of, LAG_MONTHS - 1))
    history = _history(session, places, lag_start, period[1])
    changes: list[Change] = []
    by_month: dict[str, list[int]] = defaultdict(list)
    for employee_id, status, status_date, recorded_at, is_change in history:
        if not is_change:
            continue
        lag = max(0, (recorded_at.date() - status_date).days)
        by_month[f"{recorded_at:%Y-%m}"].append(lag)
        if recorded_at >= period[0]:
            place = places[employee_id][0]
            changes.append(
                Change(
                    employee_id,
                    place[0],
                    place[1],
                    status,
                    status_date,
                    recorded_at.date(),
                    lag,
                    -(-lag // pay_period_days),  # every pay period begun while unreported
                    status_date < period_start,
                )
            )
    lags = [c.lag_days for c in changes]
    months = [f"{_month_start(as_of, back):%Y-%m}" for back in reversed(range(LAG_MONTHS))]
    approvals: dict[str, dict[str, int]] = defaultdict(dict)
    for action, state, count in session.execute(
        select(ApprovalRow.action, ApprovalRow.state, func.count())
        .where(and_(ApprovalRow.requested_at >= period[0], ApprovalRow.requested_at < period[1]))
        .group_by(ApprovalRow.action, ApprovalRow.state)
    ):
        approvals[action][state] = count

    groups = [
        Group(m, o, c["active"], c["enrolled"], {f: c[f] for f in FLAGS if c[f]})
        for (m, o), c in sorted(counts.items())
    ]
    total = Group(
        ministry or "",
        "",
        sum(g.active for g in groups),
        sum(g.enrolled for g in groups),
        {f: n for f in FLAGS if (n := sum(g.flags.get(f, 0) for g in groups))},
    )
    return ControlsReport(
        as_of=as_of,
        period_start=period_start,
        ministry=ministry,
        pay_period_days=pay_period_days,
        late_after_days=late_after,
        groups=groups,
        total=total,
        flagged=flagged,
        changes=sorted(changes, key=lambda c: (-c.lag_days, c.employee_id)),
        median_lag_days=float(statistics.median(lags)) if lags else None,
        p90_lag_days=_percentile(lags, 0.9),
        retroactive_share=(sum(c.retroactive for c in changes) / len(changes)) if changes else None,
        lag_by_month=[
            MonthLag(
                m,
                len(by_month[m]),
                float(statistics.median(by_month[m])) if by_month[m] else None,
            )
            for m in months
        ],
        approvals={a: dict(sorted(s.items())) for a, s in sorted(approvals.items())},
    )
