"""Verification for the API: the same rules as ``Verification.verify``, served from short-lived
per-worker caches, with every check written to the who-checked log.

Why caches: reading the key rings, the status-list entry and the holder's HR status costs three
queries and a key-file parse per request (~15x a raw ES256 verify). Each worker keeps

- the trust (every issuer's public keys) for ``ttl`` seconds; an unknown ``kid`` reloads it at
  once (at most once a second), so a freshly rotated key verifies immediately;
- each status-list entry and each holder's HR status it has looked up, for ``ttl`` seconds
  (bounded LRU of ``max_entries``).

The bound is therefore: a revocation, suspension or HR status change is seen by every worker
at most ``ttl`` seconds (``IDSVC_VERIFY_CACHE_TTL``, default 2 s) after it commits. A new or
replaced photo shows within the same bound (the photo's hash is read with the HR status; the
small picture made from it is kept by hash). ``ttl = 0`` switches caching off.

``verify_cached`` answers from these caches alone and returns None when any of them would need
the database: the API calls it on its event loop (no thread hop for the common case) and only
falls back to ``verify`` in a thread when it gets None.

The photo: a holder with a stored photo gets ``holder["photo"]``, a small JPEG data URI
(``idsvc.register.photos.verifier_picture``), only in the answer to a credential whose signature
verified. The proof is the credential itself: nothing fetches a photo by an id number.

``verify_by_id`` serves a card link that lost its QR fragment (``/v/<credential id>``): it
checks the credential the service issued under that id (its stored JWT) by the same rules, so
the verdict and reason codes are the scanned card's; but an id read off a link or typed in
proves nobody holds the card, so that answer never carries the photo.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import select

from idsvc.audit.who_checked import CheckedBy, CheckLog, CheckRecord
from idsvc.credentials import issuers
from idsvc.credentials.infrastructure import Infrastructure
from idsvc.credentials.state import get_credential
from idsvc.errors import UnknownCredential
from idsvc.register.photos import verifier_picture
from idsvc.storage.photo_tables import PhotoRow
from idsvc.storage.tables import CivilServantRow
from idsvc.verification.rules import (
    Reason,
    StatusUnavailable,
    VerificationResult,
    verify_credential,
)
from idsvc.verification.use_cases import DbStatus, LocalTrust
from keys.jwk import PublicKey

log = logging.getLogger(__name__)

# What a credential id may look like (issuance makes UUIDs): URL-safe, short.
CREDENTIAL_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")

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


class Refresher:
    """One background thread that reloads cache entries in use before they expire.

    Without it, every request that meets an expired entry goes to the database at once (all
    the connections of a busy worker, every ``ttl`` seconds, each taking the slow path). With
    it, an entry read in the second half of its life is reloaded once, in the background, and
    readers keep the current value meanwhile: the bound stays the same (an answer never rests
    on data older than ``ttl``), the database sees one query per entry per half-``ttl``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: set[Hashable] = set()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, key: Hashable, reload: Callable[[], object]) -> None:
        with self._lock:
            if key in self._due:
                return
            self._due.add(key)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-refresh")
            pool = self._pool

        def run() -> None:
            try:
                reload()
            except Exception as exc:  # the entry expires as it would have; readers then load
                log.debug("cache refresh of %r failed: %s", key, type(exc).__name__)
            finally:
                with self._lock:
                    self._due.discard(key)

        pool.submit(run)


class TtlCache(Generic[K, V]):
    """A small thread-safe LRU whose entries expire ``ttl`` seconds after they were loaded;
    with a ``refresher``, entries read past half their life are reloaded in the background."""

    def __init__(
        self,
        ttl: float,
        max_entries: int,
        monotonic: Monotonic,
        refresher: Refresher | None = None,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = monotonic
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._refresher = refresher

    def get(self, key: K, load: Callable[[], V], *, may_load: bool = True) -> V:
        """The cached value, else ``load()``; ``NeedsDatabase`` instead when not ``may_load``."""
        if self._ttl <= 0 and may_load:
            return load()
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < self._ttl:
                self._entries.move_to_end(key)
                if self._refresher is not None and now - hit[0] >= self._ttl / 2:
                    self._refresher.submit(key, lambda: self._store(key, self._clock(), load))
                return hit[1]
        if not may_load:
            raise NeedsDatabase
        return self._store(key, now, load)

    def _store(self, key: K, loaded_at: float, load: Callable[[], V]) -> V:
        # ``loaded_at`` is taken before the query: the entry's age never understates its data's.
        value = load()  # outside the lock: a slow query must not block other keys
        with self._lock:
            self._entries[key] = (loaded_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value


class _Unavailable:
    """Cached marker: the status list is unknown (so is every index in it)."""


class NeedsDatabase(Exception):
    """A cache-only check met an entry it does not hold (or holds too long): ask the database."""


class CachedTrust:
    """Every issuer's public keys, reloaded after ``ttl`` seconds, or at once (at most once a
    second) when a token names a kid we do not know: a freshly rotated key verifies at once.

    Loading happens outside ``verify_credential`` on purpose: a broken key ring must surface
    as an error (500), never be mistaken for a token signed by an unknown key.
    """

    def __init__(
        self,
        infra: Infrastructure,
        ttl: float,
        monotonic: Monotonic,
        refresher: Refresher | None = None,
    ) -> None:
        self._infra = infra
        self._ttl = ttl
        self._clock = monotonic
        self._refresher = refresher
        self._lock = threading.Lock()
        self._trust: LocalTrust | None = None
        self._loaded_at = float("-inf")

    def load(self) -> LocalTrust:
        with self._infra.db.transaction() as session:
            trust = LocalTrust(issuers.load_issuers(session, self._infra.rings))
        with self._lock:
            self._trust, self._loaded_at = trust, self._clock()
        return trust

    def current(self, *, may_load: bool = True) -> LocalTrust:
        with self._lock:
            trust, age = self._trust, self._clock() - self._loaded_at
        if trust is None or age >= self._ttl:
            if not may_load:
                raise NeedsDatabase
            return self.load()
        if self._refresher is not None and age >= self._ttl / 2:
            self._refresher.submit("trust", self._reload)
        return trust

    def _reload(self) -> None:
        self.load()

    def may_reload(self) -> bool:
        """Whether an unknown kid justifies a reload (the last one is over a second old)."""
        with self._lock:
            return self._clock() - self._loaded_at >= 1.0


class CachedStatus:
    def __init__(self, infra: Infrastructure, cache: TtlCache[Any, Any], *, may_load: bool) -> None:
        self._infra = infra
        self._cache = cache
        self._may_load = may_load

    def status_of(self, uri: str, idx: int, *, iss: str, now: datetime) -> int:
        def load() -> object:
            with self._infra.db.transaction() as session:
                try:
                    return DbStatus(session).status_of(uri, idx, iss=iss, now=now)
                except StatusUnavailable:
                    return _Unavailable()

        value = self._cache.get(("status", uri, idx), load, may_load=self._may_load)
        if isinstance(value, _Unavailable):
            raise StatusUnavailable(uri)
        assert isinstance(value, int)
        return value


class CachedHolders:
    """Each holder's HR status and the hash of their photo (None: no photo), read together."""

    def __init__(self, infra: Infrastructure, cache: TtlCache[Any, Any], *, may_load: bool) -> None:
        self._infra = infra
        self._cache = cache
        self._may_load = may_load

    def _entry(self, employee_id: str) -> tuple[str | None, str | None]:
        def load() -> tuple[str | None, str | None]:
            with self._infra.db.transaction() as session:
                row = session.execute(
                    select(CivilServantRow.status, PhotoRow.sha256)
                    .outerjoin(PhotoRow, PhotoRow.employee_id == CivilServantRow.employee_id)
                    .where(CivilServantRow.employee_id == employee_id)
                ).first()
            return (None, None) if row is None else (row[0], row[1])

        value: tuple[str | None, str | None] = self._cache.get(
            ("holder", employee_id), load, may_load=self._may_load
        )
        return value

    def employment_status(self, employee_id: str) -> str | None:
        return self._entry(employee_id)[0]

    def photo_hash(self, employee_id: str) -> str | None:
        return self._entry(employee_id)[1]


class CachedPictures:
    """The verifier's picture of each photo, by the photo's hash: a hash never changes its
    picture, so entries need no expiry, only a size bound (a few KB each)."""

    def __init__(self, infra: Infrastructure, max_entries: int = 2000) -> None:
        self._infra = infra
        self._cache: TtlCache[str, str | None] = TtlCache(float("inf"), max_entries, time.monotonic)

    def data_uri(self, employee_id: str, sha256: str, *, may_load: bool) -> str | None:
        def load() -> str | None:
            with self._infra.db.transaction() as session:
                row = session.get(PhotoRow, employee_id)
                face = row.face_jpeg if row is not None and row.sha256 == sha256 else None
            if face is None:
                return None
            try:
                return verifier_picture(face)
            except (OSError, ValueError):  # a damaged stored face must not fail a verification
                return None

        return self._cache.get(sha256, load, may_load=may_load)


class OnlineVerifier:
    """``verify`` for the API: cached trust/status/holders, and a who-checked row per check."""

    def __init__(
        self,
        infra: Infrastructure,
        *,
        check_log: CheckLog | None = None,
        ttl: float | None = None,
        max_entries: int = 100_000,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self._infra = infra
        self._log = check_log or CheckLog(infra.db, flush_interval=0)
        ttl = infra.settings.verify_cache_ttl if ttl is None else ttl
        self.ttl = ttl
        refresher = Refresher()
        cache: TtlCache[Any, Any] = TtlCache(ttl, max_entries, monotonic, refresher)
        self._trust = CachedTrust(infra, ttl, monotonic, refresher)
        # Two views of one cache: one may read the database, the other only says it would.
        self._status = CachedStatus(infra, cache, may_load=True)
        self._holders = CachedHolders(infra, cache, may_load=True)
        self._cached_status = CachedStatus(infra, cache, may_load=False)
        self._cached_holders = CachedHolders(infra, cache, may_load=False)
        self._pictures = CachedPictures(infra)

    def check(
        self, text: str, *, now: datetime, card_key: PublicKey | None = None
    ) -> VerificationResult:
        """Verify without recording (the caller records, e.g. after the card check too)."""
        result = self._check(text, self._trust.current(), now, card_key, may_load=True)
        if result.reasons == (Reason.UNKNOWN_KEY,) and self._trust.may_reload():
            result = self._check(text, self._trust.load(), now, card_key, may_load=True)
        return result

    def _check(
        self,
        text: str,
        trust: LocalTrust,
        now: datetime,
        card_key: PublicKey | None,
        *,
        may_load: bool,
    ) -> VerificationResult:
        return verify_credential(
            text,
            trust=trust,
            status=self._status if may_load else self._cached_status,
            holders=self._holders if may_load else self._cached_holders,
            now=now,
            card_key=card_key,
        )

    def _with_photo(self, result: VerificationResult, *, may_load: bool) -> VerificationResult:
        """The holder's picture added, when the credential's signature verified (a holder is
        only there then) and a photo is stored."""
        employee = result.claims.get("sub") if result.holder is not None else None
        if not isinstance(employee, str) or result.holder is None:
            return result
        holders = self._holders if may_load else self._cached_holders
        sha256 = holders.photo_hash(employee)
        if sha256 is None:
            return result
        picture = self._pictures.data_uri(employee, sha256, may_load=may_load)
        if picture is None:
            return result
        return dataclasses.replace(result, holder={**result.holder, "photo": picture})

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
        result = self._with_photo(self.check(text, now=now), may_load=True)
        self.record(result, kind="verification", by=by, now=now)
        return result

    def verify_by_id(
        self, credential_id: str, *, by: CheckedBy, now: datetime
    ) -> VerificationResult:
        """Verify the credential issued under ``credential_id`` as if it had been presented
        (without its photo: see the module docstring) and record the check. Raises
        ``UnknownCredential`` for an id the service never issued (nobody checked: no row)."""
        # Ids are UUIDs: anything else (NUL, a megabyte) is unknown without a query.
        if not CREDENTIAL_ID.fullmatch(credential_id):
            raise UnknownCredential(credential_id)
        self._infra.require_ready()
        with self._infra.db.transaction() as session:
            token = get_credential(session, credential_id).token
        result = self.check(token, now=now)
        self.record(result, kind="verification", by=by, now=now)
        return result

    def verify_cached(
        self, text: str, *, by: CheckedBy, now: datetime
    ) -> VerificationResult | None:
        """``verify`` from this worker's caches alone, or None if that would need the
        database (a cache entry missing or stale, an unknown key, a log without write-behind):
        then call ``verify``, where blocking on the database is allowed."""
        if not self._log.buffered:
            return None
        try:
            result = self._check(
                text, self._trust.current(may_load=False), now, None, may_load=False
            )
            if result.reasons == (Reason.UNKNOWN_KEY,) and self._trust.may_reload():
                return None
            result = self._with_photo(result, may_load=False)
        except NeedsDatabase:
            return None
        self.record(result, kind="verification", by=by, now=now)
        return result
