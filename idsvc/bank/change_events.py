"""The change feed's event types: what a payroll bank can subscribe to and receive.

Plain names, apart from ``idsvc.bank.change_feed`` (which writes and reads them in the database), so
that the command line can list them in its help without loading the storage layer.
"""

from __future__ import annotations

from typing import Final

# A person's new HR status → the event a bank receives.
EMPLOYEE_EVENTS: Final = {
    "retired": "employee.retired",
    "deceased": "employee.deceased",
    "dismissed": "employee.dismissed",
    "contract_ended": "employee.contract_ended",
    "suspended": "employee.suspended",
    "active": "employee.reinstated",
}
# A credential's new state → the event a bank receives.
CREDENTIAL_EVENTS: Final = {
    "revoked": "credential.revoked",
    "suspended": "credential.suspended",
    "live": "credential.reinstated",
    "superseded": "credential.superseded",
}
EVENT_TYPES: Final = frozenset(EMPLOYEE_EVENTS.values()) | frozenset(CREDENTIAL_EVENTS.values())
# Why a change happened, as the feed and webhooks say it: a stable code, never the free text an
# operator typed (that stays in the audit log, which banks do not read).
REASON_CODES: Final = frozenset(
    {"HR_STATUS_CHANGE", "CARD_REPLACED", "CARD_LOST", "OPERATOR_DECISION"}
)
