"""Verification for the API: the same rules as ``IdService.verify``, served from short-lived
per-worker caches, with every check written to the who-checked log.

Why caches: reading the key rings, the status-list entry and the holder's HR status costs three
queries and a key-file parse per request (~15x a raw ES256 verify). Each worker keeps

- the trust (every issuer's public keys) for ``ttl`` seconds; an unknown ``kid`` reloads it at
  once (at most once a second), so a freshly rotated key verifies immediately;
- each status-list entry and each holder's HR status it has looked up, for ``ttl`` seconds
  (bounded LRU of ``max_entries``).

The bound is therefore: a revocation, suspension or HR status change is seen by every worker
at most ``ttl`` seconds (``IDSVC_VERIFY_CACHE_TTL``, default 2 s) after it commits. Nothing
else is cached; ``ttl = 0`` switches caching off.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, Generic, TypeVar

from idsvc import issuers
from idsvc.access_log import CheckedBy, CheckLog, CheckRecord
from idsvc.service import DbHolders, DbStatus, IdService, LocalTrust
from idsvc.verification import (
    Reason,
    StatusUnavailable,
    VerificationResult,
    verify_credential,
)
from keys.jwk import PublicKey

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Monotonic = Callable[[], float]

# What each kind of caller is shown of the holder. Never the date of birth: a verifier
# compares a face and a name, and a printed or scanned date of birth is an identity-theft aid.
ANONYMOUS_HOLDER = ("name", "name_latin", "ministry", "position", "photo")
VERIFY_SCOPE_HOLDER = (
    *ANONYMOUS_HOLDER,
    "employee_id",
    "unit",
    "grade",
    "category",
    "card_serial",
)


def holder_for(result: VerificationResult, scopes: frozenset[str]) -> dict[str, str] | None:
    """The holder fields this caller may see (anonymous: names, ministry, position, photo)."""
    if result.holder is None:
        return None
    fields = VERIFY_SCOPE_HOLDER if scopes & {"verify", "admin", "payroll"} else ANONYMOUS_HOLDER
    source = {**result.holder}
    for claim in ("unit", "grade"):
        value = result.claims.get(claim)
        if isinstance(value, str):
            source.setdefault(claim, value)
    return {k: source[k] for k in fields if k in source}


class TtlCache(Generic[K, V]):
    """A small thread-safe LRU whose entries expire ``ttl`` seconds after they were loaded."""

    def __init__(self, ttl: float, max_entries: int, monotonic: Monotonic) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = monotonic
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K, load: Callable[[], V]) -> V:
        if self._ttl <= 0:
            return load()
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < self._ttl:
                self._entries.move_to_end(key)
                return hit[1]
        value = load()  # outside the lock: a slow query must not block other keys
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value


class _Unavailable:
    """Cached marker: the status list is unknown (so is every index in it)."""


class CachedTrust:
    """Every issuer's public keys, reloaded after ``ttl`` seconds, or at once (at most once a
    second) when a token names a kid we do not know: a freshly rotated key verifies at once.

    Loading happens outside ``verify_credential`` on purpose: a broken key ring must surface
    as an error (500), never be mistaken for a token signed by an unknown key.
    """

    def __init__(self, service: IdService, ttl: float, monotonic: Monotonic) -> None:
        self._service = service
        self._ttl = ttl
        self._clock = monotonic
        self._lock = threading.Lock()
        self._trust: LocalTrust | None = None
        self._loaded_at = float("-inf")

    def load(self) -> LocalTrust:
        with self._service.db.transaction() as session:
            trust = LocalTrust(issuers.load_issuers(session, self._service.rings))
        with self._lock:
            self._trust, self._loaded_at = trust, self._clock()
        return trust

    def current(self) -> LocalTrust:
        with self._lock:
            trust, age = self._trust, self._clock() - self._loaded_at
        if trust is None or age >= self._ttl:
            return self.load()
        return trust

    def may_reload(self) -> bool:
        """Whether an unknown kid justifies a reload (the last one is over a second old)."""
        with self._lock:
            return self._clock() - self._loaded_at >= 1.0


class CachedStatus:
    def __init__(self, service: IdService, cache: TtlCache[Any, Any]) -> None:
        self._service = service
        self._cache = cache

    def status_of(self, uri: str, idx: int, *, iss: str, now: datetime) -> int:
        def load() -> object:
            with self._service.db.transaction() as session:
                try:
                    return DbStatus(session).status_of(uri, idx, iss=iss, now=now)
                except StatusUnavailable:
                    return _Unavailable()

        value = self._cache.get(("status", uri, idx), load)
        if isinstance(value, _Unavailable):
            raise StatusUnavailable(uri)
        assert isinstance(value, int)
        return value


class CachedHolders:
    def __init__(self, service: IdService, cache: TtlCache[Any, Any]) -> None:
        self._service = service
        self._cache = cache

    def employment_status(self, employee_id: str) -> str | None:
        def load() -> str | None:
            with self._service.db.transaction() as session:
                return DbHolders(session).employment_status(employee_id)

        value = self._cache.get(("holder", employee_id), load)
        return value if isinstance(value, str) else None


class OnlineVerifier:
    """``verify`` for the API: cached trust/status/holders, and a who-checked row per check."""

    def __init__(
        self,
        service: IdService,
        *,
        check_log: CheckLog | None = None,
        ttl: float | None = None,
        max_entries: int = 100_000,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self._service = service
        self._log = check_log or CheckLog(service.db, flush_interval=0)
        ttl = service.settings.verify_cache_ttl if ttl is None else ttl
        self.ttl = ttl
        cache: TtlCache[Any, Any] = TtlCache(ttl, max_entries, monotonic)
        self._trust = CachedTrust(service, ttl, monotonic)
        self._status = CachedStatus(service, cache)
        self._holders = CachedHolders(service, cache)

    def check(
        self, text: str, *, now: datetime, card_key: PublicKey | None = None
    ) -> VerificationResult:
        """Verify without recording (the caller records, e.g. after the card check too)."""
        result = self._check(text, self._trust.current(), now, card_key)
        if result.reasons == (Reason.UNKNOWN_KEY,) and self._trust.may_reload():
            result = self._check(text, self._trust.load(), now, card_key)
        return result

    def _check(
        self, text: str, trust: LocalTrust, now: datetime, card_key: PublicKey | None
    ) -> VerificationResult:
        return verify_credential(
            text,
            trust=trust,
            status=self._status,
            holders=self._holders,
            now=now,
            card_key=card_key,
        )

    def record(
        self, result: VerificationResult, *, kind: str, by: CheckedBy, now: datetime
    ) -> None:
        employee = result.holder.get("employee_id") if result.holder else None
        entry = CheckRecord(
            kind=kind,
            employee_id=employee,
            credential_id=result.credential_id,
            result=result.status,
            reasons=[str(r) for r in result.reasons],
        )
        self._log.record([entry], by=by, now=now)

    def verify(self, text: str, *, by: CheckedBy, now: datetime) -> VerificationResult:
        """Verify a presented credential (JWT or QR text) and record who checked whom."""
        result = self.check(text, now=now)
        self.record(result, kind="verification", by=by, now=now)
        return result
