"""Every path that changes a person's status, run against another at the same moment, SQLite and
PostgreSQL: a file import beside HR-sync requests, an issuance beside a death, a reinstatement
beside a death, a correction beside an import. Each pair is released together by a barrier and
repeated, so the interleavings that broke the rules before (reads without the person's lock)
come up on every run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date

from sqlalchemy import select

from idsvc.errors import CorrectionRefused, HolderNotEligible, InvalidTransition
from idsvc.register.hr_sync import HrSync
from idsvc.services import Services
from idsvc.storage.tables import LIVE_STATES, CivilServantRow, CredentialRow, StatusHistoryRow
from tests.support.payroll import csv_of, sample_records
from tests.support.settings import NOW

ROUNDS = 6
DAY = "2026-11-20"
Expected = tuple[type[BaseException], ...]


def _together(*actions: Callable[[], object], expected: Expected = ()) -> list[BaseException]:
    """Run the actions in threads released at once; return the expected errors they raised
    (any other error fails the test)."""
    gate = threading.Barrier(len(actions))
    raised: list[BaseException] = []
    unexpected: list[BaseException] = []

    def run(action: Callable[[], object]) -> None:
        gate.wait()
        try:
            action()
        except expected as exc:
            raised.append(exc)
        except BaseException as exc:  # reported below, with its type
            unexpected.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not unexpected, [f"{type(e).__name__}: {e}" for e in unexpected]
    return raised


def _status(service: Services, employee_id: str) -> str:
    with service.infra.db.transaction() as session:
        row = session.get(CivilServantRow, employee_id)
        assert row is not None
        return row.status


def _history(service: Services, employee_id: str) -> list[str]:
    with service.infra.db.transaction() as session:
        return list(
            session.scalars(
                select(StatusHistoryRow.status)
                .where(StatusHistoryRow.employee_id == employee_id)
                .order_by(StatusHistoryRow.id)
            )
        )


def _live_credentials(service: Services, employee_id: str) -> int:
    with service.infra.db.transaction() as session:
        return len(
            session.scalars(
                select(CredentialRow.id).where(
                    CredentialRow.employee_id == employee_id, CredentialRow.state.in_(LIVE_STATES)
                )
            ).all()
        )


def _active_people() -> list[dict[str, str]]:
    return [r for r in sample_records() if r["status"] == "active"]


def test_file_import_beside_hr_sync_keeps_the_dead_dead(service: Services) -> None:
    people = _active_people()
    records = sample_records()
    for r in records:
        if r in people:
            r["status"], r["status_date"] = "deceased", DAY
    death_file = csv_of(records)
    sync = HrSync(service.infra.db)
    for person in people[:ROUNDS]:
        alive = person | {"status": "active", "status_date": DAY}

        def file_import() -> None:
            service.register.import_hr(death_file, source_name="deaths.csv", actor="hr", now=NOW)

        def request(record: dict[str, str] = alive) -> None:
            sync.upsert([record], client_id="c", client_name="HR", idempotency_key=None, now=NOW)

        _together(file_import, request, request)
        # Whatever ran first, the death stands and nothing follows it.
        assert _status(service, person["employee_id"]) == "deceased"
        history = _history(service, person["employee_id"])
        assert history[-1] == "deceased" and history.count("deceased") == 1, history


def test_issuance_beside_a_death_leaves_no_live_credential(service: Services) -> None:
    for person in _active_people()[:ROUNDS]:
        employee_id = person["employee_id"]
        records = sample_records()
        for r in records:
            if r["employee_id"] == employee_id:
                r["status"], r["status_date"] = "deceased", DAY

        def issue(employee_id: str = employee_id) -> None:
            service.credentials.issue(employee_id, actor="registrar", now=NOW)

        def death(data: bytes = csv_of(records)) -> None:
            service.register.import_hr(data, source_name="death.csv", actor="hr", now=NOW)

        refused = _together(issue, death, expected=(HolderNotEligible,))
        assert _status(service, employee_id) == "deceased"
        # Issued first and then revoked by the death, or refused: never live for the dead.
        assert _live_credentials(service, employee_id) == 0, refused


def test_reinstatement_beside_a_death_stays_revoked(service: Services) -> None:
    for person in _active_people()[:ROUNDS]:
        employee_id = person["employee_id"]
        credential = service.credentials.issue(employee_id, actor="registrar", now=NOW)
        service.credentials.change_state(
            credential.id, "suspend", reason="card lost", actor="r", now=NOW
        )

        def reinstate(credential_id: str = credential.id) -> None:
            service.credentials.change_state(
                credential_id, "reinstate", reason="found", actor="r", now=NOW
            )

        def death(employee_id: str = employee_id) -> None:
            service.register.correct_status(
                employee_id,
                status="deceased",
                status_date=date(2026, 11, 20),
                reason="death certificate 2026/118",
                by=None,
                now=NOW,
            )

        _together(reinstate, death, expected=(InvalidTransition,))
        assert _status(service, employee_id) == "deceased"
        assert _live_credentials(service, employee_id) == 0


def test_two_corrections_at_once_make_one_change(service: Services) -> None:
    for person in _active_people()[:ROUNDS]:
        employee_id = person["employee_id"]

        def correct(employee_id: str = employee_id) -> None:
            service.register.correct_status(
                employee_id,
                status="dismissed",
                status_date=date(2026, 11, 20),
                reason="decision 2026/77 of the ministry",
                by=None,
                now=NOW,
            )

        refused = _together(correct, correct, correct, expected=(CorrectionRefused,))
        assert len(refused) == 2  # "already dismissed": judged on what the first stored
        assert _history(service, employee_id).count("dismissed") == 1
