"""The one verification function every caller uses (CLI, API, desk; the web page mirrors it).

``verify_credential`` never raises for a bad credential: it returns a ``VerificationResult`` whose
``reasons`` hold stable codes (docs/api.md, the verification API). It raises only for a programming
error.

Order matters: nothing in a token is believed before its signature checks out, so a bad
signature, an unknown key or a malformed token stops the check; after that every other problem
is collected (an expired *and* revoked credential reports both).

A credential comes in two forms, the JWT (chip, API) and the printed Claim 169 QR
(docs/claim169.md), told apart by their alphabets. Each form's signature and shape are checked
by its own codec and turned into one ``VerifiedClaims``; the rules after that are shared, so
both forms get the same reason codes and the same result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, NamedTuple, Protocol

from idsvc.formats import claim169
from idsvc.formats.credentials import CREDENTIAL_TYP, holder_view
from idsvc.formats.hr_csv import ENDED_STATUSES
from idsvc.formats.jws import (
    BadSignature,
    JwsError,
    UnknownKey,
    verify_compact,
)
from idsvc.formats.status_list import Status, StatusIndexError, StatusListError, parse_reference
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
    CHALLENGE_INVALID = "CHALLENGE_INVALID"  # card challenge unknown, expired or already used
    # A phone credential's key-binding JWT missing, or not signed by the credential's key, or
    # not for this request (nonce, audience), or over another presentation (sd_hash), or stale.
    HOLDER_BINDING_INVALID = "HOLDER_BINDING_INVALID"


# How far a verifier's clock may disagree with an issuer's: applied to a credential's exp and
# nbf here, and to a status list's iat (one from further ahead is not fresh: offline_trust).
CLOCK_SKEW: Final = timedelta(seconds=60)


class StatusUnavailable(Exception):
    """The status list could not be had (network, unknown list, bad signature on it)."""


class TrustStale(Exception):
    """The offline copy of keys or status lists is older than allowed."""


class TrustStore(Protocol):
    def key_for(self, kid: str) -> tuple[str, PublicKey]:
        """Return (issuer ``iss``, public key) for a kid; raise ``KeyError`` if unknown."""
        ...

    def key_for_hint(self, hint: str) -> tuple[str, PublicKey]:
        """The same for the printed QR's kid hint (``claim169.kid_hint``); ``KeyError`` if no
        key, or more than one, has that hint (``claim169.keys_by_hint``)."""
        ...


class StatusSource(Protocol):
    def status_of(self, uri: str, idx: int, *, iss: str, now: datetime) -> int:
        """Status value at (uri, idx); raise ``StatusUnavailable`` or ``TrustStale``, or
        ``StatusIndexError`` when ``idx`` lies at or beyond the list's size (the Token Status
        List draft: such a token is rejected, never taken as valid)."""
        ...


class HolderSource(Protocol):
    def employment_status(self, employee_id: str) -> str | None:
        """HR status of the person, or None when the register does not know them."""
        ...


@dataclass(frozen=True, init=False)
class VerificationResult:
    valid: bool
    status: str
    reasons: tuple[Reason, ...]
    holder: dict[str, str] | None = None
    credential_id: str | None = None
    issuer: str | None = None
    expires_at: datetime | None = None
    claims: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __init__(
        self,
        valid: bool,
        status: str,
        reasons: tuple[Reason, ...],
        holder: dict[str, str] | None = None,
        credential_id: str | None = None,
        issuer: str | None = None,
        expires_at: datetime | None = None,
        claims: dict[str, Any] | None = None,
    ) -> None:
        # The generated __init__ of a frozen dataclass sets each field through
        # object.__setattr__; writing the instance dict costs half (every check makes one).
        values = self.__dict__
        values["valid"] = valid
        values["status"] = status
        values["reasons"] = reasons
        values["holder"] = holder
        values["credential_id"] = credential_id
        values["issuer"] = issuer
        values["expires_at"] = expires_at
        values["claims"] = {} if claims is None else claims

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


# A result's status: that of the first of these reasons it holds (the most serious first).
# The web verifier reads this order from mobile_api/static/verify/reasons.js, which
# scripts/web_reasons.py writes from here: run it after changing the order.
STATUS_PRIORITY: Final = (
    (Reason.CARD_NOT_GENUINE, "not_genuine"),
    (Reason.HOLDER_BINDING_INVALID, "not_genuine"),
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
    for reason, status in STATUS_PRIORITY:
        if reason in reasons:
            return status
    return "invalid"


def failed(reason: Reason) -> VerificationResult:
    """The result of a check that stopped at ``reason`` (a form's signature or shape)."""
    return VerificationResult(valid=False, status=_summary([reason]), reasons=(reason,))


def numeric_date(value: object, claim: str) -> datetime:
    """A NumericDate claim (RFC 7519: whole seconds since the epoch) as an aware UTC datetime.

    Raises ``ValueError`` for anything else: a missing value, a non-integer, or a number outside
    what a date can hold (``10**20``, ``-10**14``). Every token form reads its dates through
    here, so an absurd date is a malformed token, never an internal error further down.
    """
    if type(value) is not int:  # bool is a subclass of int: refused too
        raise ValueError(f"claim {claim!r} missing or not an integer")
    try:
        return datetime.fromtimestamp(value, UTC)  # tz by keyword would cost 0.1 µs more
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"claim {claim!r} is outside the range of dates") from exc


def validity_dates(claims: dict[str, Any]) -> tuple[datetime, datetime]:
    """``exp`` and ``nbf`` (``iat`` when there is no ``nbf``) as dates, with ``iat`` checked too
    when present; ``ValueError`` (``numeric_date``) for the first that is not a date."""
    exp = numeric_date(claims.get("exp"), "exp")
    iat = claims.get("iat")
    nbf_claim = claims.get("nbf", iat)
    nbf = numeric_date(nbf_claim, "nbf")
    # An iat that is the integer just read as nbf is a date too (the issuer writes nbf = iat).
    if "iat" in claims and not (type(iat) is int and iat == nbf_claim):
        numeric_date(iat, "iat")
    return exp, nbf


def require_texts(values: Iterable[object]) -> None:
    """Raise ``ValueError`` unless every value is text that can be stored and sent back.

    A JSON string may hold NUL or a lone surrogate: neither can be stored (PostgreSQL text)
    nor sent back as UTF-8, so such a claim is malformed rather than a crash further down.
    The values are checked joined, in one pass, as every verification runs this.
    """
    try:
        # str.join refuses any item that is not text (None, a number, a list): the type check
        # of every value, in C rather than a Python loop.
        joined = "".join(values)  # type: ignore[arg-type]  # the TypeError is the check
    except TypeError:
        raise ValueError("claim missing or not text") from None
    if "\x00" in joined:
        raise ValueError("claim holds NUL")
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("claim is not valid Unicode") from exc


def card_matches(payload: dict[str, Any], card_key: PublicKey) -> bool:
    """Whether the credential's ``cnf`` names this card key (RFC 7800, compared by thumbprint)."""
    cnf = payload.get("cnf")
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict):
        return False
    try:
        return thumbprint(cnf["jwk"]) == thumbprint(jwk_of(card_key))
    except (KeyError, TypeError, ValueError):
        return False


class VerifiedClaims(NamedTuple):
    """One credential whose signature and shape have been checked, whichever form it came in
    (the JWT, or the printed Claim 169 QR): the shared rules below run on this alone.

    ``payload`` speaks the JWT's vocabulary for both forms (``sub``, ``jti``, ``status``...), so
    callers that read ``VerificationResult.claims`` need not know which form was scanned; the
    printed form has no ``unit`` or ``grade`` (docs/claim169.md). A named tuple, immutable like
    the frozen dataclass it replaces, at a third of its construction cost (every check makes one).
    """

    iss: str
    credential_id: str
    employee_id: str
    holder: dict[str, str]
    expires_at: datetime
    not_before: datetime
    status_uri: str
    status_idx: int
    payload: dict[str, Any]


class IssuerKeys:
    """The ``key_for`` of a JWS check: the key a header's ``kid`` names in the trust store,
    remembering whose it is (``iss``), so that the caller can refuse a token whose ``iss``
    claims another issuer. Every JWS form (the card's JWT, the phone's SD-JWT VC) looks its
    issuer key up through here."""

    __slots__ = ("iss", "trust")

    def __init__(self, trust: TrustStore) -> None:
        self.trust = trust
        self.iss: str | None = None

    def __call__(self, header: dict[str, Any]) -> PublicKey:
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise UnknownKey("no kid")
        try:
            self.iss, key = self.trust.key_for(kid)
        except KeyError as exc:
            raise UnknownKey(kid) from exc
        return key


def signature_reason(exc: JwsError) -> Reason:
    """The reason code of a JWS that failed its check (``UnknownKey``, ``BadSignature``, or
    anything else wrong with it: malformed)."""
    if isinstance(exc, UnknownKey):
        return Reason.UNKNOWN_KEY
    if isinstance(exc, BadSignature):
        return Reason.BAD_SIGNATURE
    return Reason.MALFORMED


def _jwt_claims(token: str, trust: TrustStore) -> VerifiedClaims | Reason:
    key_for = IssuerKeys(trust)
    try:
        verified = verify_compact(token, key_for=key_for, expected_typ=CREDENTIAL_TYP)
    except JwsError as exc:
        return signature_reason(exc)
    payload = verified.payload
    # A key of issuer A must not vouch for a token that claims issuer B.
    if payload.get("iss") != key_for.iss:
        return Reason.UNKNOWN_KEY
    try:
        exp, nbf = validity_dates(payload)
        holder = holder_view(payload)
        uri, idx = parse_reference(payload.get("status"))
        jti = payload.get("jti")
        iss = payload.get("iss")
        require_texts((*holder.values(), jti, iss))
    except (ValueError, TypeError, KeyError, StatusListError, KeysError):
        return Reason.MALFORMED
    assert isinstance(jti, str) and isinstance(iss, str)  # checked by require_texts
    # Positional: a named tuple's __new__ parses keywords in Python (every check makes one).
    return VerifiedClaims(iss, jti, holder["employee_id"], holder, exp, nbf, uri, idx, payload)


def _printed_claims(text: str, trust: TrustStore) -> VerifiedClaims | Reason:
    signer_iss: dict[str, str] = {}

    def key_for(hint: str) -> PublicKey:
        iss, key = trust.key_for_hint(hint)  # KeyError: the codec reports UnknownKey
        signer_iss["iss"] = iss
        return key

    try:
        printed = claim169.verify(text, key_for=key_for).credential
    except claim169.UnknownKey:
        return Reason.UNKNOWN_KEY
    except claim169.BadSignature:
        return Reason.BAD_SIGNATURE
    except claim169.Claim169Error:
        return Reason.MALFORMED
    if printed.issuer != signer_iss.get("iss"):
        return Reason.UNKNOWN_KEY
    try:
        exp = numeric_date(printed.expires_at, "exp")
        nbf = numeric_date(printed.valid_from, "nbf")
        numeric_date(printed.issued_at, "iat")
        require_texts(printed.holder().values())
    except ValueError:
        return Reason.MALFORMED
    payload: dict[str, Any] = {
        "iss": printed.issuer,
        "sub": printed.employee_id,
        "jti": printed.credential_id,
        "iat": printed.issued_at,
        "nbf": printed.valid_from,
        "exp": printed.expires_at,
        **printed.holder(),  # no unit or grade: the printed form does not carry them
        "status": {"status_list": {"idx": printed.status_idx, "uri": printed.status_uri}},
    }
    payload.pop("employee_id")
    if printed.date_of_birth is not None:
        payload["birthdate"] = printed.date_of_birth.isoformat()
    return VerifiedClaims(
        iss=printed.issuer,
        credential_id=printed.credential_id,
        employee_id=printed.employee_id,
        holder=printed.holder(),
        expires_at=exp,
        not_before=nbf,
        status_uri=printed.status_uri,
        status_idx=printed.status_idx,
        payload=payload,
    )


def verified_claims(text: str, trust: TrustStore) -> VerifiedClaims | Reason:
    """Check the signature and shape of a JWT or a printed QR (told apart by its alphabet;
    a tap URL's fragment counts as the QR it carries). A ``Reason`` when it fails."""
    text = text.strip()
    if text.startswith("eyJ"):  # a JWT header's '{"': neither a printed QR nor a tap URL
        return _jwt_claims(text, trust)
    try:
        printed = claim169.printed_text_of(text)
    except UnicodeDecodeError:
        return Reason.MALFORMED
    if claim169.looks_printed(printed):
        return _printed_claims(printed, trust)
    return _jwt_claims(text, trust)


def verify_credential(
    token: str,
    *,
    trust: TrustStore,
    status: StatusSource,
    holders: HolderSource | None,
    now: datetime,
    leeway: timedelta = CLOCK_SKEW,
    card_key: PublicKey | None = None,
) -> VerificationResult:
    """Check signature, issuer, validity period, status list, HR status and (if given) the card.

    ``token`` is the JWT or the printed Claim 169 QR text (or a tap URL carrying it): the same
    rules, reason codes and result shape apply to both (docs/claim169.md).
    """
    checked = verified_claims(token, trust)
    if isinstance(checked, Reason):
        return failed(checked)
    return shared_rules(
        checked, status=status, holders=holders, now=now, leeway=leeway, card_key=card_key
    )


def shared_rules(
    checked: VerifiedClaims,
    *,
    status: StatusSource,
    holders: HolderSource | None,
    now: datetime,
    leeway: timedelta = CLOCK_SKEW,
    card_key: PublicKey | None = None,
    found: tuple[Reason, ...] = (),
) -> VerificationResult:
    """The rules after a form's signature and shape check, the same for every form (the JWT,
    the printed QR, a phone's SD-JWT VC: ``idsvc.verification.presented``): validity period,
    status list, HR status, and (if given) the card. ``found``: what the form's own check
    collected after its signature verified (a phone's key binding), reported with the rest."""
    payload = checked.payload
    exp, nbf = checked.expires_at, checked.not_before
    uri, idx = checked.status_uri, checked.status_idx

    reasons: list[Reason] = []
    # Compared without adding to the token's dates, which may sit at the edge of the range.
    if now - leeway > exp:
        reasons.append(Reason.EXPIRED)
    if now + leeway < nbf:
        reasons.append(Reason.NOT_YET_VALID)
    try:
        value = status.status_of(uri, idx, iss=checked.iss, now=now)
    except StatusIndexError:
        return failed(Reason.MALFORMED)
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
        hr_status = holders.employment_status(checked.employee_id)
        if hr_status is None or hr_status in ENDED_STATUSES:
            reasons.append(Reason.HOLDER_INACTIVE)
        elif hr_status == "suspended" and Reason.SUSPENDED not in reasons:
            reasons.append(Reason.SUSPENDED)
    if card_key is not None and not card_matches(payload, card_key):
        reasons.append(Reason.CARD_NOT_GENUINE)
    reasons.extend(found)
    return VerificationResult(
        valid=not reasons,
        status=_summary(reasons),
        reasons=tuple(reasons),
        holder=checked.holder,
        credential_id=checked.credential_id,
        issuer=checked.iss,
        expires_at=exp,
        claims=payload,
    )
