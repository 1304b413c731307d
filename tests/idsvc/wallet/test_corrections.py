"""Correction requests (idsvc.wallet.corrections) on SQLite and PostgreSQL: a holder reports an
error in a field of their record from their page; the request changes nothing in the record,
is audited without its text, is refused with a clear reason when its field or text is wrong or
when the person has too many open; a registrar decides it once, and the holder sees the answer."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from idsvc.cli.errors import exit_code_for
from idsvc.errors import (
    CorrectionAlreadyDecided,
    CorrectionRequestInvalid,
    TooManyOpenCorrections,
    UnknownCorrectionRequest,
)
from idsvc.services import Services
from idsvc.storage.tables import AuditEventRow, CivilServantRow
from idsvc.wallet.corrections import FIELDS, MAX_OPEN, MAX_TEXT
from idsvc.wallet.holder import holder_audience
from tests.support.holder_phone import give_phone
from tests.support.settings import ACTIVE_EMPLOYEE, NOW

AUD = holder_audience("https://id.mcs.gov.kh")


@pytest.fixture
def token(service: Services) -> str:
    phone = give_phone(service, ACTIVE_EMPLOYEE, now=NOW)
    nonce, _ = service.wallet.holder_nonce(now=NOW)
    opened = service.wallet.open_holder_session(
        phone.present(aud=AUD, nonce=nonce, now=NOW), now=NOW
    )
    return opened.token


def _record(service: Services) -> dict[str, object]:
    with service.infra.db.transaction() as session:
        row = session.get(CivilServantRow, ACTIVE_EMPLOYEE)
        assert row is not None
        return {c.key: getattr(row, c.key) for c in CivilServantRow.__table__.columns}


def _events(service: Services, action: str) -> list[AuditEventRow]:
    with service.infra.db.transaction() as session:
        rows = list(session.scalars(select(AuditEventRow).where(AuditEventRow.action == action)))
        session.expunge_all()
        return rows


def test_a_request_reaches_the_queue_and_changes_nothing(service: Services, token: str) -> None:
    before = _record(service)
    text = "My position is Director since June 2026 (decision 12/MOHA).\nPlease correct it."
    made = service.wallet.request_correction(
        token, field="position", text=f"  {text}\r\n", now=NOW + timedelta(minutes=1)
    )
    assert (made.field, made.text, made.status, made.employee_id) == (
        "position",
        text,
        "open",
        ACTIVE_EMPLOYEE,
    )
    assert _record(service) == before
    assert [v.id for v in service.wallet.correction_queue()] == [made.id]
    (event,) = _events(service, "correction.request")
    assert (event.actor, event.target_id) == (f"holder:{ACTIVE_EMPLOYEE}", made.id)
    assert event.details["field"] == "position"
    assert "Director" not in str(event.details)  # the text may be personal: not in the audit
    page = service.wallet.holder_page(token, now=NOW + timedelta(minutes=2))
    assert [(c["id"], c["status"], c["answer"]) for c in page["corrections"]] == [
        (made.id, "open", None)
    ]


@pytest.mark.parametrize(
    ("field", "text", "says"),
    [
        ("national_id", "wrong", "field must be one of"),
        ("x" * 40, "wrong", "not a field of the record"),
        ("grade", "   ", "empty"),
        ("grade", "x" * (MAX_TEXT + 1), f"longer than {MAX_TEXT}"),
        ("grade", "K6\u202e not K5", "bidirectional control"),
        ("grade", "K6\x00", "control character"),
    ],
)
def test_a_bad_request_is_refused_with_its_reason(
    service: Services, token: str, field: str, text: str, says: str
) -> None:
    with pytest.raises(CorrectionRequestInvalid, match=says) as refused:
        service.wallet.request_correction(token, field=field, text=text, now=NOW)
    assert exit_code_for(refused.value)[0] == 28
    assert service.wallet.correction_queue(status=None) == []
    assert _events(service, "correction.request") == []


def test_the_text_may_be_a_thousand_characters_in_any_script(service: Services, token: str) -> None:
    text = ("ຕຳແໜ່ງ ບໍ່ຖືກ " * 100)[:MAX_TEXT]
    made = service.wallet.request_correction(token, field="position_local", text=text, now=NOW)
    assert made.text == text.strip()
    assert set(FIELDS) >= {"name_local", "name_latin", "ministry", "unit", "grade", "photo"}


def test_a_phone_cannot_flood_the_queue(service: Services, token: str) -> None:
    made = [
        service.wallet.request_correction(token, field="unit", text=f"try {i}", now=NOW)
        for i in range(MAX_OPEN)
    ]
    with pytest.raises(TooManyOpenCorrections):
        service.wallet.request_correction(token, field="unit", text="one more", now=NOW)
    service.wallet.decide_correction(
        made[0].id, accept=False, answer="Same as HR's file.", actor="registrar", now=NOW
    )
    service.wallet.request_correction(token, field="unit", text="now there is room", now=NOW)


def test_concurrent_requests_do_not_pass_the_limit_together(service: Services, token: str) -> None:
    for i in range(MAX_OPEN - 1):
        service.wallet.request_correction(token, field="unit", text=f"try {i}", now=NOW)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            service.wallet.request_correction(token, field="unit", text=f"race {i}", now=NOW)
            outcomes.append("made")
        except TooManyOpenCorrections:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["made", "refused"]
    assert len(service.wallet.correction_queue()) == MAX_OPEN


def test_a_registrar_decides_once_and_the_holder_reads_the_answer(
    service: Services, token: str
) -> None:
    wallet = service.wallet
    asked = wallet.request_correction(token, field="grade", text="I am K6 since May.", now=NOW)
    later = NOW + timedelta(hours=3)
    done = wallet.decide_correction(
        asked.id,
        accept=True,
        answer="HR corrected your grade; the next export brings it.",
        actor="registrar-vte",
        now=later,
    )
    assert (done.status, done.decided_by, done.decided_at) == ("accepted", "registrar-vte", later)
    assert wallet.correction_queue() == []
    assert [v.id for v in wallet.correction_queue(status="accepted")] == [asked.id]
    with pytest.raises(CorrectionAlreadyDecided, match="accepted already") as again:
        wallet.decide_correction(asked.id, accept=False, answer="no", actor="other", now=later)
    assert exit_code_for(again.value)[0] == 28
    with pytest.raises(UnknownCorrectionRequest):
        wallet.decide_correction("no-such-id", accept=True, answer="ok", actor="r", now=later)
    with pytest.raises(CorrectionRequestInvalid, match="answer is empty"):
        other = wallet.request_correction(token, field="unit", text="Wrong unit.", now=NOW)
        wallet.decide_correction(other.id, accept=True, answer=" ", actor="r", now=later)
    (event,) = _events(service, "correction.decide")
    assert (event.actor, event.target_id, event.details["to"]) == (
        "registrar-vte",
        asked.id,
        "accepted",
    )
    # A fresh session on the next visit: the holder sees the outcome.
    page = wallet.holder_page(token, now=NOW + timedelta(minutes=4))
    shown = {c["id"]: c for c in page["corrections"]}
    assert shown[asked.id]["status"] == "accepted"
    assert shown[asked.id]["answer"] == "HR corrected your grade; the next export brings it."
    assert "decided_by" not in shown[asked.id]


def test_the_queue_refuses_an_unknown_status(service: Services) -> None:
    with pytest.raises(CorrectionRequestInvalid, match="status must be one of"):
        service.wallet.correction_queue(status="pending")
