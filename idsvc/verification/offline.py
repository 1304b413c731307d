"""Verifying from an offline copy of the trust data: issuer JWKS and cached status-list tokens.

This is what a phone holds between two visits to the network, and the rules here are the ones
the officials' web verifier (``mobile_api/static/verify/``) applies in JavaScript; the test
vectors in ``tests/vectors`` hold both to the same answers.

Freshness follows the status-list token's own claims, not HTTP cache headers (Token Status
List draft): the data's age is ``now - iat``.

- age past the token's ``ttl`` (clamped to [``TTL_FLOOR``, ``TTL_CEILING``], so a silly
  ``ttl`` neither makes phones hammer the server nor lets a list look fresh for a year):
  still usable, but ``freshness`` says ``"stale"`` and the page warns;
- age past ``hard_limit`` (the ministry's setting, 7 days by default) or ``now >= exp``:
  ``TrustStale``, so the answer is ``TRUST_STALE`` and never VALID;
- ``iat`` further in the future than ``CLOCK_SKEW`` (a server whose clock is set ahead signs
  a genuine list "from next month"): its age says nothing, so it counts as too old as well;
- no copy of the list, or a copy whose signature, issuer or subject does not check out:
  ``StatusUnavailable`` (``STATUS_UNAVAILABLE``, never reported as revoked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from idsvc.formats.claim169 import keys_by_hint
from idsvc.formats.jws import JwsError, verify_compact
from idsvc.formats.status_list import (
    STATUSLIST_TYP,
    StatusList,
    StatusListError,
    parse_status_list_claims,
)
from idsvc.verification.rules import CLOCK_SKEW, StatusUnavailable, TrustStale
from keys.errors import KeysError
from keys.jwk import PublicKey, public_key_from_jwk

DEFAULT_HARD_LIMIT: Final = timedelta(days=7)
_CLOCK_SKEW_SECONDS: Final = CLOCK_SKEW.total_seconds()
TTL_FLOOR: Final = 300
TTL_CEILING: Final = 86_400

Freshness = Literal["fresh", "stale", "too_old", "missing"]


def clamp_ttl(ttl: object) -> int:
    """The refresh interval a verifier uses for a list token's ``ttl`` claim."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
        return TTL_FLOOR
    return int(min(max(ttl, TTL_FLOOR), TTL_CEILING))


class JwksTrust:
    """Trust in the issuers whose JWKS were fetched: ``{iss: jwks}``.

    A JWK that is not a usable public EC P-256 or Ed25519 key is left out (its tokens are then
    ``UNKNOWN_KEY``); a kid published by two issuers is trusted for neither.
    """

    def __init__(self, jwks_by_issuer: Mapping[str, Mapping[str, Any]]) -> None:
        keys: dict[str, tuple[str, PublicKey]] = {}
        clashes: set[str] = set()
        for iss, jwks in jwks_by_issuer.items():
            entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
            for jwk in entries if isinstance(entries, list) else []:
                kid = jwk.get("kid") if isinstance(jwk, Mapping) else None
                if not isinstance(kid, str):
                    continue
                try:
                    key = public_key_from_jwk(jwk)
                except KeysError:
                    continue
                if kid in keys and keys[kid][0] != iss:
                    clashes.add(kid)
                keys[kid] = (iss, key)
        self._keys = {kid: entry for kid, entry in keys.items() if kid not in clashes}
        self._hints = keys_by_hint(self._keys)

    def key_for(self, kid: str) -> tuple[str, PublicKey]:
        return self._keys[kid]

    def key_for_hint(self, hint: str) -> tuple[str, PublicKey]:
        return self._hints[hint]


@dataclass(frozen=True)
class CachedStatusList:
    """A ``statuslist+jwt`` as fetched, and when (the page shows this age)."""

    token: str
    fetched_at: datetime


@dataclass(frozen=True)
class _Checked:
    claims: dict[str, Any]
    lst: StatusList


class CachedStatus:
    """A ``StatusSource`` over cached status-list tokens, with the freshness rules above."""

    def __init__(
        self,
        lists: Mapping[str, CachedStatusList],
        trust: JwksTrust,
        *,
        hard_limit: timedelta = DEFAULT_HARD_LIMIT,
    ) -> None:
        if hard_limit <= timedelta(0):
            raise ValueError("hard_limit must be positive")
        self._lists = dict(lists)
        self._trust = trust
        self._hard_limit = hard_limit.total_seconds()
        self._checked: dict[tuple[str, str], _Checked | None] = {}

    def _check(self, uri: str, iss: str) -> _Checked:
        key = (iss, uri)
        try:
            checked = self._checked[key]
        except KeyError:
            cached = self._lists.get(uri)
            if cached is None:
                raise StatusUnavailable(uri) from None
            checked = self._checked[key] = self._verify(cached.token, uri, iss)
        if checked is None:
            raise StatusUnavailable(uri)
        return checked

    def _verify(self, token: str, uri: str, iss: str) -> _Checked | None:
        signer_iss: list[str] = []

        def key_for(header: dict[str, Any]) -> PublicKey:
            signer, key = self._trust.key_for(header["kid"])
            signer_iss.append(signer)
            return key

        try:
            verified = verify_compact(token, key_for=key_for, expected_typ=STATUSLIST_TYP)
            if signer_iss != [iss]:
                return None
            claims = verified.payload
            # Checked against a time before any exp so that expiry is judged per call below.
            lst = parse_status_list_claims(claims, expected_uri=uri, now=0, expected_iss=iss)
        except (JwsError, StatusListError):
            return None
        return _Checked(claims, lst)

    def status_of(self, uri: str, idx: int, *, iss: str, now: datetime) -> int:
        checked = self._check(uri, iss)
        if self._too_old(checked.claims, now.timestamp()):
            raise TrustStale(uri)
        # An index outside the list raises StatusIndexError: verify_credential calls that
        # MALFORMED (the draft: such a token is rejected).
        return checked.lst.get(idx)

    def freshness(self, uri: str, *, iss: str, now: datetime) -> Freshness:
        """``fresh``, ``stale`` (past ttl: warn), ``too_old`` (past exp or the hard limit,
        or signed further ahead of ``now`` than the clock skew allows)."""
        try:
            claims = self._check(uri, iss).claims
        except StatusUnavailable:
            return "missing"
        ts = now.timestamp()
        if self._too_old(claims, ts):
            return "too_old"
        if ts - claims["iat"] > clamp_ttl(claims.get("ttl")):
            return "stale"
        return "fresh"

    def _too_old(self, claims: dict[str, Any], ts: float) -> bool:
        # exp and iat were type-checked by parse_status_list_claims in _verify.
        iat: int = claims["iat"]
        exp: int = claims["exp"]
        age = ts - iat
        return ts >= exp or age > self._hard_limit or -age > _CLOCK_SKEW_SECONDS
