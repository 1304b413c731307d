"""Domain errors of idsvc. Each carries a stable ``code`` and the CLI exit status it maps to.

    IdsvcError
    ├── UnknownEmployee          (4)  no such employee id in the register
    ├── HolderNotEligible        (5)  the person may not get a credential (not active)
    ├── UnknownCredential        (6)  no such credential id
    ├── InvalidTransition        (7)  e.g. reinstating a revoked credential
    ├── NotInitialised           (3)  no database schema or no issuer key: run `idsvc init`
    ├── UnknownIssuer            (3)  no issuer with that slug
    ├── IssuanceNotPending       (7)  confirming something that is not awaiting confirmation
    ├── CardIssuanceFailed       (11) the card step failed; nothing went live
    └── CardNotIssued            (15) the card holds no credential (blank or wiped)

Errors from other layers keep their own trees (``keys.errors``, ``cardio.errors``,
``idsvc.storage.db``, ``idsvc.formats.hr_csv``); the CLI maps each to its own exit status.
"""

from __future__ import annotations


class IdsvcError(Exception):
    code = "ERROR"
    exit_code = 1


class UnknownEmployee(IdsvcError):
    code = "UNKNOWN_EMPLOYEE"
    exit_code = 4

    def __init__(self, employee_id: str) -> None:
        super().__init__(f"no employee {employee_id!r} in the register")


class HolderNotEligible(IdsvcError):
    code = "HOLDER_NOT_ELIGIBLE"
    exit_code = 5


class UnknownCredential(IdsvcError):
    code = "UNKNOWN_CREDENTIAL"
    exit_code = 6

    def __init__(self, credential_id: str) -> None:
        super().__init__(f"no credential {credential_id!r}")


class InvalidTransition(IdsvcError):
    code = "INVALID_TRANSITION"
    exit_code = 7


class IssuanceNotPending(IdsvcError):
    code = "ISSUANCE_NOT_PENDING"
    exit_code = 7


class NotInitialised(IdsvcError):
    code = "NOT_INITIALISED"
    exit_code = 3


class UnknownIssuer(IdsvcError):
    code = "UNKNOWN_ISSUER"
    exit_code = 3

    def __init__(self, slug: str) -> None:
        super().__init__(f"no issuer {slug!r} (see `idsvc init --issuer`)")


class CardIssuanceFailed(IdsvcError):
    code = "CARD_ISSUANCE_FAILED"
    exit_code = 11


class CardNotIssued(IdsvcError):
    code = "CARD_NOT_ISSUED"
    exit_code = 15
