"""Domain errors of idsvc. Each carries a stable ``code`` (its name on the wire and in logs).

What an error means to a caller is decided at the edge, once each: the CLI's exit status in
``idsvc.cli.errors`` and the HTTP answer in ``mobile_api.problems``. A test checks that both
tables place every class below.

    IdsvcError
    ├── UnknownEmployee               no such employee id in the register
    ├── HolderNotEligible             the person may not get a credential (not active)
    │   └── WalletOfferRefused        no phone credential offer: not active, no photo, contract
    │                                 ended (idsvc.wallet.offers)
    ├── UnknownCredential             no such credential id
    ├── InvalidTransition             e.g. reinstating a revoked credential
    ├── NotInitialised                no database schema or no issuer key: run `idsvc init`
    ├── UnknownIssuer                 no issuer with that slug
    ├── ConfigurationInvalid          a setting (IDSVC_*) is malformed or out of range; each
    │                                 bad variable is named with what it accepts
    ├── CorrectionRefused             an HR status correction without a reason, with the same
    │                                 status, or with a status date that cannot be right
    ├── IssuanceNotPending            confirming something that is not awaiting confirmation
    ├── CardIssuanceFailed            the card step failed; nothing went live
    │   └── KeyNotAttested            the card key has no valid proof it was made on a card
    ├── CardNotIssued                 the card holds no credential (blank or wiped)
    ├── PrintedQrError                the printed Claim 169 QR (docs/claim169.md)
    │   ├── QrPayloadTooLarge         the credential would need QR version 25 or more
    │   └── QrImageUnreadable         not a PNG/JPEG, file too big, or no QR code found in it
    ├── PrintRefused                  a photo or a card face cannot be made (idsvc.register.photos,
    │   │                             idsvc.credentials.card_faces); nothing was stored
    │   ├── PhotoRejected             not an image, not JPEG/PNG, too large, too small, a bomb
    │   ├── PhotoMissing              the person has no photo yet (`idsvc photo`)
    │   └── CardFaceFailed            the face cannot be drawn (no live credential, no font)
    ├── FaceDetectorUnavailable       the installed OpenCV cannot detect faces (OpenCV 5, none):
    │                                 a photo cannot be stored until OpenCV 4 is installed
    ├── ApiClientError                API clients (idsvc.clients.api_clients)
    │   ├── UnknownApiClient          no client with that name or id
    │   ├── ApiClientExists           the name is taken
    │   ├── InvalidScope              a scope that is not verify, payroll, hr:write, admin
    │   └── AuthenticationFailed      missing, unknown, rotated-out secret or disabled client
    ├── RateLimited                   too many requests in the current window (retry_after s)
    ├── WalletRequestRefused          an OpenID4VCI token, nonce or credential request refused;
    │                                 ``error`` is the spec's code (invalid_grant ...)
    ├── OperationRefused              an operations command (idsvc.operations) cannot proceed
    │   ├── DowngradeRefused          the database is newer than this idsvc, or a target is older
    │   ├── RestoreRefused            the target database is not empty (use --force)
    │   ├── BackupInvalid             not an idsvc backup, damaged, or from an unknown format
    │   ├── ToolMissing               pg_dump/pg_restore for the server's version not found
    │   └── ReportRefused             a report asked for a day in the future (idsvc.reports)
    ├── OperatorError                 operators and their sessions (idsvc.staff.operators)
    │   ├── UnknownOperator, OperatorExists, InvalidOperator (a rule the input breaks)
    │   ├── LoginRefused              wrong name, password or one-time code (one message)
    │   │   └── OperatorLocked        too many failed logins: locked for a while
    │   ├── SessionInvalid            unknown, ended, idle-expired or expired session
    │   └── NotPermitted              the role, office or desk does not allow the action
    ├── ApprovalError                 maker-checker (idsvc.staff.approvals)
    │   ├── UnknownApproval, ApprovalNotPending (decided or expired)
    │   └── SelfApproval              the requester cannot approve their own request
    ├── BankApiError                  the bank side: payroll, change feed, webhooks, HR sync
    │   ├── PayrollError → InvalidPayrollBatch   empty, > 10,000 items, not one identifier
    │   ├── ChangeFeedError           bad page size or event pattern
    │   │   └── InvalidCursor         a cursor this feed did not hand out
    │   ├── WebhookError → InvalidWebhook (URL, events, client, scope), UnknownWebhook
    │   ├── HrSyncError → InvalidHrRecords, IdempotencyConflict (same key, other body)
    │   └── ServerSecretError         server secret file missing, readable by others, malformed
    ├── CentreProblem                 (at a desk) a centre answer the desk has no class of its
    │   │                             own for: it keeps the centre's code and text (it may
    │   │                             concern one person: not a DeskError, a batch goes on)
    │   ├── CentreNotFound            the centre has no such thing (an ``UNKNOWN_…`` code)
    │   └── CentreUnavailable         the centre cannot serve now (HTTP 503)
    ├── DeskError                     remote issuance desks (idsvc.desks.registry)
    │   ├── UnknownDesk, DeskExists
    │   ├── EnrolmentRefused          wrong, used or expired enrolment code
    │   ├── DeskRefused               unknown key, disabled or not enrolled desk
    │   ├── DeskRequestInvalid        missing, stale, replayed or wrongly signed request proof
    │   └── CentreUnreachable         (at the desk) no answer from the centre, or a dropped link
    └── HolderError                   the holder's own page and correction requests (idsvc.wallet)
        ├── HolderProofInvalid        the presentation or its key-binding JWT does not verify
        ├── HolderNonceInvalid        a nonce not handed out, used already or expired (a replay)
        ├── HolderCredentialNotLive   not a live phone credential in the register (revoked ...)
        ├── HolderSessionInvalid      unknown or expired session token
        ├── CorrectionRequestInvalid  a field not in the allow-list, an empty or too long text
        ├── TooManyOpenCorrections    the person has the most open requests allowed
        ├── UnknownCorrectionRequest  no correction request with that id
        └── CorrectionAlreadyDecided  a request is decided once

Errors from other layers keep their own trees (``keys.errors``, ``cardio.errors``,
``idsvc.storage.errors``, ``idsvc.formats.hr_csv``); the same two tables map them.
"""

from __future__ import annotations


class IdsvcError(Exception):
    code = "ERROR"


class UnknownEmployee(IdsvcError):
    code = "UNKNOWN_EMPLOYEE"

    def __init__(self, employee_id: str) -> None:
        super().__init__(f"no employee {employee_id!r} in the register")


class HolderNotEligible(IdsvcError):
    code = "HOLDER_NOT_ELIGIBLE"


class WalletOfferRefused(HolderNotEligible):
    """No credential offer for the phone: the person is not active, has no stored photo (the
    phone credential carries it) or their contract has ended; the message says which."""

    code = "WALLET_OFFER_REFUSED"


class UnknownCredential(IdsvcError):
    code = "UNKNOWN_CREDENTIAL"

    def __init__(self, credential_id: str) -> None:
        super().__init__(f"no credential {credential_id!r}")


class InvalidTransition(IdsvcError):
    code = "INVALID_TRANSITION"


class IssuanceNotPending(IdsvcError):
    code = "ISSUANCE_NOT_PENDING"


class NotInitialised(IdsvcError):
    code = "NOT_INITIALISED"


class UnknownIssuer(IdsvcError):
    code = "UNKNOWN_ISSUER"

    def __init__(self, slug: str) -> None:
        super().__init__(f"no issuer {slug!r} (see `idsvc init --issuer`)")


class CardIssuanceFailed(IdsvcError):
    code = "CARD_ISSUANCE_FAILED"


class KeyNotAttested(CardIssuanceFailed):
    """The card key comes with no valid proof that it was generated on a card."""

    code = "KEY_NOT_ATTESTED"


class CardNotIssued(IdsvcError):
    code = "CARD_NOT_ISSUED"


class PrintedQrError(IdsvcError):
    code = "PRINTED_QR_ERROR"


class QrPayloadTooLarge(PrintedQrError):
    code = "QR_PAYLOAD_TOO_LARGE"


class QrImageUnreadable(PrintedQrError):
    code = "QR_IMAGE_UNREADABLE"


class PrintRefused(IdsvcError):
    code = "PRINT_REFUSED"


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


class ApiClientError(IdsvcError):
    code = "API_CLIENT_ERROR"


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


class WalletRequestRefused(IdsvcError):
    """An OpenID4VCI request refused (idsvc.wallet): ``error`` is the code the spec gives the
    wallet (``invalid_grant``, ``invalid_token``, ``invalid_proof``, ``invalid_nonce`` ...), the
    message its ``error_description``; never a code or token the caller sent."""

    code = "WALLET_REQUEST_REFUSED"

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class RateLimited(IdsvcError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit reached; retry after {retry_after} s")
        self.retry_after = retry_after


class OperationRefused(IdsvcError):
    code = "OPERATION_REFUSED"


class DowngradeRefused(OperationRefused):
    code = "DOWNGRADE_REFUSED"


class RestoreRefused(OperationRefused):
    code = "RESTORE_REFUSED"


class BackupInvalid(OperationRefused):
    code = "BACKUP_INVALID"


class ToolMissing(OperationRefused):
    code = "TOOL_MISSING"


class ReportRefused(OperationRefused):
    code = "REPORT_REFUSED"


class OperatorError(IdsvcError):
    code = "OPERATOR_ERROR"


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


class CorrectionRefused(IdsvcError):
    code = "CORRECTION_REFUSED"


class DeskError(IdsvcError):
    code = "DESK_ERROR"


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


class CentreProblem(IdsvcError):
    """(At a desk.) A problem answer from the centre whose code the desk has no class of its
    own for: the error keeps the centre's code and text, so the desk reports what the centre
    said. Not a ``DeskError``: it may concern one person only, and a desk's batch goes on."""

    code = "CENTRE_PROBLEM"

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code


class CentreNotFound(CentreProblem):
    """The centre has no such thing (its code is ``UNKNOWN_…``)."""


class CentreUnavailable(CentreProblem):
    """The centre cannot serve now (HTTP 503: its database, issuer key or settings)."""


class BankApiError(IdsvcError):
    code = "BANK_API_ERROR"


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


class HolderError(IdsvcError):
    """The holder's own page (idsvc.wallet.holder) and their correction requests
    (idsvc.wallet.corrections)."""

    code = "HOLDER_ERROR"


class HolderProofInvalid(HolderError):
    """The presentation of the phone credential, or its key-binding JWT, does not verify; the
    message names the check, never the presented text."""

    code = "HOLDER_PROOF_INVALID"


class HolderNonceInvalid(HolderError):
    code = "HOLDER_NONCE_INVALID"

    def __init__(self) -> None:
        super().__init__(
            "the nonce was not handed out by POST /v1/holder/nonce, is used already or has "
            "expired: ask for a new one"
        )


class HolderCredentialNotLive(HolderError):
    code = "HOLDER_CREDENTIAL_NOT_LIVE"


class HolderSessionInvalid(HolderError):
    code = "HOLDER_SESSION_INVALID"

    def __init__(self) -> None:
        super().__init__("unknown or expired holder session: open a new one")


class CorrectionRequestInvalid(HolderError):
    code = "CORRECTION_REQUEST_INVALID"


class TooManyOpenCorrections(HolderError):
    code = "TOO_MANY_OPEN_CORRECTIONS"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"{limit} correction requests are open already: wait for HR to answer them"
        )


class UnknownCorrectionRequest(HolderError):
    code = "UNKNOWN_CORRECTION_REQUEST"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"no correction request {request_id!r}")


class CorrectionAlreadyDecided(HolderError):
    code = "CORRECTION_ALREADY_DECIDED"

    def __init__(self, request_id: str, status: str) -> None:
        super().__init__(f"correction request {request_id!r} is {status} already")
