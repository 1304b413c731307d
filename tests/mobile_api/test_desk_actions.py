"""A remote desk does what a local desk does, over real HTTP on loopback (SQLite and
PostgreSQL): check a card against the centre, print its face, wipe it (revoking first), store a
holder's photo, correct an HR status, and ask for revocation or re-issue after loss, with
maker-checker and the operator and desk in the audit chain."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cardio.piv import ManagementKeyType
from cardio.virtual import CardState, VirtualCard
from idsvc.cli.card_commands import PIV_TEST_MANAGEMENT_KEY
from idsvc.desk_client.cards import CardSecrets, inspect_card, wipe_card
from idsvc.desk_client.centre_client import CentreClient
from idsvc.desk_client.identity import desk_check_time
from idsvc.desk_client.printing import RemoteCardFaces
from idsvc.errors import (
    ApprovalNotPending,
    CardFaceFailed,
    CardNotIssued,
    CorrectionRefused,
    HolderNotEligible,
    NotPermitted,
    PhotoRejected,
    SelfApproval,
)
from idsvc.storage.tables import AuditEventRow
from mobile_api.routes.desk_actions import PHOTO_PATH
from tests.support.card_print import FACES, portrait_bytes, zxing_texts
from tests.support.desk_world import EMPLOYEE, World, issue, make_world
from tests.support.virtual_card import ReaderTransport

OTHER = "LA-MOHA-000102"
SECRETS = CardSecrets(PIV_TEST_MANAGEMENT_KEY, ManagementKeyType.TDES)


def _audit(world: World, action: str) -> list[AuditEventRow]:
    with world.centre.infra.db.transaction() as session:
        return list(
            session.execute(
                select(AuditEventRow)
                .where(AuditEventRow.action == action)
                .order_by(AuditEventRow.seq)
            ).scalars()
        )


def _check(world: World, remote: CentreClient, card: VirtualCard, *, challenge: bool):  # type: ignore[no-untyped-def]
    return inspect_card(
        ReaderTransport(card),
        ca_certificates=[remote.identity.ca_certificate()],
        check_token=remote.verify_card,
        now=desk_check_time(world.clock()),
        challenge=challenge,
    )


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    with make_world(tmp_path, db_url) as w:
        w.people.add("vong", "registrar", "Vientiane")
        yield w


def test_photo_check_print_and_wipe_through_the_centre(world: World) -> None:
    remote = world.remote()
    remote.enrol(world.code)
    world.login(remote, "vong")  # a registrar: photos and corrections, not printing
    with pytest.raises(PhotoRejected, match="GIF"):
        remote.store_photo(EMPLOYEE, b"GIF89a" + bytes(64))
    with pytest.raises(PhotoRejected, match="no face found: the photo must show"):
        remote.store_photo(EMPLOYEE, (FACES / "rocket.jpg").read_bytes())  # why, at the desk
    stored = remote.store_photo(EMPLOYEE, portrait_bytes())
    assert (stored["width"], stored["height"]) == (420, 540)
    with pytest.raises(NotPermitted, match="may not print"):
        remote.card_face_data(EMPLOYEE)
    with pytest.raises(CorrectionRefused, match="reason"):
        remote.correct_status(OTHER, status="suspended", reason="typo", status_date=None)
    done = remote.correct_status(
        OTHER, status="suspended", reason="HR typo in the last export", status_date=None
    )
    assert done["state"] == "done" and "active -> suspended" in done["outcome"]

    world.login(remote, "somphone")  # an issuer
    with pytest.raises(NotPermitted, match="may not store photos"):
        remote.store_photo(EMPLOYEE, portrait_bytes())
    with pytest.raises(HolderNotEligible):  # the correction reached the register
        remote.check_eligible(OTHER)
    card = VirtualCard(CardState.blank(serial=21))
    credential_id = issue(world, remote, card)

    read = _check(world, remote, card, challenge=True)
    assert read.result.valid and read.challenge_checked
    assert read.result.credential_id == credential_id
    assert read.result.holder is not None and read.result.holder["employee_id"] == EMPLOYEE

    face = RemoteCardFaces(remote).render(EMPLOYEE, actor="", now=world.clock())
    qr_text = world.centre.credentials.credential(credential_id).qr_text
    assert qr_text and zxing_texts(face.front) + zxing_texts(face.back) == [qr_text]
    (printed,) = _audit(world, "card_face.render")
    assert printed.actor == "somphone@vte-01" and printed.target_id == EMPLOYEE

    card_uuid = read.card_uuid
    allowed = remote.allow_wipe(
        credential_id=credential_id, card_uuid=card_uuid, revoke_reason="card damaged"
    )
    assert allowed["state"] == "done" and allowed["credential"]["state"] == "revoked"
    assert not _check(world, remote, card, challenge=False).result.valid
    assert "REVOKED" in _check(world, remote, card, challenge=False).result.reasons
    assert wipe_card(ReaderTransport(card), SECRETS)[0] == "credential"
    with pytest.raises(CardNotIssued):
        _check(world, remote, card, challenge=False)
    (wiped,) = _audit(world, "card.wipe")
    assert wiped.actor == "somphone@vte-01" and wiped.target_id == card_uuid
    (revoked,) = _audit(world, "credential.revoke")
    assert revoked.actor == "somphone@vte-01"
    with pytest.raises(CardFaceFailed, match="no live credential"):  # never print a dead card
        remote.card_face_data(EMPLOYEE)
    assert world.centre.audit.verify_chain().events > 0


def test_desk_requests_wait_for_a_second_person(tmp_path: Path, db_url: str) -> None:
    held = "revoke,hr_correction,reissue_after_loss"
    with make_world(tmp_path, db_url, approval_required=held) as world:
        world.people.add("vong", "registrar", "Vientiane")
        live = world.centre.credentials.issue(EMPLOYEE, actor="test", now=world.clock())
        remote = world.remote()
        remote.enrol(world.code)

        world.login(remote, "vong")
        fix = remote.correct_status(
            EMPLOYEE, status="suspended", reason="HR typo in the last export", status_date=None
        )
        assert fix["state"] == "pending_approval"
        fix_id = fix["approval"]["approval_id"]
        assert fix["approval"]["requested_desk"] == "vte-01"
        with pytest.raises(SelfApproval, match="second person"):
            remote.approve(fix_id)
        world.login(remote, "somphone")
        revoke = remote.revoke(live.id, reason="card stolen")
        lost = remote.declare_lost(EMPLOYEE, reason="lost at the market")
        assert revoke["state"] == lost["state"] == "pending_approval"
        assert world.centre.credentials.credential(live.id).state == "live"  # nothing happened yet

        world.login(remote, "khamla")  # the supervisor, at the same desk
        listed = {a["approval_id"] for a in remote.approvals()}
        assert listed == {
            fix_id,
            revoke["approval"]["approval_id"],
            lost["approval"]["approval_id"],
        }
        remote.reject(revoke["approval"]["approval_id"], reason="card found")
        approved = remote.approve(fix_id)
        assert approved["state"] == "done" and approved["decided_by"] == "khamla"
        assert world.centre.credentials.credential(live.id).state == "suspended"
        (change,) = _audit(world, "hr.correct")
        assert change.actor == "vong@vte-01 approved by khamla@vte-01"

        # Nobody decides the loss in time: the sweeper closes it, and it can't be approved.
        world.clock.tick(25 * 3600)
        ops = world.centre.operations
        assert ops.expire_approvals(actor="sweeper", now=world.clock()) == 1
        assert ops.expire_approvals(actor="sweeper", now=world.clock()) == 0
        (lapsed,) = _audit(world, "approval.expire")
        assert lapsed.actor == "sweeper" and lapsed.target_id == lost["approval"]["approval_id"]
        world.login(remote, "khamla")
        with pytest.raises(ApprovalNotPending, match="expired"):
            remote.approve(lost["approval"]["approval_id"])
        assert remote.approvals() == []
        assert world.centre.audit.verify_chain().events > 0


def test_photo_refused_before_anything_is_stored(world: World) -> None:
    remote = world.remote()
    remote.enrol(world.code)
    world.login(remote, "vong")
    with pytest.raises(PhotoRejected, match="base64"):
        remote._call(
            "POST",
            "/v1/desk/photos",
            {"employee_id": EMPLOYEE, "photo": "not base64!"},
            session=remote._session(),
        )
    too_big = b"\xff\xd8\xff" + bytes(11 * 1024 * 1024)
    with pytest.raises(PhotoRejected, match="too large"):  # said at the desk, not uploaded
        remote.store_photo(EMPLOYEE, too_big)
    # The centre's own limit, before it reads the body: 413, whoever sends it.
    host, port = world.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(
            f"POST {PHOTO_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
            f"\r\nContent-Length: {15 * 1024 * 1024}\r\n\r\n".encode()
        )
        assert raw.recv(64).startswith(b"HTTP/1.1 413")
    assert _audit(world, "photo.store") == []
