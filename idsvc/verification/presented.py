"""Verifying a phone credential presented to an official: an SD-JWT VC with a key-binding JWT.

The same rules as a card's (``idsvc.verification.rules``): this module checks the form, the
way ``rules`` checks a JWT or a printed QR, and turns it into one ``VerifiedClaims``; then
``shared_rules`` judges the validity period, the status list and the HR status. So a revoked
phone credential is ``REVOKED``, a retired holder ``HOLDER_INACTIVE``, with the card's codes.

The form's checks, in order (nothing in the presentation is believed before its signature):

1. the issuer JWT: ``typ`` ``dc+sd-jwt`` (or ``vc+sd-jwt``, older wallets), signed by a key of
   the trust store found by ``kid``, whose issuer is the ``iss`` claimed; else ``UNKNOWN_KEY``,
   ``BAD_SIGNATURE`` or ``MALFORMED``, and the check stops;
2. the disclosures: each one's digest listed in the JWT exactly once (RFC 9901 §7.1). One that is
   not listed was altered or taken from another credential: ``BAD_SIGNATURE``, it stops;
3. the shape: ``sub``, ``jti``, dates, ``status``, ``cnf.jwk``, ``vct`` (when one is expected);
4. the key binding (RFC 9901 §7.3): a KB-JWT signed ES256 by ``cnf.jwk``, ``aud`` this verifier's
   client identifier, ``nonce`` the request's, ``sd_hash`` over exactly what was presented,
   ``iat`` recent. Any failure is ``HOLDER_BINDING_INVALID``, collected with the shared rules'
   reasons (as a card's ``CARD_NOT_GENUINE`` is): the credential is genuine, its bearer is not
   shown to hold it. A presentation replayed to another request fails here, never ``VALID``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from idsvc.formats import sd_jwt
from idsvc.formats.credentials import DISCLOSABLE
from idsvc.formats.jws import JwsError
from idsvc.formats.status_list import StatusListError, parse_reference
from idsvc.verification.rules import (
    CLOCK_SKEW,
    HolderSource,
    IssuerKeys,
    Reason,
    StatusSource,
    TrustStore,
    VerificationResult,
    VerifiedClaims,
    failed,
    require_texts,
    shared_rules,
    signature_reason,
    validity_dates,
)

SD_JWT_VC_TYPS: Final = frozenset({"dc+sd-jwt", "vc+sd-jwt"})

# A KB-JWT made longer ago than this is stale: a wallet signs it when it answers, and a request
# lives 5 minutes (idsvc.wallet.presentations).
KB_MAX_AGE: Final = timedelta(minutes=5)

# The claims a verifier's result may show as the holder's: the disclosable text claims but the
# date of birth (it reaches an official only in ``disclosed``, when asked for); the photo is
# checked to be an image data URI, the one form our issuer writes.
_HOLDER_TEXT_CLAIMS: Final = tuple(c for c in DISCLOSABLE if c not in ("birthdate", "photo"))


@dataclass(frozen=True)
class PresentedResult:
    """The verification result, and the claims the holder disclosed (after the signature
    and every disclosure checked out; empty otherwise)."""

    result: VerificationResult
    disclosed: dict[str, Any]


def _issuer_jwt(presented: sd_jwt.SdJwt, trust: TrustStore) -> tuple[str, dict[str, Any]] | Reason:
    key_for = IssuerKeys(trust)
    try:
        verified = sd_jwt.verify_issuer_jwt(presented, key_for=key_for, typs=SD_JWT_VC_TYPS)
    except JwsError as exc:
        return signature_reason(exc)
    # A key of issuer A must not vouch for a credential that claims issuer B.
    if key_for.iss is None or verified.payload.get("iss") != key_for.iss:
        return Reason.UNKNOWN_KEY
    return key_for.iss, verified.payload


def _holder(claims: dict[str, Any], employee_id: str) -> dict[str, str]:
    holder = {"employee_id": employee_id}
    for name in _HOLDER_TEXT_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            holder[name] = value
    photo = claims.get("photo")
    if isinstance(photo, str) and photo.startswith("data:image/"):
        holder["photo"] = photo
    return holder


def _verified_claims(iss: str, claims: dict[str, Any], vct: str | None) -> VerifiedClaims:
    """The shape check; ``ValueError`` (and kin) when a claim is missing or mistyped."""
    if vct is not None and claims.get("vct") != vct:
        raise ValueError("not a credential of our type")
    exp, nbf = validity_dates(claims)
    uri, idx = parse_reference(claims.get("status"))
    sub, jti = claims.get("sub"), claims.get("jti")
    require_texts((sub, jti, iss))
    assert isinstance(sub, str) and isinstance(jti, str)  # checked by require_texts
    if not sub:
        raise ValueError("sub is empty")
    holder = _holder(claims, sub)
    require_texts(holder.values())
    return VerifiedClaims(
        iss=iss,
        credential_id=jti,
        employee_id=sub,
        holder=holder,
        expires_at=exp,
        not_before=nbf,
        status_uri=uri,
        status_idx=idx,
        payload=claims,
    )


def verify_presentation(
    text: str,
    *,
    trust: TrustStore,
    status: StatusSource,
    holders: HolderSource | None,
    audience: str,
    nonce: str,
    now: datetime,
    vct: str | None = None,
    leeway: timedelta = CLOCK_SKEW,
    kb_max_age: timedelta = KB_MAX_AGE,
    wanted: Collection[str] | None = None,
) -> PresentedResult:
    """Verify ``<issuer JWT>~<disclosures>~<KB-JWT>`` for the verifier ``audience`` (its
    client identifier) and the request's ``nonce``. ``wanted``: the claims asked for; others
    a wallet disclosed anyway are left out of ``disclosed`` (and of the holder shown)."""
    try:
        presented = sd_jwt.parse(text.strip())
    except sd_jwt.SdJwtError:
        return PresentedResult(failed(Reason.MALFORMED), {})
    signed = _issuer_jwt(presented, trust)
    if isinstance(signed, Reason):
        return PresentedResult(failed(signed), {})
    iss, payload = signed
    try:
        claims = sd_jwt.disclosed_claims(payload, presented.disclosures)
    except sd_jwt.SdJwtError as exc:
        reason = Reason.BAD_SIGNATURE if exc.code == "bad_disclosure" else Reason.MALFORMED
        return PresentedResult(failed(reason), {})
    names = {d.name for d in presented.disclosures}
    if wanted is not None:
        names &= set(wanted)
    disclosed = {name: claims[name] for name in sorted(names) if name in claims}
    shown = {k: v for k, v in claims.items() if k not in _holder_claims_not(names)}
    try:
        checked = _verified_claims(iss, shown, vct)
    except (ValueError, TypeError, KeyError, StatusListError):
        return PresentedResult(failed(Reason.MALFORMED), {})
    found: tuple[Reason, ...] = ()
    cnf = payload.get("cnf")
    holder_jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if presented.kb_jwt is None or not isinstance(holder_jwk, dict):
        found = (Reason.HOLDER_BINDING_INVALID,)
    else:
        try:
            sd_jwt.check_kb_jwt(
                presented.kb_jwt,
                holder_jwk,
                sd_jwt_without_kb=presented.without_kb(),
                aud=audience,
                nonce=nonce,
                now=now,
                max_age=kb_max_age,
                max_future=leeway,
            )
        except sd_jwt.SdJwtError:
            found = (Reason.HOLDER_BINDING_INVALID,)
    result = shared_rules(
        checked, status=status, holders=holders, now=now, leeway=leeway, found=found
    )
    return PresentedResult(result, disclosed)


def _holder_claims_not(names: set[str]) -> set[str]:
    """The disclosable holder claims outside ``names`` (hidden from the holder shown)."""
    return {*_HOLDER_TEXT_CLAIMS, "photo"} - names
