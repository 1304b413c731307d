"""The one verification function every caller uses (CLI, API, desk; the web page mirrors it).

``verify_credential`` never raises for a bad credential: it returns a ``VerificationResult`` whose
``reasons`` hold the stable codes of DESIGN.md. It raises only for a programming error.

Order matters: nothing in a token is believed before its signature checks out, so a bad
signature, an unknown key or a malformed token stops the check; after that every other problem
is collected (an expired *and* revoked credential reports both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from idsvc.formats.credentials import CREDENTIAL_TYP, Holder
from idsvc.formats.hr_csv import ENDED_STATUSES
from idsvc.formats.jws import (
    BadSignature,
    JwsError,
    UnknownKey,
    UnsupportedAlgorithm,
    verify_compact,
)
from idsvc.formats.status_list import Status, StatusListError, parse_reference
from keys.errors import KeysError
from keys.jwk import PublicKey, thumbprint
from keys.jwk import public_jwk as jwk_of


class Reason(StrEnum):
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    MALFORMED = "MALFORMED"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"
    STATUS_UNAVAILABLE = "STATUS_UNAVAILABLE"
    TRUST_STALE = "TRUST_STALE"
    CARD_NOT_GENUINE = "CARD_NOT_GENUINE"
    HOLDER_INACTIVE = "HOLDER_INACTIVE"


class StatusUnavailable(Exception):
    """The status list could not be had (network, unknown list, bad signature on it)."""


class TrustStale(Exception):
    """The offline copy of keys or status lists is older than allowed."""


class TrustStore(Protocol):
    def key_for(self, kid: str) -> tuple[str, PublicKey]:
        """Return (issuer ``iss``, public key) for a kid; raise ``KeyError`` if unknown."""
        ...


class StatusSource(Protocol):
    def status_of(self, uri: str, idx: int, *, iss: str, now: datetime) -> int:
        """Status value at (uri, idx); raise ``StatusUnavailable`` or ``TrustStale``."""
        ...


class HolderSource(Protocol):
    def employment_status(self, employee_id: str) -> str | None:
        """HR status of the person, or None when the register does not know them."""
        ...


@dataclass(frozen=True)
class VerificationResult:
    valid: bool
    status: str
    reasons: tuple[Reason, ...]
    holder: dict[str, str] | None = None
    credential_id: str | None = None
    issuer: str | None = None
    expires_at: datetime | None = None
    claims: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "status": self.status,
            "reasons": [str(r) for r in self.reasons],
            "holder": self.holder,
            "credential_id": self.credential_id,
            "issuer": self.issuer,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


_STATUS_PRIORITY = (
    (Reason.CARD_NOT_GENUINE, "not_genuine"),
    (Reason.REVOKED, "revoked"),
    (Reason.HOLDER_INACTIVE, "revoked"),
    (Reason.SUSPENDED, "suspended"),
    (Reason.EXPIRED, "expired"),
    (Reason.NOT_YET_VALID, "not_yet_valid"),
    (Reason.STATUS_UNAVAILABLE, "unknown"),
    (Reason.TRUST_STALE, "unknown"),
)


def _summary(reasons: list[Reason]) -> str:
    if not reasons:
        return "valid"
    for reason, status in _STATUS_PRIORITY:
        if reason in reasons:
            return status
    return "invalid"


def _fail(reason: Reason) -> VerificationResult:
    return VerificationResult(valid=False, status=_summary([reason]), reasons=(reason,))


def _numeric(payload: dict[str, Any], claim: str) -> int:
    value = payload.get(claim)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"claim {claim!r} missing or not an integer")
    return value


def card_matches(payload: dict[str, Any], card_key: PublicKey) -> bool:
    """Whether the credential's ``cnf`` names this card key (RFC 7800, compared by thumbprint)."""
    cnf = payload.get("cnf")
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict):
        return False
    try:
        return thumbprint(cnf["jwk"]) == thumbprint(jwk_of(card_key))
    except (KeyError, TypeError, ValueError):
        return False


def verify_credential(
    token: str,
    *,
    trust: TrustStore,
    status: StatusSource,
    holders: HolderSource | None,
    now: datetime,
    leeway: timedelta = timedelta(seconds=60),
    card_key: PublicKey | None = None,
) -> VerificationResult:
    """Check signature, issuer, validity period, status list, HR status and (if given) the card."""
    signer_iss: dict[str, str] = {}

    def key_for(header: dict[str, Any]) -> PublicKey:
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise UnknownKey("no kid")
        try:
            iss, key = trust.key_for(kid)
        except KeyError as exc:
            raise UnknownKey(kid) from exc
        signer_iss["iss"] = iss
        return key

    token = token.strip()
    try:
        verified = verify_compact(token, key_for=key_for, expected_typ=CREDENTIAL_TYP)
    except UnknownKey:
        return _fail(Reason.UNKNOWN_KEY)
    except BadSignature:
        return _fail(Reason.BAD_SIGNATURE)
    except (UnsupportedAlgorithm, JwsError):
        return _fail(Reason.MALFORMED)
    payload = verified.payload
    # A key of issuer A must not vouch for a token that claims issuer B.
    if payload.get("iss") != signer_iss.get("iss"):
        return _fail(Reason.UNKNOWN_KEY)
    try:
        exp = _numeric(payload, "exp")
        nbf = payload.get("nbf", payload.get("iat"))
        nbf = _numeric({"nbf": nbf}, "nbf")
        holder = Holder.from_claims(payload)
        uri, idx = parse_reference(payload.get("status"))
        jti = payload.get("jti")
        if not isinstance(jti, str):
            raise ValueError("claim 'jti' missing")
    except (ValueError, TypeError, KeyError, StatusListError, KeysError):
        return _fail(Reason.MALFORMED)

    reasons: list[Reason] = []
    ts = now.timestamp()
    if ts > exp + leeway.total_seconds():
        reasons.append(Reason.EXPIRED)
    if ts + leeway.total_seconds() < nbf:
        reasons.append(Reason.NOT_YET_VALID)
    try:
        value = status.status_of(uri, idx, iss=payload["iss"], now=now)
    except TrustStale:
        reasons.append(Reason.TRUST_STALE)
    except StatusUnavailable:
        reasons.append(Reason.STATUS_UNAVAILABLE)
    else:
        if value == Status.SUSPENDED:
            reasons.append(Reason.SUSPENDED)
        elif value != Status.VALID:
            reasons.append(Reason.REVOKED)
    if holders is not None:
        hr_status = holders.employment_status(holder.employee_id)
        if hr_status is None or hr_status in ENDED_STATUSES:
            reasons.append(Reason.HOLDER_INACTIVE)
        elif hr_status == "suspended" and Reason.SUSPENDED not in reasons:
            reasons.append(Reason.SUSPENDED)
    if card_key is not None and not card_matches(payload, card_key):
        reasons.append(Reason.CARD_NOT_GENUINE)
    return VerificationResult(
        valid=not reasons,
        status=_summary(reasons),
        reasons=tuple(reasons),
        holder=holder.minimal(),
        credential_id=jti,
        issuer=payload["iss"],
        expires_at=datetime.fromtimestamp(exp, tz=UTC),
        claims=payload,
    )
