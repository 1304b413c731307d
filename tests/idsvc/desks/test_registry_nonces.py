"""A desk request's id (``jti``) is spent once, on SQLite and PostgreSQL, and the rest of the
request's transaction is unaffected by the check (no savepoint: pysqlite's savepoints are
unsafe without SQLAlchemy's recipe, so the spend is an ``INSERT ... ON CONFLICT DO NOTHING``).
On PostgreSQL two requests carrying the same proof at the same moment: one passes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from idsvc.desk_client.identity import DeskIdentity
from idsvc.desks import registry as desks
from idsvc.desks.gateway import DeskGateway
from idsvc.desks.registry import DeskRequest
from idsvc.errors import DeskRequestInvalid
from idsvc.formats.desk_proof import sign_proof
from idsvc.storage.desk_tables import DeskNonceRow
from idsvc.storage.tables import AuditEventRow
from tests.support.operator_people import make_centre
from tests.support.settings import NOW

PATH = "/v1/desk/eligibility"


def _enrolled(home: Path, db_url: str) -> tuple[DeskGateway, DeskIdentity]:
    desk_centre = make_centre(home / "centre", db_url).desks
    _, code = desk_centre.add_desk("vte-01", office="Vientiane", by=None, now=NOW)
    identity = DeskIdentity(home / "desk")
    signer = identity.new_key()  # kept in memory by new_key: stored here, as enrolment would
    identity.key_path.parent.mkdir(parents=True)
    identity.key_path.write_bytes(signer.pem())
    identity.key_path.chmod(0o600)
    path = "/v1/desk/enrolment"
    proof = sign_proof(
        signer, method="POST", path=path, body=b"{}", now=NOW, jti="enrolment-request-0001"
    )
    request = DeskRequest(proof, "POST", path, b"{}")
    desk_centre.enrol(code=code, jwk=signer.jwk, request=request, now=NOW)
    return desk_centre, identity


@pytest.fixture
def enrolled(tmp_path: Path, db_url: str) -> Iterator[tuple[DeskGateway, DeskIdentity]]:
    desk_centre, identity = _enrolled(tmp_path, db_url)
    yield desk_centre, identity
    desk_centre.infra.db.dispose()


def _request(identity: DeskIdentity, jti: str) -> DeskRequest:
    body = b'{"employee_id":"x"}'
    proof = sign_proof(identity.signer(), method="POST", path=PATH, body=body, now=NOW, jti=jti)
    return DeskRequest(proof, "POST", PATH, body)


def _nonces(desk_centre: DeskGateway, jti: str) -> int:
    with desk_centre.infra.db.transaction() as session:
        return (
            session.scalar(
                select(func.count()).select_from(DeskNonceRow).where(DeskNonceRow.jti == jti)
            )
            or 0
        )


def test_a_request_id_is_spent_once_and_the_transaction_goes_on(
    enrolled: tuple[DeskGateway, DeskIdentity],
) -> None:
    desk_centre, identity = enrolled
    request = _request(identity, "request-id-0000001")
    db = desk_centre.infra.db
    with db.transaction() as session:
        before = session.scalar(select(func.count()).select_from(AuditEventRow))
        assert desks.desk_of_request(session, request, now=NOW).name == "vte-01"
        # The same transaction writes on after the spend, and all of it commits together.
        desks.add_desk(
            session, name="vte-02", office="Vientiane", ttl=timedelta(hours=1), actor="t", now=NOW
        )
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditEventRow)) == (before or 0) + 1
    with pytest.raises(DeskRequestInvalid, match="replayed"), db.transaction() as session:
        desks.desk_of_request(session, request, now=NOW)
    assert _nonces(desk_centre, "request-id-0000001") == 1
    other = _request(identity, "request-id-0000002")
    with db.transaction() as session:
        desks.desk_of_request(session, other, now=NOW)
    assert _nonces(desk_centre, "request-id-0000002") == 1


def test_the_same_proof_twice_at_once_passes_once(tmp_path: Path, postgres_db: str) -> None:
    # PostgreSQL only: SQLite serialises writers, so its two requests cannot overlap.
    desk_centre, identity = _enrolled(tmp_path, postgres_db)
    try:
        same = _request(identity, "request-id-raced-01")
        outcome: list[BaseException | str] = []
        first_in = threading.Event()
        db = desk_centre.infra.db

        def second() -> None:
            first_in.wait(5)
            try:
                with db.transaction() as session:
                    outcome.append(desks.desk_of_request(session, same, now=NOW).name)
            except DeskRequestInvalid as exc:
                outcome.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        with db.transaction() as session:
            desks.desk_of_request(session, same, now=NOW)
            first_in.set()
            # Hold the first transaction open while the second one reaches its insert.
            thread.join(0.5)
            assert thread.is_alive(), "the second request should wait for the first"
        thread.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], DeskRequestInvalid)
        assert _nonces(desk_centre, "request-id-raced-01") == 1
    finally:
        desk_centre.infra.db.dispose()
