"""Issuance writes the credential rows on the connection (``idsvc.credentials.issuance``): the
lists they change still move their version, the session's copies still say what is stored, and
the issuer rows a process keeps are only ever the ones in the database (SQLite and
PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from idsvc.credentials.issuance import issue_credential
from idsvc.errors import NotInitialised, UnknownIssuer
from idsvc.formats.status_list import Status
from idsvc.services import Services
from idsvc.storage.tables import CredentialRow, IssuerRow, StatusListRow
from tests.support.published import list_name, status_of
from tests.support.settings import NOW

ACTIVE = "LA-MOHA-000101"


def versions(service: Services) -> dict[int, int]:
    with service.infra.db.transaction() as session:
        rows = session.execute(select(StatusListRow.id, StatusListRow.version))
        return {list_id: version for list_id, version in rows}


def test_confirming_a_card_republishes_the_old_and_the_new_credential(service: Services) -> None:
    old = service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    pending = service.credentials.begin_card_issuance(
        ACTIVE,
        card_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        card_uuid=uuid.uuid4(),
        actor="desk",
        now=NOW,
    )
    name = list_name(old.token)
    assert list_name(pending.token) == name
    before = service.credentials.status_list_document(name, now=NOW)
    assert status_of(before, pending.token) != Status.VALID
    seen = versions(service)

    # This transaction inserts nothing: only the two UPDATEs on the connection change bits.
    service.credentials.confirm_issuance(pending.credential_id, actor="desk", now=NOW)

    assert sum(versions(service).values()) == sum(seen.values()) + 1
    after = service.credentials.status_list_document(name, now=NOW)
    assert after.tag != before.tag
    assert status_of(after, old.token) == Status.INVALID
    assert status_of(after, pending.token) == Status.VALID


def test_the_session_copies_agree_with_what_was_stored(service: Services) -> None:
    first = service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    with service.infra.db.transaction() as session:
        loaded_old = session.get(CredentialRow, first.id)
        assert loaded_old is not None and loaded_old.state == "live"
        issuer = service.infra.issuer(session)
        row = issue_credential(
            session,
            employee_id=ACTIVE,
            issuer=issuer,
            signer=service.infra.signer(issuer),
            policy=service.credentials.policy,
            actor="desk",
            now=NOW,
        )
        # Told, not marked changed: the flush before commit has nothing of theirs to write.
        assert (row.state, row.pending_until, row.state_reason) == ("live", None, None)
        assert (loaded_old.state, loaded_old.superseded_by) == ("superseded", row.id)
        assert not session.dirty
        new_id = row.id
    with service.infra.db.transaction() as session:
        stored = {r.id: r for r in session.scalars(select(CredentialRow))}
    assert stored[first.id].state == "superseded"
    assert stored[first.id].state_reason == f"superseded by {new_id}"
    assert (stored[new_id].state, stored[new_id].kind) == ("live", "card")
    assert stored[new_id].pending_until is None and stored[new_id].cnf_jwk is None


def test_an_issuer_row_is_read_once_and_an_unknown_one_every_time(service: Services) -> None:
    with service.infra.db.transaction() as session:
        first = service.infra.issuer(session)
        with pytest.raises(UnknownIssuer):
            service.infra.issuer(session, "not-yet")
    # A second issuer registered by another process (here: straight in the database) is found.
    with service.infra.db.transaction() as session:
        session.add(
            IssuerRow(iss="https://other.example", slug="not-yet", name="x", created_at=NOW)
        )
    with service.infra.db.transaction() as session:
        with pytest.raises(NotInitialised, match="no key ring"):  # found: its key ring is missing
            service.infra.issuer(session, "not-yet")
        again = service.infra.issuer(session)
    assert (again.id, again.iss, again.slug, again.name) == (
        first.id,
        first.iss,
        first.slug,
        first.name,
    )
