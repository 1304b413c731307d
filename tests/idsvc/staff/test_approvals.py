"""Maker-checker on a real database (SQLite and PostgreSQL): a sensitive action waits, a second
person with the right role approves within the time limit, and the audit names both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from idsvc.errors import (
    ApprovalNotPending,
    CorrectionRefused,
    NotPermitted,
    SelfApproval,
    UnknownApproval,
)
from idsvc.services import Services
from idsvc.staff.approvals import ApprovalView
from idsvc.staff.maker_checker import Pending
from idsvc.storage.tables import AuditEventRow
from tests.support.operator_people import EMPLOYEE, PASSWORD, People, code, make_centre, secret_of
from tests.support.settings import NOW

HELD = "revoke,key_rotation,operator_change,reissue_after_loss,hr_correction"


@pytest.fixture
def pair(tmp_path: Path, db_url: str) -> Iterator[tuple[Services, People]]:
    """The same centre twice: without maker-checker (to create people at the console), and
    with every action held for approval."""
    open_centre = make_centre(tmp_path / "home", db_url)
    people = People(open_centre)
    people.add("root", "admin", "*")  # key rotation and other offices: national
    people.add("somphone", "issuer")
    people.add("bounchanh", "issuer")
    people.add("khamla", "supervisor")
    people.add("chief", "supervisor", "*")
    people.add("vong", "registrar")
    held = make_centre(tmp_path / "home", db_url, fresh=False, approval_required=HELD)
    people.centre = held
    yield held, people
    open_centre.infra.db.dispose()
    held.infra.db.dispose()


def _pending(result: object) -> ApprovalView:
    assert isinstance(result, Pending), result
    return result.approval


def _audit(centre: Services) -> list[AuditEventRow]:
    with centre.infra.db.transaction() as session:
        return list(session.execute(select(AuditEventRow).order_by(AuditEventRow.seq)).scalars())


def test_revocation_waits_for_a_second_person(pair: tuple[Services, People]) -> None:
    centre, people = pair
    credential = centre.credentials.issue(EMPLOYEE, actor="test", now=NOW)
    maker = people.actor("somphone")
    approval = _pending(
        centre.credentials.revoke(credential.id, reason="card lost", by=maker, now=NOW)
    )
    assert approval.state == "pending" and approval.requested_by == "somphone"
    assert centre.credentials.credential(credential.id).state == "live"  # nothing happened yet
    with pytest.raises(SelfApproval, match="second person"):
        centre.staff.approve(approval.id, by=people.actor("somphone"), now=NOW)
    with pytest.raises(NotPermitted, match="supervisor"):
        centre.staff.approve(approval.id, by=people.actor("bounchanh"), now=NOW)
    checker = people.actor("khamla")
    view, once = centre.staff.approve(approval.id, by=checker, now=NOW + timedelta(minutes=5))
    assert view.state == "done" and view.decided_by == "khamla" and once == ""
    assert centre.credentials.credential(credential.id).state == "revoked"
    with pytest.raises(ApprovalNotPending, match="done"):
        centre.staff.approve(approval.id, by=checker, now=NOW + timedelta(minutes=6))
    events = _audit(centre)
    revoke = next(e for e in events if e.action == "credential.revoke")
    assert revoke.actor == "somphone approved by khamla"
    approved = next(e for e in events if e.action == "approval.approve")
    assert approved.details["requested_by"] == "somphone"
    assert approved.details["approved_by"] == "khamla"
    assert centre.audit.verify_chain().events == len(events)


def test_console_cannot_bypass_and_role_is_checked(pair: tuple[Services, People]) -> None:
    centre, people = pair
    credential = centre.credentials.issue(EMPLOYEE, actor="test", now=NOW)
    with pytest.raises(NotPermitted, match="second person"):
        centre.credentials.revoke(credential.id, reason="card lost", by=None, now=NOW)
    with pytest.raises(NotPermitted, match="may not"):
        centre.credentials.revoke(credential.id, reason="x", by=people.actor("vong"), now=NOW)
    with pytest.raises(NotPermitted, match="needs admin"):
        centre.credentials.rotate_key(issuer_slug="default", by=people.actor("somphone"), now=NOW)


def test_expiry_and_rejection(pair: tuple[Services, People]) -> None:
    centre, people = pair
    credential = centre.credentials.issue(EMPLOYEE, actor="test", now=NOW)
    late = _pending(
        centre.credentials.revoke(credential.id, reason="x", by=people.actor("somphone"), now=NOW)
    )
    with pytest.raises(ApprovalNotPending, match="expired"):
        centre.staff.approve(late.id, by=people.actor("khamla"), now=NOW + timedelta(hours=25))
    listed = centre.staff.list_approvals(
        by=people.actor("khamla"), state=None, now=NOW + timedelta(hours=25)
    )
    assert [v.state for v in listed] == ["expired"]
    assert centre.operations.expire_approvals(actor="system", now=NOW + timedelta(hours=25)) == 1
    second = _pending(
        centre.credentials.revoke(credential.id, reason="y", by=people.actor("somphone"), now=NOW)
    )
    with pytest.raises(NotPermitted, match="reason"):
        centre.staff.reject(second.id, by=people.actor("khamla"), reason=" ", now=NOW)
    rejected = centre.staff.reject(
        second.id, by=people.actor("khamla"), reason="card found", now=NOW
    )
    assert rejected.state == "rejected"
    with pytest.raises(ApprovalNotPending):
        centre.staff.approve(second.id, by=people.actor("root"), now=NOW)
    with pytest.raises(UnknownApproval):
        centre.staff.approve("no-such-id", by=people.actor("root"), now=NOW)
    assert centre.credentials.credential(credential.id).state == "live"
    with pytest.raises(NotPermitted, match="supervisor"):
        centre.staff.list_approvals(by=people.actor("somphone"), state=None, now=NOW)


def test_operator_change_and_key_rotation_approved(pair: tuple[Services, People]) -> None:
    centre, people = pair
    add = _pending(
        centre.staff.add_operator(
            "newbie", role="issuer", office="Savannakhet", password=PASSWORD,
            by=people.actor("root"), now=NOW,
        )
    )  # fmt: skip
    assert "password_hash" not in add.params and add.params["office"] == "Savannakhet"
    assert "newbie" not in [v.name for v in centre.staff.list_operators()]
    # Operators of another office and keys are national business: a national supervisor.
    with pytest.raises(NotPermitted, match="national admin"):
        centre.staff.approve(add.id, by=people.actor("khamla"), now=NOW)
    view, uri = centre.staff.approve(add.id, by=people.actor("chief"), now=NOW)
    assert uri.startswith("otpauth://totp/") and view.state == "done"
    secret = secret_of(uri)
    at = NOW + timedelta(hours=1)
    assert (
        centre.staff.login("newbie", PASSWORD, code(secret, at), now=at).actor.office
        == "Savannakhet"
    )
    (old_kid,) = [e.kid for e in centre.credentials.key_entries() if e.purpose == "credential"]
    rotation = _pending(
        centre.credentials.rotate_key(issuer_slug="default", by=people.actor("root"), now=NOW)
    )
    with pytest.raises(NotPermitted, match="national"):
        centre.staff.approve(rotation.id, by=people.actor("khamla"), now=NOW)
    view, _ = centre.staff.approve(rotation.id, by=people.actor("chief"), now=NOW)
    assert "rotated" in (view.outcome or "")
    kids = [e.kid for e in centre.credentials.key_entries() if e.purpose == "credential"]
    assert old_kid in kids and len(kids) == 2


def test_lost_card_and_status_correction(pair: tuple[Services, People]) -> None:
    centre, people = pair
    credential = centre.credentials.issue(EMPLOYEE, actor="test", now=NOW)
    lost = _pending(
        centre.credentials.declare_lost(
            EMPLOYEE, reason="stolen", by=people.actor("somphone"), now=NOW
        )
    )
    centre.staff.approve(lost.id, by=people.actor("khamla"), now=NOW)
    view = centre.credentials.credential(credential.id)
    assert view.state == "revoked" and view.state_reason == "lost: stolen"
    fresh = centre.credentials.issue(EMPLOYEE, actor="test", now=NOW)
    fix = _pending(
        centre.register.correct_status(
            EMPLOYEE,
            status="suspended",
            reason="HR typo in the last export",
            by=people.actor("vong"),
            now=NOW,
        )
    )
    with pytest.raises(CorrectionRefused, match="reason"):
        centre.register.correct_status(
            EMPLOYEE, status="suspended", reason="typo", by=people.actor("vong"), now=NOW
        )
    with pytest.raises(NotPermitted, match="status"):
        centre.register.correct_status(
            EMPLOYEE, status="king", reason="x", by=people.actor("vong"), now=NOW
        )
    done, _ = centre.staff.approve(fix.id, by=people.actor("khamla"), now=NOW)
    assert "suspended" in (done.outcome or "")
    assert centre.credentials.credential(fresh.id).state == "suspended"
