"""A controls report built by hand (its dataclasses are plain), for the HTML page's tests: Lao
and Khmer ministry names, every flag, late changes, a ministry with nobody active, a long list
of flagged people and hostile text where the register's strings go."""

from __future__ import annotations

from datetime import date
from typing import Final

from idsvc.bank.payroll_reasons import PayrollReason as R
from idsvc.reports.controls import Change, ControlsReport, Flagged, Group, MonthLag

LAO: Final = "ກະຊວງສຶກສາທິການ ແລະ ກິລາ"  # Ministry of Education and Sports
LAO_OFFICE: Final = "ຫ້ອງການເມືອງນ້ຳບາກ"  # Nambak district office: tone mark on AM
KHMER: Final = "ក្រសួងអប់រំ យុវជន និងកីឡា"  # Ministry of Education, Youth and Sport
KHMER_OFFICE: Final = "មន្ទីរខេត្តព្រះវិហារ"
EMPTY: Final = "Ministry of Planning"
SCRIPT: Final = "<script>alert(1)</script>"
IMG: Final = '"><img src=x onerror=alert(2)>'
HOSTILE_ID: Final = "X'\"><svg onload=alert(3)>"
LONG_LIST: Final = 1500


def sample_report() -> ControlsReport:
    groups = [
        Group(EMPTY, "", 0, 0, {}),
        Group(
            KHMER,
            KHMER_OFFICE,
            2400,
            900,
            {R.NO_CARD: LONG_LIST, R.DUPLICATE_IDENTITY: 2, R.ACCOUNT_CHANGED: 4},
        ),
        Group(
            LAO,
            LAO_OFFICE,
            1200,
            1020,
            {R.CONTRACT_ENDED: 7, R.PAST_RETIREMENT_AGE: 3, R.DUPLICATE_IDENTITY: 2},
        ),
        Group(SCRIPT, IMG, 37, 0, {R.ACCOUNT_CHANGED: 1}),
    ]
    total = Group(
        "",
        "",
        sum(g.active for g in groups),
        sum(g.enrolled for g in groups),
        {
            R.CONTRACT_ENDED: 7,
            R.PAST_RETIREMENT_AGE: 3,
            R.DUPLICATE_IDENTITY: 4,
            R.NO_CARD: LONG_LIST,
            R.ACCOUNT_CHANGED: 5,
        },
    )
    flagged = [Flagged(f"KH-MOEYS-{i:06d}", KHMER, KHMER_OFFICE, R.NO_CARD) for i in range(1500)]
    flagged += [Flagged(f"LA-MOES-{i:06d}", LAO, LAO_OFFICE, R.CONTRACT_ENDED) for i in range(7)]
    flagged += [
        Flagged(f"LA-MOES-1{i:05d}", LAO, LAO_OFFICE, R.PAST_RETIREMENT_AGE) for i in range(3)
    ]
    flagged += [Flagged("LA-MOES-200001", LAO, LAO_OFFICE, R.DUPLICATE_IDENTITY)] * 2
    flagged += [Flagged("KH-MOEYS-900001", KHMER, KHMER_OFFICE, R.DUPLICATE_IDENTITY)] * 2
    flagged += [
        Flagged(f"KH-MOEYS-8{i:05d}", KHMER, KHMER_OFFICE, R.ACCOUNT_CHANGED) for i in range(4)
    ]
    flagged.append(Flagged(HOSTILE_ID, SCRIPT, IMG, R.ACCOUNT_CHANGED))
    changes = [
        # A death reported 40 days late at a fortnightly payroll: three pay periods at risk.
        Change(
            "KH-MOEYS-000777",
            KHMER,
            KHMER_OFFICE,
            "deceased",
            date(2026, 10, 15),
            date(2026, 11, 24),
            40,
            3,
            True,
        ),
        Change(
            HOSTILE_ID, SCRIPT, IMG, "retired", date(2026, 11, 2), date(2026, 11, 22), 20, 2, False
        ),
        Change(
            "LA-MOES-000042",
            LAO,
            LAO_OFFICE,
            "dismissed",
            date(2026, 11, 10),
            date(2026, 11, 13),
            3,
            1,
            False,
        ),
    ]
    return ControlsReport(
        as_of=date(2026, 11, 30),
        period_start=date(2026, 11, 1),
        ministry=None,
        pay_period_days=14,
        late_after_days=14,
        groups=groups,
        total=total,
        flagged=flagged,
        changes=changes,
        median_lag_days=20.0,
        p90_lag_days=40.0,
        retroactive_share=1 / 3,
        lag_by_month=[
            MonthLag("2026-06", 0, None),
            MonthLag("2026-07", 4, 12.5),
            MonthLag("2026-08", 2, 9.0),
            MonthLag("2026-09", 5, 31.0),
            MonthLag("2026-10", 1, 17.0),
            MonthLag("2026-11", 3, 20.0),
        ],
        approvals={"hr_correction": {"pending": 2}, "revoke": {"done": 3, "rejected": 1}},
    )
