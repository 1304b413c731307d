"""API clients (banks, HR systems, verifier apps): use cases shared by the CLI and the API.

A client is a database row with a name, scopes and the hash of its secret. The secret is
``idsvc_<client id>_<43 random characters>`` (256 random bits): it is printed once by ``add``
and ``rotate_secret`` and never stored. Every ``authenticate`` reads the row (one primary-key
lookup), so a disabled client or a rotated-out secret is refused on its very next request, on
every worker and machine: there is no cache to outlive a change.

Errors: ``idsvc.errors.ApiClientError`` and its subclasses.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idsvc import audit
from idsvc.errors import (
    ApiClientError,
    ApiClientExists,
    AuthenticationFailed,
    InvalidScope,
    UnknownApiClient,
)
from idsvc.storage.client_tables import ApiClientRow
from idsvc.storage.db import Database

SCOPES = frozenset({"verify", "payroll", "hr:write", "admin"})
SECRET_PREFIX = "idsvc_"  # noqa: S105  (a label, not a secret)
_ID_HEX = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")
# Compared against when the client id is unknown, so that both paths do the same work.
_NO_HASH = hashlib.sha256(b"no such client").hexdigest()


@dataclass(frozen=True)
class ApiClientView:
    id: str
    name: str
    scopes: frozenset[str]
    enabled: bool
    created_at: datetime
    secret_rotated_at: datetime

    @classmethod
    def of(cls, row: ApiClientRow) -> ApiClientView:
        return cls(
            row.id,
            row.name,
            frozenset(row.scopes.split()),
            row.enabled,
            row.created_at,
            row.secret_rotated_at,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "secret_rotated_at": self.secret_rotated_at.isoformat(),
        }


def hash_secret(secret: str) -> str:
    # A plain SHA-256 is the right tool here: the secret is 256 random bits, so there is
    # nothing to brute-force and no need for a slow password hash (argon2/scrypt exist to
    # protect low-entropy human passwords and would cost ~50 ms of CPU on every API request).
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret(client_id: str) -> str:
    return f"{SECRET_PREFIX}{client_id}_{secrets.token_urlsafe(32)}"


def _client_id_of(secret: str) -> str | None:
    if not secret.startswith(SECRET_PREFIX):
        return None
    client_id = secret[len(SECRET_PREFIX) : len(SECRET_PREFIX) + _ID_HEX]
    if len(client_id) != _ID_HEX or secret[len(SECRET_PREFIX) + _ID_HEX :][:1] != "_":
        return None
    if any(c not in "0123456789abcdef" for c in client_id):
        return None
    return client_id


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(scopes)
    if not wanted:
        raise InvalidScope("give at least one scope: " + ", ".join(sorted(SCOPES)))
    unknown = wanted - SCOPES
    if unknown:
        raise InvalidScope(
            f"unknown scope {sorted(unknown)[0]!r}; scopes are: " + ", ".join(sorted(SCOPES))
        )
    return wanted


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ApiClientError(
            "a client name is 1-128 letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class ApiClients:
    """The use cases on API clients; each method is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _by_name(session: Session, name: str) -> ApiClientRow:
        row = session.execute(
            select(ApiClientRow).where(ApiClientRow.name == name)
        ).scalar_one_or_none()
        if row is None:
            raise UnknownApiClient(name)
        return row

    def add(
        self, name: str, scopes: Iterable[str], now: datetime, *, actor: str = "admin"
    ) -> tuple[ApiClientView, str]:
        """Create a client; return it and its secret (shown once, stored only as a hash)."""
        _check_name(name)
        wanted = check_scopes(scopes)
        client_id = secrets.token_hex(_ID_HEX // 2)
        secret = _new_secret(client_id)
        try:
            with self._db.transaction() as session:
                if session.execute(
                    select(ApiClientRow.id).where(ApiClientRow.name == name)
                ).first():
                    raise ApiClientExists(name)
                row = ApiClientRow(
                    id=client_id,
                    name=name,
                    scopes=" ".join(sorted(wanted)),
                    secret_hash=hash_secret(secret),
                    enabled=True,
                    created_at=now,
                    secret_rotated_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                audit.record(
                    session,
                    at=now,
                    actor=actor,
                    action="client.add",
                    target_type="api_client",
                    target_id=name,
                    details={"client_id": client_id, "scopes": sorted(wanted)},
                )
                view = ApiClientView.of(row)
        except IntegrityError as exc:  # a concurrent add of the same name
            raise ApiClientExists(name) from exc
        return view, secret

    def list(self) -> builtins.list[ApiClientView]:
        with self._db.transaction() as session:
            rows = session.execute(select(ApiClientRow).order_by(ApiClientRow.name)).scalars()
            return [ApiClientView.of(r) for r in rows]

    def get(self, name: str) -> ApiClientView:
        with self._db.transaction() as session:
            return ApiClientView.of(self._by_name(session, name))

    def _set_enabled(self, name: str, enabled: bool, now: datetime, actor: str) -> ApiClientView:
        with self._db.transaction() as session:
            row = self._by_name(session, name)
            if row.enabled != enabled:
                row.enabled = enabled
                row.updated_at = now
                audit.record(
                    session,
                    at=now,
                    actor=actor,
                    action="client.enable" if enabled else "client.disable",
                    target_type="api_client",
                    target_id=name,
                    details={"client_id": row.id},
                )
            return ApiClientView.of(row)

    def disable(self, name: str, now: datetime, *, actor: str = "admin") -> ApiClientView:
        return self._set_enabled(name, False, now, actor)

    def enable(self, name: str, now: datetime, *, actor: str = "admin") -> ApiClientView:
        return self._set_enabled(name, True, now, actor)

    def rotate_secret(
        self, name: str, now: datetime, *, actor: str = "admin"
    ) -> tuple[ApiClientView, str]:
        """Replace the secret; the old one is refused from the next request on."""
        with self._db.transaction() as session:
            row = self._by_name(session, name)
            secret = _new_secret(row.id)
            row.secret_hash = hash_secret(secret)
            row.secret_rotated_at = row.updated_at = now
            audit.record(
                session,
                at=now,
                actor=actor,
                action="client.rotate_secret",
                target_type="api_client",
                target_id=name,
                details={"client_id": row.id},
            )
            return ApiClientView.of(row), secret

    def authenticate(self, secret: str, now: datetime) -> ApiClientView:
        """The enabled client whose current secret this is; else ``AuthenticationFailed``."""
        client_id = _client_id_of(secret)
        with self._db.transaction() as session:
            row = session.get(ApiClientRow, client_id) if client_id else None
            stored = row.secret_hash if row is not None else _NO_HASH
            matches = hmac.compare_digest(stored, hash_secret(secret))
            if row is None or not matches or not row.enabled:
                raise AuthenticationFailed()
            return ApiClientView.of(row)
