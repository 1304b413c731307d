"""Contracts that end, on SQLite and PostgreSQL: the credential never outlives the contract; the
day after the last day the payroll check stops the salary without any import; the sweep records
the end exactly as an HR import would (status history, audit, change feed, a webhook delivered
to a real receiver, the card revoked); an extension recorded in HR before the date keeps the
person active, and one recorded after it makes them active again."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from idsvc.audit.who_checked import CheckedBy
from idsvc.bank.payroll import PayrollItem
from idsvc.bank.webhook_delivery import WebhookDeliverer, http_post
from idsvc.bank.webhooks import Webhooks
from idsvc.errors import HolderNotEligible
from idsvc.formats.hr_csv import COLUMNS
from idsvc.services import Services
from idsvc.storage.tables import CivilServantRow, StatusHistoryRow
from tests.support.payroll import KEYS, add_client, check_people, checks
from tests.support.settings import NOW
from tests.support.webhook_receiver import receiver

TEACHER = "KH-MOEYS-777001"
LAST_DAY = NOW.date() + timedelta(days=30)
AFTER = datetime.combine(LAST_DAY + timedelta(days=1), time(0, 5), UTC)  # just past midnight


def teacher(contract_end: str, status: str = "active", status_date: str = "2020-09-01") -> bytes:
    row = {
        "employee_id": TEACHER,
        "name_local": "សុខ ដារ៉ា",
        "name_latin": "Sok Dara",
        "sex": "F",
        "date_of_birth": "1990-04-02",
        "ministry": "Ministry of Education, Youth and Sport",
        "category": "contract_teacher",
        "status": status,
        "status_date": status_date,
        "hire_date": "2020-09-01",
        "contract_end": contract_end,
    }
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerow(row)
    return out.getvalue().encode()


@pytest.fixture
def hired(service: Services) -> Services:
    service.register.import_hr(
        teacher(LAST_DAY.isoformat()), source_name="t.csv", actor="hr", now=NOW
    )
    return service


def status_of(service: Services) -> str:
    with service.infra.db.transaction() as session:
        row = session.get(CivilServantRow, TEACHER)
        assert row is not None
        return row.status


def test_the_credential_ends_with_the_contract(hired: Services) -> None:
    view = hired.credentials.issue(TEACHER, actor="desk", now=NOW)
    assert view.expires_at == datetime.combine(LAST_DAY + timedelta(days=1), time(), UTC)
    with pytest.raises(HolderNotEligible, match="contract ended"):
        hired.credentials.issue(TEACHER, actor="desk", now=AFTER)


def test_the_day_after_the_payroll_check_stops_and_the_sweep_ends_it_like_hr(
    hired: Services,
) -> None:
    card = hired.credentials.issue(TEACHER, actor="desk", now=NOW)
    client_id, _ = add_client(hired, "bank-a")
    check_people(hired, client_id, TEACHER)  # the bank pays her: her events reach it
    hooks = Webhooks(hired.infra.db, KEYS, private_targets=True)
    bank = CheckedBy(client_id, "bank-a", "127.0.0.1")
    last_day_noon = datetime.combine(LAST_DAY, time(12), UTC)
    (paid,) = checks(hired).check([PayrollItem(employee_id=TEACHER)], by=bank, now=last_day_noon)
    assert paid.active_for_payroll and "CONTRACT_ENDED" not in paid.reasons

    # Past midnight, before any sweep or import: the check already stops the salary.
    (stopped,) = checks(hired).check([PayrollItem(employee_id=TEACHER)], by=bank, now=AFTER)
    assert not stopped.active_for_payroll and "CONTRACT_ENDED" in stopped.reasons
    assert status_of(hired) == "active"

    with receiver() as box:
        hooks.add(
            box.url, client_name="bank-a", events=["employee.*"], use_hmac=False, now=NOW, actor="a"
        )
        assert hired.operations.end_contracts(actor="sweeper", now=AFTER) == 1
        assert hired.operations.end_contracts(actor="sweeper", now=AFTER) == 0  # done once
        deliverer = WebhookDeliverer(
            hired.infra.db,
            KEYS,
            http_post(2.0, private_targets=True),
            max_attempts=3,
            rng=random.Random(1),
        )
        assert deliverer.run_once(AFTER).delivered >= 1
    events = [json.loads(g.body) for g in box.got]
    assert [e["type"] for e in events if e["type"].startswith("employee.")] == [
        "employee.contract_ended"
    ]
    assert status_of(hired) == "contract_ended"
    assert hired.credentials.credential(card.id).state == "revoked"
    with hired.infra.db.transaction() as session:
        history = session.execute(
            select(StatusHistoryRow.status, StatusHistoryRow.status_date)
            .where(StatusHistoryRow.employee_id == TEACHER)
            .order_by(StatusHistoryRow.id)
        ).all()
    assert [tuple(h) for h in history] == [
        ("active", datetime(2020, 9, 1).date()),
        ("contract_ended", LAST_DAY + timedelta(days=1)),
    ]
    assert hired.audit.verify_chain().events > 0  # raises if the chain or the state disagree
    (after,) = checks(hired).check([PayrollItem(employee_id=TEACHER)], by=bank, now=AFTER)
    assert after.reasons[:2] == ("HOLDER_INACTIVE", "CONTRACT_ENDED")


def test_an_extension_before_the_date_keeps_her_active(hired: Services) -> None:
    later = (LAST_DAY + timedelta(days=365)).isoformat()
    hired.register.import_hr(teacher(later), source_name="ext.csv", actor="hr", now=NOW)
    assert hired.operations.end_contracts(actor="sweeper", now=AFTER) == 0
    assert status_of(hired) == "active"


def test_an_extension_after_the_sweep_makes_her_active_again_but_an_old_file_does_not(
    hired: Services,
) -> None:
    hired.operations.end_contracts(actor="sweeper", now=AFTER)
    old = hired.register.import_hr(
        teacher(LAST_DAY.isoformat()), source_name="old.csv", actor="hr", now=AFTER
    )
    assert len(old.rejects) == 1 and status_of(hired) == "contract_ended"
    later = (LAST_DAY + timedelta(days=365)).isoformat()
    new = hired.register.import_hr(teacher(later), source_name="new.csv", actor="hr", now=AFTER)
    assert new.rejects == [] and status_of(hired) == "active"
