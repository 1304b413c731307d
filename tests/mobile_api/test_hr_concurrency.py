"""Concurrent HR writes over real HTTP (``idsvc serve --workers 2``), SQLite and PostgreSQL: the
register's rules hold whatever the interleaving.

The probe that found the defect: six simultaneous ``POST /v1/hr/records`` for one person,
alternating ``deceased`` and ``active`` with the same ``status_date``, left the dead active on
both databases (the rules were checked on rows read without a lock), with 500s from racing
inserts and duplicate death events in the change feed. Each person here gets such a burst; the
test then reads the register, its status history and the change feed.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import httpx
from sqlalchemy import select

from idsvc.services import Services
from idsvc.storage.payroll_tables import ChangeEventRow
from idsvc.storage.tables import CivilServantRow, StatusHistoryRow
from tests.support.payroll import add_client, sample_records
from tests.support.serve import Served

BURST = 6
DAY = "2026-11-20"


def _record(base: dict[str, str], status: str, **changes: str) -> dict[str, str]:
    return base | {"status": status, "status_date": DAY} | changes


def _burst(port: int, secret: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """Send every body at once (one connection each, released together by a barrier)."""
    answers: list[httpx.Response | None] = [None] * len(bodies)
    gate = threading.Barrier(len(bodies))

    def send(i: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            http.get("/health")  # connected before the gate opens
            gate.wait()
            answers[i] = http.post(
                "/v1/hr/records", json=bodies[i], headers={"authorization": f"Bearer {secret}"}
            )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def _assert_register_rules(service: Services, people: list[str]) -> None:
    with service.infra.db.transaction() as session:
        status = dict(
            session.execute(
                select(CivilServantRow.employee_id, CivilServantRow.status).where(
                    CivilServantRow.employee_id.in_(people)
                )
            ).all()
        )
        history: dict[str, list[str]] = defaultdict(list)
        for employee_id, state in session.execute(
            select(StatusHistoryRow.employee_id, StatusHistoryRow.status)
            .where(StatusHistoryRow.employee_id.in_(people))
            .order_by(StatusHistoryRow.id)
        ):
            history[employee_id].append(state)
        events: dict[str, list[str]] = defaultdict(list)
        for employee_id, kind in session.execute(
            select(ChangeEventRow.employee_id, ChangeEventRow.type)
            .where(ChangeEventRow.employee_id.in_(people))
            .order_by(ChangeEventRow.position)
        ):
            if kind.startswith("employee."):
                events[employee_id].append(kind)
    for person in people:
        states = history[person]
        # Nothing follows a death in the history, and a person once dead stays dead.
        if "deceased" in states:
            assert states[-1] == "deceased" and states.count("deceased") == 1, (person, states)
            assert status[person] == "deceased", (person, states)
        # One event per real change, in the order of the history.
        assert events[person] == [f"employee.{_event(s)}" for s in states[1:]], (person, events)


def _event(status: str) -> str:
    return {"active": "reinstated"}.get(status, status)


def test_concurrent_deceased_and_active_never_revive(
    service: Services,
    served: Served,
) -> None:
    records = sample_records()
    people = [r for r in records if r["status"] == "active"][:10]
    _, secret = add_client(service, "MoHA HR", "hr:write")
    for person in people:
        bodies = [
            {"records": [_record(person, "deceased" if i % 2 == 0 else "active")]}
            for i in range(BURST)
        ]
        for answer in _burst(served.port, secret, bodies):
            # A lost race is the rules' ordinary per-record refusal (200) or a retryable 409,
            # never a 500.
            assert answer.status_code in (200, 409), answer.text
            if answer.status_code == 409:
                assert answer.json()["code"] == "CONCURRENT_UPDATE"
    ids = [p["employee_id"] for p in people]
    _assert_register_rules(service, ids)
    with service.infra.db.transaction() as session:
        dead = session.scalars(
            select(CivilServantRow.employee_id).where(
                CivilServantRow.status == "deceased", CivilServantRow.employee_id.in_(ids)
            )
        ).all()
    # Each burst opens with a death (even i) among six racing writers: whoever wins, some death
    # lands, because an "active" row changes nothing on an active person.
    assert sorted(dead) == sorted(ids)


def test_concurrent_new_person_is_created_once(
    service: Services,
    served: Served,
) -> None:
    base = sample_records()[0]
    _, secret = add_client(service, "MoHA HR", "hr:write")
    newcomers = [f"LA-MOHA-9{n:05d}" for n in range(5)]
    for employee_id in newcomers:
        bodies = [
            {"records": [_record(base, "active", employee_id=employee_id, grade=f"K{1 + i % 3}")]}
            for i in range(BURST)
        ]
        answers = _burst(served.port, secret, bodies)
        assert [a.status_code for a in answers] == [200] * BURST, [a.text for a in answers]
        assert sum(a.json()["created"] for a in answers) == 1
    _assert_register_rules(service, newcomers)
