"""Status lists signed once per (content version, minute) and JWKS kept per key ring, served
from memory; every state change reaches the next token, also through another process's cache
(SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from idsvc.formats.status_list import Status
from idsvc.services import Services
from idsvc.storage.db import Database, DatabaseUnavailable
from idsvc.storage.tables import CredentialRow
from tests.support.payroll import csv_of, with_status
from tests.support.published import claims_of, list_name, status_of
from tests.support.settings import NOW, make_service, rotated

ACTIVE = "LA-MOHA-000101"
OTHER = "LA-MOHA-000102"


def test_signed_once_per_version_and_minute(service: Services) -> None:
    cred = service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    name = list_name(cred.token)
    first = service.credentials.status_list_document(name, now=NOW)
    # ES256 signatures are randomised: the same bytes again mean no second signing.
    assert service.credentials.status_list_document(name, now=NOW).body == first.body
    assert status_of(first, cred.token) == Status.VALID

    service.credentials.revoke(cred.id, reason="card lost", by=None, now=NOW)
    revoked = service.credentials.status_list_document(name, now=NOW)
    assert revoked.tag != first.tag and status_of(revoked, cred.token) == Status.INVALID
    assert service.credentials.status_list_document(name, now=NOW).body == revoked.body

    later = service.credentials.status_list_document(name, now=NOW + timedelta(minutes=1))
    assert later.body != revoked.body and claims_of(later)["iat"] == claims_of(revoked)["iat"] + 60
    assert later.expires_at == NOW + timedelta(minutes=1) + service.settings.status_list_lifetime


def test_a_change_through_another_process_reaches_the_next_token(service: Services) -> None:
    """Two workers: each keeps its own token; a revocation committed by one (here an HR import
    retiring the holder) is in the other's next answer, and unchanged content keeps one tag."""
    other_worker = make_service(service.settings)
    try:
        cred = service.credentials.issue(ACTIVE, actor="desk", now=NOW)
        name = list_name(cred.token)
        mine, theirs = (
            s.credentials.status_list_document(name, now=NOW) for s in (service, other_worker)
        )
        assert mine.tag == theirs.tag and mine.body != theirs.body  # same payload, own signature
        other_worker.register.import_hr(
            csv_of(with_status(ACTIVE, "retired", "2026-11-01")),
            source_name="hr.csv",
            actor="hr",
            now=NOW,
        )
        assert status_of(service.credentials.status_list_document(name, now=NOW), cred.token) == (
            Status.INVALID
        )
        # A new credential in the list (pending, then live) moves the version as well.
        fresh = other_worker.credentials.issue(OTHER, actor="desk", now=NOW)
        served = service.credentials.status_list_document(name, now=NOW)
        assert status_of(served, fresh.token) == Status.VALID
        assert list_name(fresh.token) == name
    finally:
        other_worker.infra.db.dispose()


def test_the_last_token_outlives_a_database_outage_until_its_exp(service: Services) -> None:
    cred = service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    name = list_name(cred.token)
    tokens = service.credentials._status_tokens
    served = service.credentials.status_list_document(name, now=NOW)
    dead = Database("postgresql+psycopg://postgres@127.0.0.1:1/down?connect_timeout=2")
    try:

        def never(*_: Any) -> str:
            raise AssertionError("signed while the database is down")

        later = NOW + timedelta(minutes=5)
        assert tokens.token(dead, name, now=later, sign=never) is served
        assert served.expires_at is not None
        with pytest.raises(DatabaseUnavailable):
            tokens.token(dead, name, now=served.expires_at, sign=never)
        with pytest.raises(DatabaseUnavailable):  # never seen: nothing to fall back on
            tokens.token(dead, "0123456789abcdef", now=later, sign=never)
    finally:
        dead.dispose()


def test_jwks_kept_until_the_key_ring_rotates(service: Services) -> None:
    first = service.credentials.jwks_document()
    assert service.credentials.jwks_document() is first
    assert json.loads(first.body) == service.credentials.jwks()
    _, new_kid = rotated(service)
    after = service.credentials.jwks_document()
    assert after.tag != first.tag
    assert new_kid in {k["kid"] for k in json.loads(after.body)["keys"]}


def test_a_bulk_update_of_credentials_is_refused_not_silently_unpublished(
    service: Services,
) -> None:
    view = service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    with (
        pytest.raises(RuntimeError, match="status-list versions"),
        service.infra.db.transaction() as session,
    ):
        session.execute(update(CredentialRow).values(state="revoked"))
    assert service.verification.verify(view.token, now=NOW).valid  # nothing was written
