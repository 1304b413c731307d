"""The key ring manifest (``keyring.json``): entries, their JSON form and its rules.

The manifest is not signed, so it is checked for consistency instead: every kid must be
the thumbprint of the public key stored next to it, algorithms must fit their keys,
timestamps must be in order and each purpose must have exactly one active key. A
manifest that breaks any rule is refused as a whole, and the key ring never writes one
it would refuse.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, Final, get_args

from keys.algorithms import Algorithm, PublicKey, alg_for_public_key, is_algorithm
from keys.backends import PRIVATE_DIRECTORY, BackendName, KeyLocation, Purpose
from keys.errors import InvalidJwk, KeyRingError, UnsupportedAlgorithm
from keys.jwk import public_jwk, public_key_from_jwk, thumbprint
from keys.timestamps import format_timestamp, parse_timestamp

__all__ = ["FORMAT", "PURPOSES", "KeyEntry", "dump_manifest", "parse_manifest"]

FORMAT: Final = "idsvc-keyring/1"
PURPOSES: Final[tuple[Purpose, ...]] = get_args(Purpose)
_BACKENDS: Final[tuple[BackendName, ...]] = get_args(BackendName)

_REQUIRED: Final = frozenset(
    {"kid", "alg", "purpose", "backend", "public_jwk", "created_at", "activated_at", "retired_at"}
)
_OPTIONAL: Final = frozenset({"path", "key_label", "unpublished_at"})


@dataclass(frozen=True)
class KeyEntry:
    """One issuer key in the ring, as the manifest records it.

    A key is *pending* until ``activated_at``, *active* until ``retired_at``, then
    *retired*; it stays published (in the JWKS) until ``unpublished_at``.
    """

    kid: str
    alg: Algorithm
    purpose: Purpose
    location: KeyLocation
    public_jwk: Mapping[str, str] = field(hash=False)
    created_at: datetime
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    unpublished_at: datetime | None = None

    @classmethod
    def new(
        cls, public_key: PublicKey, *, purpose: Purpose, location: KeyLocation, now: datetime
    ) -> KeyEntry:
        jwk = public_jwk(public_key)
        return cls(
            kid=thumbprint(jwk),
            alg=alg_for_public_key(public_key),
            purpose=purpose,
            location=location,
            public_jwk=jwk,
            created_at=now,
        )

    @property
    def backend(self) -> BackendName:
        return self.location.backend

    @property
    def path(self) -> str | None:
        return self.location.path

    @property
    def key_label(self) -> str | None:
        return self.location.key_label

    @property
    def active(self) -> bool:
        return self.activated_at is not None and self.retired_at is None

    @property
    def pending(self) -> bool:
        return self.activated_at is None and self.unpublished_at is None

    @property
    def published(self) -> bool:
        return self.unpublished_at is None

    def public_key(self) -> PublicKey:
        return public_key_from_jwk(self.public_jwk)

    def activate(self, now: datetime) -> KeyEntry:
        return replace(self, activated_at=now)

    def retire(self, now: datetime) -> KeyEntry:
        return replace(self, retired_at=now)

    def unpublish(self, now: datetime) -> KeyEntry:
        return replace(self, unpublished_at=now)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kid": self.kid,
            "alg": self.alg,
            "purpose": self.purpose,
            "backend": self.backend,
        }
        if self.location.path is not None:
            data["path"] = self.location.path
        if self.location.key_label is not None:
            data["key_label"] = self.location.key_label
        data["public_jwk"] = dict(self.public_jwk)
        for name in ("created_at", "activated_at", "retired_at", "unpublished_at"):
            value = getattr(self, name)
            data[name] = None if value is None else format_timestamp(value)
        return data


def dump_manifest(entries: Iterable[KeyEntry]) -> bytes:
    entries = tuple(entries)
    _check_ring(entries)
    document = {"format": FORMAT, "keys": [entry.to_json() for entry in entries]}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def parse_manifest(data: bytes) -> tuple[KeyEntry, ...]:
    """Parse and check a manifest; any problem raises :class:`KeyRingError`."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyRingError("key ring manifest is not valid JSON") from None
    if not isinstance(document, dict) or set(document) != {"format", "keys"}:
        raise KeyRingError("key ring manifest must hold exactly 'format' and 'keys'")
    if document["format"] != FORMAT:
        raise KeyRingError(f"key ring manifest format {document['format']!r} is not {FORMAT!r}")
    raw_entries = document["keys"]
    if not isinstance(raw_entries, list):
        raise KeyRingError("key ring manifest 'keys' must be a list")
    entries = tuple(_parse_entry(index, raw) for index, raw in enumerate(raw_entries))
    _check_ring(entries)
    return entries


def _parse_entry(index: int, raw: object) -> KeyEntry:
    where = f"key ring manifest entry {index}"
    if not isinstance(raw, dict):
        raise KeyRingError(f"{where} is not an object")
    missing = sorted(_REQUIRED - set(raw))
    unknown = sorted(set(raw) - _REQUIRED - _OPTIONAL)
    if missing or unknown:
        raise KeyRingError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    kid, alg, purpose, backend = raw["kid"], raw["alg"], raw["purpose"], raw["backend"]
    if not isinstance(kid, str) or not is_algorithm(alg):
        raise KeyRingError(f"{where}: bad kid or alg")
    if purpose not in PURPOSES or backend not in _BACKENDS:
        raise KeyRingError(f"{where} ({kid}): bad purpose or backend")
    try:
        key = public_key_from_jwk(raw["public_jwk"])
    except (InvalidJwk, UnsupportedAlgorithm) as exc:
        raise KeyRingError(f"{where} ({kid}): bad public_jwk: {exc}") from None
    jwk = public_jwk(key)
    if raw["public_jwk"] != jwk:
        raise KeyRingError(f"{where} ({kid}): public_jwk has extra or non-canonical members")
    if thumbprint(jwk) != kid:
        raise KeyRingError(f"{where}: kid {kid} is not the thumbprint of its public key")
    if alg_for_public_key(key) != alg:
        raise KeyRingError(f"{where} ({kid}): alg {alg} does not fit its key")
    return KeyEntry(
        kid=kid,
        alg=alg,
        purpose=purpose,
        location=_parse_location(where, kid, backend, raw),
        public_jwk=jwk,
        created_at=_required_timestamp(where, raw, "created_at"),
        activated_at=_timestamp(where, raw, "activated_at"),
        retired_at=_timestamp(where, raw, "retired_at"),
        unpublished_at=_timestamp(where, raw, "unpublished_at"),
    )


def _parse_location(
    where: str, kid: str, backend: BackendName, raw: Mapping[str, Any]
) -> KeyLocation:
    path, key_label = raw.get("path"), raw.get("key_label")
    if backend == "file":
        if key_label is not None or not isinstance(path, str):
            raise KeyRingError(f"{where} ({kid}): a file key needs 'path' and no 'key_label'")
        # The manifest is not signed: never let it point outside <ring>/private/.
        parts = PurePosixPath(path).parts
        if len(parts) != 2 or parts[0] != PRIVATE_DIRECTORY or parts[1] in ("..", "."):
            raise KeyRingError(f"{where} ({kid}): path must be {PRIVATE_DIRECTORY}/<file>")
        return KeyLocation("file", path=path)
    if path is not None or not isinstance(key_label, str) or not key_label:
        raise KeyRingError(f"{where} ({kid}): a pkcs11 key needs 'key_label' and no 'path'")
    return KeyLocation("pkcs11", key_label=key_label)


def _timestamp(where: str, raw: Mapping[str, Any], name: str) -> datetime | None:
    if raw.get(name) is None:
        return None
    return _required_timestamp(where, raw, name)


def _required_timestamp(where: str, raw: Mapping[str, Any], name: str) -> datetime:
    value = raw.get(name)
    try:
        if not isinstance(value, str):
            raise ValueError(name)
        return parse_timestamp(value)
    except ValueError:
        raise KeyRingError(f"{where}: {name} is not a UTC timestamp") from None


def _check_ring(entries: tuple[KeyEntry, ...]) -> None:
    duplicates = sorted(kid for kid, count in Counter(e.kid for e in entries).items() if count > 1)
    if duplicates:
        raise KeyRingError(f"key ring lists kid(s) {duplicates} more than once")
    for entry in entries:
        _check_timeline(entry)
    for purpose in PURPOSES:
        active = [e.kid for e in entries if e.purpose == purpose and e.active]
        if not active:
            raise KeyRingError(f"key ring has no active {purpose} key")
        if len(active) > 1:
            raise KeyRingError(f"key ring has several active {purpose} keys: {active}")


def _check_timeline(entry: KeyEntry) -> None:
    problem = None
    if entry.activated_at is not None and entry.activated_at < entry.created_at:
        problem = "activated before it was created"
    elif entry.retired_at is not None and (
        entry.activated_at is None or entry.retired_at < entry.activated_at
    ):
        problem = "retired without or before activation"
    elif entry.unpublished_at is not None:
        if entry.active:
            problem = "unpublished while active"
        elif entry.unpublished_at < (entry.retired_at or entry.created_at):
            problem = "unpublished before it was retired"
    if problem:
        raise KeyRingError(f"key {entry.kid} was {problem}")
