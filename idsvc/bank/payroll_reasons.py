"""The reason codes of a payroll check's answer and what each means for a bank: one table. The
OpenAPI description of ``reasons`` is made from it, a test holds the README's table to it, and
docs/payroll-controls.md explains the controls behind the flags.

Some stop a salary (``active_for_payroll`` false): the person is unknown, no longer employed,
suspended, or their contract has ended. The others are flags a person has to look at.
"""

from __future__ import annotations

from enum import StrEnum


class PayrollReason(StrEnum):
    UNKNOWN_EMPLOYEE = "UNKNOWN_EMPLOYEE"
    UNKNOWN_CARD = "UNKNOWN_CARD"
    HOLDER_INACTIVE = "HOLDER_INACTIVE"
    HOLDER_SUSPENDED = "HOLDER_SUSPENDED"
    CONTRACT_ENDED = "CONTRACT_ENDED"
    CARD_REVOKED = "CARD_REVOKED"
    CARD_SUSPENDED = "CARD_SUSPENDED"
    CARD_SUPERSEDED = "CARD_SUPERSEDED"
    PAST_RETIREMENT_AGE = "PAST_RETIREMENT_AGE"
    DUPLICATE_IDENTITY = "DUPLICATE_IDENTITY"
    NO_CARD = "NO_CARD"
    DUPLICATE_IN_BATCH = "DUPLICATE_IN_BATCH"
    ACCOUNT_SHARED = "ACCOUNT_SHARED"
    ACCOUNT_CHANGED = "ACCOUNT_CHANGED"


# What a bank should do about each code (mobile_api.schemas.payroll describes ``reasons`` with it;
# tests/idsvc/bank/test_payroll_reasons.py holds the README's table to it).
MEANING: dict[PayrollReason, str] = {
    PayrollReason.UNKNOWN_EMPLOYEE: "the register has no such employee: do not pay; ask HR",
    PayrollReason.UNKNOWN_CARD: "no card with that serial ever went live: do not pay",
    PayrollReason.HOLDER_INACTIVE: (
        "retired, dismissed, deceased or contract ended in HR: do not pay"
    ),
    PayrollReason.HOLDER_SUSPENDED: "suspended in HR (pay suspended with employment)",
    PayrollReason.CONTRACT_ENDED: (
        "the contract's last day has passed: do not pay unless HR records an extension"
    ),
    PayrollReason.CARD_REVOKED: "the card named was revoked (a salary is not stopped by it)",
    PayrollReason.CARD_SUSPENDED: "the card named is suspended (a salary is not stopped by it)",
    PayrollReason.CARD_SUPERSEDED: "the card named was replaced by a newer card",
    PayrollReason.PAST_RETIREMENT_AGE: (
        "still active in HR past the retirement age: check for an extension before paying"
    ),
    PayrollReason.DUPLICATE_IDENTITY: (
        "another employee record has the same national ID, or the same name, date of birth "
        "and sex: one person may be paid twice; ask the ministry"
    ),
    PayrollReason.NO_CARD: (
        "active past the enrolment grace and never enrolled at a desk: nobody has seen "
        "this person; ask the ministry to confirm them in person"
    ),
    PayrollReason.DUPLICATE_IN_BATCH: "this person is on several lines of the batch",
    PayrollReason.ACCOUNT_SHARED: (
        "this account also receives another person's salary (in this batch or recently)"
    ),
    PayrollReason.ACCOUNT_CHANGED: (
        "not the account you paid this person into last time, changed recently: confirm "
        "the change with the person before paying"
    ),
}
