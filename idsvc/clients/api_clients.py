"""API clients (banks, HR systems, verifier apps): use cases shared by the CLI and the API.

A client is a database row with a name, scopes and the hash of its secret. The secret is
``idsvc_<client id>_<43 random characters>`` (256 random bits): it is printed once by ``add``
and ``rotate_secret`` and never stored. Every ``authenticate`` reads the row (one primary-key
lookup), so a disabled client or a rotated-out secret is refused on its very next request, on
every worker and machine: there is no cache to outlive a change.

A client may also be bound to the TLS certificate a bank presents to the reverse proxy (mutual
TLS): the SHA-256 of the certificate's DER. Such a client authenticates by its certificate,
passed on by a trusted proxy (``mobile_api.auth``), optionally with its secret as well; its
secret alone is refused, so a leaked secret without the bank's private key opens nothing.

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

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idsvc import SCOPES as SCOPES  # re-exported for callers
from idsvc.audit import chain as audit
from idsvc.errors import (
    ApiClientError,
    ApiClientExists,
    AuthenticationFailed,
    InvalidScope,
    UnknownApiClient,
)
from idsvc.storage.client_tables import ApiClientRow
from idsvc.storage.db import Database

SECRET_PREFIX = "idsvc_"  # noqa: S105  (a label, not a secret)
_ID_HEX = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")
# Compared against when the client id is unknown, so that both paths do the same work.
_NO_HASH = hashlib.sha256(b"no such client").hexdigest()
_FINGERPRINT = re.compile(r"[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True)
class ApiClientView:
    id: str
    name: str
    scopes: frozenset[str]
    enabled: bool
    created_at: datetime
    secret_rotated_at: datetime
    cert_sha256: str | None = None

    @classmethod
    def of(cls, row: ApiClientRow) -> ApiClientView:
        return cls(
            row.id,
            row.name,
            frozenset(row.scopes.split()),
            row.enabled,
            row.created_at,
            row.secret_rotated_at,
            row.cert_sha256,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "secret_rotated_at": self.secret_rotated_at.isoformat(),
            "cert_sha256": self.cert_sha256,
        }


def hash_secret(secret: str) -> str:
    # A plain SHA-256 is the right tool here: the secret is 256 random bits, so there is
    # nothing to brute-force and no need for a slow password hash (argon2/scrypt exist to
    # protect low-entropy human passwords and would cost ~50 ms of CPU on every API request).
    return hashlib.sha256(secret.encode()).hexdigest()


def certificate_fingerprint(fingerprint: str) -> str:
    """A SHA-256 certificate fingerprint as stored: 64 lowercase hex digits, from any usual
    spelling (``AB:CD:...``, upper or lower case)."""
    value = fingerprint.strip().replace(":", "").lower()
    if not _FINGERPRINT.fullmatch(value):
        raise ApiClientError(
            "a certificate fingerprint is the SHA-256 of the certificate's DER: 64 hex digits "
            "(colons allowed)"
        )
    return value


def fingerprint_of_certificate(data: bytes) -> str:
    """The SHA-256 fingerprint of a certificate given as PEM or DER."""
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_certificate(data)
        )
    except ValueError:
        raise ApiClientError("not an X.509 certificate (PEM or DER)") from None
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


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
        self,
        name: str,
        scopes: Iterable[str],
        now: datetime,
        *,
        actor: str = "admin",
        cert_sha256: str | None = None,
    ) -> tuple[ApiClientView, str]:
        """Create a client; return it and its secret (shown once, stored only as a hash)."""
        _check_name(name)
        wanted = check_scopes(scopes)
        cert = certificate_fingerprint(cert_sha256) if cert_sha256 is not None else None
        client_id = secrets.token_hex(_ID_HEX // 2)
        secret = _new_secret(client_id)
        try:
            with self._db.transaction() as session:
                if session.execute(
                    select(ApiClientRow.id).where(ApiClientRow.name == name)
                ).first():
                    raise ApiClientExists(name)
                if cert is not None:
                    self._check_cert_free(session, cert, None)
                row = ApiClientRow(
                    id=client_id,
                    name=name,
                    scopes=" ".join(sorted(wanted)),
                    secret_hash=hash_secret(secret),
                    cert_sha256=cert,
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
                    details={
                        "client_id": client_id,
                        "scopes": sorted(wanted),
                        "cert_sha256": cert,
                    },
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

    @staticmethod
    def _check_cert_free(session: Session, cert: str, name: str | None) -> None:
        holder = session.execute(
            select(ApiClientRow.name).where(ApiClientRow.cert_sha256 == cert)
        ).scalar_one_or_none()
        if holder is not None and holder != name:
            # One certificate, one client: otherwise the proxy's header would not say who.
            raise ApiClientError(f"this certificate is registered for client {holder!r}")

    def set_certificate(
        self, name: str, cert_sha256: str | None, now: datetime, *, actor: str = "admin"
    ) -> ApiClientView:
        """Bind the client to a TLS certificate (its SHA-256), or unbind it (None)."""
        cert = certificate_fingerprint(cert_sha256) if cert_sha256 is not None else None
        try:
            with self._db.transaction() as session:
                row = self._by_name(session, name)
                if cert is not None:
                    self._check_cert_free(session, cert, name)
                if row.cert_sha256 != cert:
                    row.cert_sha256 = cert
                    row.updated_at = now
                    audit.record(
                        session,
                        at=now,
                        actor=actor,
                        action="client.certificate",
                        target_type="api_client",
                        target_id=name,
                        details={"client_id": row.id, "cert_sha256": cert},
                    )
                return ApiClientView.of(row)
        except IntegrityError as exc:  # the same certificate bound concurrently elsewhere
            raise ApiClientError("this certificate is registered for another client") from exc

    def authenticate(self, secret: str, now: datetime) -> ApiClientView:
        """The enabled client whose current secret this is; else ``AuthenticationFailed``.

        A client bound to a certificate is refused here: it must come through the proxy with
        its certificate (``authenticate_certificate``)."""
        client_id = _client_id_of(secret)
        with self._db.transaction() as session:
            row = session.get(ApiClientRow, client_id) if client_id else None
            stored = row.secret_hash if row is not None else _NO_HASH
            matches = hmac.compare_digest(stored, hash_secret(secret))
            if row is None or not matches or not row.enabled or row.cert_sha256 is not None:
                raise AuthenticationFailed()
            return ApiClientView.of(row)

    def authenticate_certificate(
        self, cert_sha256: str, secret: str | None, now: datetime
    ) -> ApiClientView:
        """The enabled client bound to this certificate; with ``secret``, it must also be that
        client's current secret. Else ``AuthenticationFailed`` (one error for every cause)."""
        if not _FINGERPRINT.fullmatch(cert_sha256):
            raise AuthenticationFailed()
        with self._db.transaction() as session:
            row = session.execute(
                select(ApiClientRow).where(ApiClientRow.cert_sha256 == cert_sha256)
            ).scalar_one_or_none()
            if row is None or not row.enabled:
                raise AuthenticationFailed()
            if secret is not None and not (
                _client_id_of(secret) == row.id
                and hmac.compare_digest(row.secret_hash, hash_secret(secret))
            ):
                raise AuthenticationFailed()
            return ApiClientView.of(row)
