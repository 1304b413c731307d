"""Domain errors of idsvc. Each carries a stable ``code`` and the CLI exit status it maps to.

    IdsvcError
    ├── UnknownEmployee          (4)  no such employee id in the register
    ├── HolderNotEligible        (5)  the person may not get a credential (not active)
    ├── UnknownCredential        (6)  no such credential id
    ├── InvalidTransition        (7)  e.g. reinstating a revoked credential
    ├── NotInitialised           (3)  no database schema or no issuer key: run `idsvc init`
    ├── UnknownIssuer            (3)  no issuer with that slug
    ├── ConfigurationInvalid     (3)  a setting (IDSVC_*) is malformed or out of range; each
    │                                 bad variable is named with what it accepts
    ├── CorrectionRefused        (19) an HR status correction without a reason, with the same
    │                                 status, or with a status date that cannot be right
    ├── IssuanceNotPending       (7)  confirming something that is not awaiting confirmation
    ├── CardIssuanceFailed       (11) the card step failed; nothing went live
    ├── CardNotIssued            (15) the card holds no credential (blank or wiped)
    ├── PrintedQrError           (18) the printed Claim 169 QR (docs/claim169.md)
    │   ├── QrPayloadTooLarge         the credential would need QR version 25 or more
    │   └── QrImageUnreadable         not a PNG/JPEG, file too big, or no QR code found in it
    ├── PrintRefused             (20) a photo or a card face cannot be made (idsvc.register.photos,
    │   │                             idsvc.credentials.card_faces); nothing was stored
    │   ├── PhotoRejected             not an image, not JPEG/PNG, too large, too small, a bomb
    │   ├── PhotoMissing              the person has no photo yet (`idsvc photo`)
    │   └── CardFaceFailed            the face cannot be drawn (no live credential, no font)
    ├── FaceDetectorUnavailable  (27) the installed OpenCV cannot detect faces (OpenCV 5, none):
    │                                 a photo cannot be stored until OpenCV 4 is installed
    ├── ApiClientError           (21) API clients (idsvc.clients.api_clients)
    │   ├── UnknownApiClient          no client with that name or id
    │   ├── ApiClientExists           the name is taken
    │   ├── InvalidScope              a scope that is not verify, payroll, hr:write, admin
    │   └── AuthenticationFailed      missing, unknown, rotated-out secret or disabled client
    ├── RateLimited              (21) too many requests in the current window (retry_after s)
    ├── OperationRefused         (23) an operations command (idsvc.operations) cannot proceed
    │   ├── DowngradeRefused          the database is newer than this idsvc, or a target is older
    │   ├── RestoreRefused            the target database is not empty (use --force)
    │   ├── BackupInvalid             not an idsvc backup, damaged, or from an unknown format
    │   └── ToolMissing               pg_dump/pg_restore for the server's version not found
    ├── OperatorError            (24) operators and their sessions (idsvc.staff.operators)
    │   ├── UnknownOperator, OperatorExists, InvalidOperator (a rule the input breaks)
    │   ├── LoginRefused              wrong name, password or one-time code (one message)
    │   │   └── OperatorLocked        too many failed logins: locked for a while
    │   ├── SessionInvalid            unknown, ended, idle-expired or expired session
    │   └── NotPermitted              the role, office or desk does not allow the action
    ├── ApprovalError            (25) maker-checker (idsvc.staff.approvals)
    │   ├── UnknownApproval, ApprovalNotPending (decided or expired)
    │   └── SelfApproval              the requester cannot approve their own request
    ├── BankApiError             (22) the bank side: payroll, change feed, webhooks, HR sync
    │   ├── PayrollError → InvalidPayrollBatch   empty, > 10,000 items, not one identifier
    │   ├── ChangeFeedError           bad page size or event pattern
    │   │   └── InvalidCursor         a cursor this feed did not hand out
    │   ├── WebhookError → InvalidWebhook (URL, events, client, scope), UnknownWebhook
    │   ├── HrSyncError → InvalidHrRecords, IdempotencyConflict (same key, other body)
    │   └── ServerSecretError         server secret file missing, readable by others, malformed
    └── DeskError                (26) remote issuance desks (idsvc.desks.registry)
        ├── UnknownDesk, DeskExists
        ├── EnrolmentRefused          wrong, used or expired enrolment code
        ├── DeskRefused               unknown key, disabled or not enrolled desk
        ├── DeskRequestInvalid        missing, stale, replayed or wrongly signed request proof
        └── CentreUnreachable         (at the desk) no answer from the centre, or a dropped link

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


class KeyNotAttested(CardIssuanceFailed):
    """The card key comes with no valid proof that it was generated on a card."""

    code = "KEY_NOT_ATTESTED"


class CardNotIssued(IdsvcError):
    code = "CARD_NOT_ISSUED"
    exit_code = 15


class PrintedQrError(IdsvcError):
    code = "PRINTED_QR_ERROR"
    exit_code = 18


class QrPayloadTooLarge(PrintedQrError):
    code = "QR_PAYLOAD_TOO_LARGE"


class QrImageUnreadable(PrintedQrError):
    code = "QR_IMAGE_UNREADABLE"


class PrintRefused(IdsvcError):
    code = "PRINT_REFUSED"
    exit_code = 20


class PhotoRejected(PrintRefused):
    code = "PHOTO_REJECTED"


class PhotoMissing(PrintRefused):
    code = "PHOTO_MISSING"

    def __init__(self, employee_id: str) -> None:
        super().__init__(f"no photo for {employee_id!r}: take one with `idsvc photo`")


class CardFaceFailed(PrintRefused):
    code = "CARD_FACE_FAILED"


class FaceDetectorUnavailable(IdsvcError):
    """The installed OpenCV cannot find faces (OpenCV 5 has no Haar cascades): fix the install."""

    code = "FACE_DETECTOR_UNAVAILABLE"
    exit_code = 27


class ApiClientError(IdsvcError):
    code = "API_CLIENT_ERROR"
    exit_code = 21


class UnknownApiClient(ApiClientError):
    code = "UNKNOWN_API_CLIENT"

    def __init__(self, name: str) -> None:
        super().__init__(f"no API client {name!r}")


class ApiClientExists(ApiClientError):
    code = "API_CLIENT_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"an API client named {name!r} exists already")


class InvalidScope(ApiClientError):
    code = "INVALID_SCOPE"


class AuthenticationFailed(ApiClientError):
    """Deliberately one error for every cause: a caller learns nothing about which part was
    wrong (unknown client, wrong secret, disabled)."""

    code = "AUTHENTICATION_FAILED"

    def __init__(self) -> None:
        super().__init__("invalid or disabled API client credentials")


class RateLimited(IdsvcError):
    code = "RATE_LIMITED"
    exit_code = 21

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit reached; retry after {retry_after} s")
        self.retry_after = retry_after


class OperationRefused(IdsvcError):
    code = "OPERATION_REFUSED"
    exit_code = 23


class DowngradeRefused(OperationRefused):
    code = "DOWNGRADE_REFUSED"


class RestoreRefused(OperationRefused):
    code = "RESTORE_REFUSED"


class BackupInvalid(OperationRefused):
    code = "BACKUP_INVALID"


class ToolMissing(OperationRefused):
    code = "TOOL_MISSING"


class OperatorError(IdsvcError):
    code = "OPERATOR_ERROR"
    exit_code = 24


class UnknownOperator(OperatorError):
    code = "UNKNOWN_OPERATOR"

    def __init__(self, name: str) -> None:
        super().__init__(f"no operator {name!r}")


class OperatorExists(OperatorError):
    code = "OPERATOR_EXISTS"


class InvalidOperator(OperatorError):
    """A role, office, name or password that the rules refuse (the message names the rule)."""

    code = "INVALID_OPERATOR"


class LoginRefused(OperatorError):
    """One message for a wrong name, password or code: a guesser learns nothing from it."""

    code = "LOGIN_REFUSED"


class OperatorLocked(LoginRefused):
    code = "OPERATOR_LOCKED"


class SessionInvalid(OperatorError):
    code = "SESSION_INVALID"


class NotPermitted(OperatorError):
    code = "NOT_PERMITTED"


class ApprovalError(IdsvcError):
    code = "APPROVAL_ERROR"
    exit_code = 25


class UnknownApproval(ApprovalError):
    code = "UNKNOWN_APPROVAL"

    def __init__(self, approval_id: str) -> None:
        super().__init__(f"no approval {approval_id!r}")


class ApprovalNotPending(ApprovalError):
    code = "APPROVAL_NOT_PENDING"


class SelfApproval(ApprovalError):
    code = "SELF_APPROVAL"


class ConfigurationInvalid(IdsvcError):
    """One or more settings are unusable; the message names each variable, never its value."""

    code = "CONFIGURATION_INVALID"
    exit_code = 3


class CorrectionRefused(IdsvcError):
    code = "CORRECTION_REFUSED"
    exit_code = 19


class DeskError(IdsvcError):
    code = "DESK_ERROR"
    exit_code = 26


class UnknownDesk(DeskError):
    code = "UNKNOWN_DESK"

    def __init__(self, name: str) -> None:
        super().__init__(f"no desk {name!r}")


class DeskExists(DeskError):
    code = "DESK_EXISTS"


class EnrolmentRefused(DeskError):
    code = "ENROLMENT_REFUSED"


class DeskRefused(DeskError):
    """The desk may not act: unknown key, disabled, not enrolled, or another office's."""

    code = "DESK_REFUSED"


class DeskRequestInvalid(DeskError):
    """The request's signature proof is missing, malformed, stale, replayed or wrong."""

    code = "DESK_REQUEST_INVALID"


class CentreUnreachable(DeskError):
    """The desk could not reach the centre, or the link dropped mid-call."""

    code = "CENTRE_UNREACHABLE"


class BankApiError(IdsvcError):
    code = "BANK_API_ERROR"
    exit_code = 22


class PayrollError(BankApiError):
    code = "PAYROLL_ERROR"


class InvalidPayrollBatch(PayrollError):
    code = "INVALID_PAYROLL_BATCH"


class ChangeFeedError(BankApiError):
    code = "CHANGE_FEED_ERROR"


class InvalidCursor(ChangeFeedError):
    code = "INVALID_CURSOR"

    def __init__(self) -> None:
        super().__init__("the cursor is not one this feed handed out")


class WebhookError(BankApiError):
    code = "WEBHOOK_ERROR"


class InvalidWebhook(WebhookError):
    code = "INVALID_WEBHOOK"


class UnknownWebhook(WebhookError):
    code = "UNKNOWN_WEBHOOK"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"no webhook subscription {subscription_id!r}")


class HrSyncError(BankApiError):
    code = "HR_SYNC_ERROR"


class InvalidHrRecords(HrSyncError):
    code = "INVALID_HR_RECORDS"


class IdempotencyConflict(HrSyncError):
    code = "IDEMPOTENCY_CONFLICT"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different request body")


class ServerSecretError(BankApiError):
    code = "SERVER_SECRET_ERROR"
