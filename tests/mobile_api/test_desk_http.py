"""Remote desks over real HTTP on loopback (SQLite and PostgreSQL): enrolment, signed
requests, operator login, and whole card issuances onto the virtual PIV card through the
centre, including dropped links, refusals and retries."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from cardio.virtual import CardState, VirtualCard
from idsvc.desk_client.centre_client import CentreClient
from idsvc.errors import (
    CardIssuanceFailed,
    CentreUnreachable,
    DeskRefused,
    EnrolmentRefused,
    HolderNotEligible,
    LoginRefused,
    NotPermitted,
    SelfApproval,
)
from idsvc.formats.desk_proof import sign_proof
from idsvc.storage.tables import AuditEventRow
from mobile_api.app import create_app
from tests.support.desk_world import EMPLOYEE, Clock, DroppingProxy, World, issue, make_world
from tests.support.http import live_server
from tests.support.operator_people import PASSWORD, People, make_centre
from tests.support.settings import NOW

RETIRED = "LA-MOF-002210"


def test_enrol_login_issue_and_audit(world: World) -> None:
    remote = world.remote()
    with pytest.raises(EnrolmentRefused, match="wrong, used or expired"):
        remote.enrol("AAAAA-BBBBB-CCCCC-DDDDD")
    answer = remote.enrol(world.code.lower())  # codes are read case- and dash-insensitively
    assert answer["name"] == "vte-01" and answer["office"] == "Vientiane"
    with pytest.raises(EnrolmentRefused):
        world.remote(home=world.desk_home.parent / "desk2").enrol(world.code)  # one use only
    folder = world.desk_home / "desk"
    assert (folder / "desk-key.pem").stat().st_mode & 0o777 == 0o600

    with pytest.raises(LoginRefused):
        remote.login("somphone", "wrong password!", "123456")
    world.login(remote, "somphone")
    assert (folder / "session.json").stat().st_mode & 0o777 == 0o600

    credential_id = issue(world, remote, VirtualCard(CardState.blank(serial=1)))
    assert world.states() == ["live"]
    assert world.centre.credentials.credential(credential_id).state == "live"
    # Confirm again (a desk that lost the answer): the same answer, nothing changes.
    again = remote.confirm_issuance(credential_id, actor="", now=world.clock())
    assert again["state"] == "live" and "token" not in again

    with world.centre.infra.db.transaction() as session:
        actors = {
            e.action: e.actor
            for e in session.execute(select(AuditEventRow)).scalars()
            if e.action.startswith("credential.")
        }
    assert actors["credential.begin"] == "somphone@vte-01"
    assert actors["credential.issue"] == "somphone@vte-01"
    # The desk's folder: its own key, the CA (public), config and session; nothing else.
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["desk-key.pem", "desk.json", "issuer-ca.pem", "session.json"]
    everything = b"".join(p.read_bytes() for p in world.desk_home.rglob("*") if p.is_file())
    assert everything.count(b"PRIVATE KEY-----") == 2  # BEGIN and END of the desk key only
    assert b"SQLite format" not in everything


def test_refusals_role_office_eligibility_disabled_desk(world: World, tmp_path: Path) -> None:
    remote = world.remote()
    remote.enrol(world.code)
    with pytest.raises(NotPermitted, match="own office"):
        world.login(remote, "dara")
    world.login(remote, "khamla")  # a supervisor may sign in, but not issue
    with pytest.raises(NotPermitted, match="may not issue"):
        remote.check_eligible(EMPLOYEE)
    world.login(remote, "somphone")
    card = VirtualCard(CardState.blank(serial=2))
    with pytest.raises(HolderNotEligible):
        issue(world, remote, card, RETIRED)
    assert card.commands == 0  # refused before the card was touched
    world.desks.set_desk_enabled("vte-01", enabled=False, by=None, now=world.clock())
    with pytest.raises(DeskRefused, match="disabled"):
        remote.check_eligible(EMPLOYEE)
    world.desks.set_desk_enabled("vte-01", enabled=True, by=None, now=world.clock())
    with pytest.raises(Exception, match="log in again"):  # disabling ended the session
        remote.check_eligible(EMPLOYEE)
    stranger = world.remote(home=tmp_path / "stranger")
    key = stranger.identity.key_path  # a key the centre never enrolled
    key.parent.mkdir(parents=True)
    key.write_bytes(stranger.identity.new_key().pem())
    key.chmod(0o600)
    with pytest.raises(DeskRefused, match="not enrolled"):
        stranger.login("somphone", PASSWORD, "123456")


def test_proofs_are_bound_to_request_and_used_once(world: World) -> None:
    remote = world.remote()
    remote.enrol(world.code)
    signer = remote.identity.signer()
    body = json.dumps({"employee_id": EMPLOYEE}).encode()

    def post(path: str, data: bytes, proof: str) -> httpx.Response:
        return httpx.post(
            world.url + path,
            content=data,
            headers={"Desk-Proof": proof, "Content-Type": "application/json", "Desk-Session": "x"},
        )

    def proof(path: str, data: bytes, jti: str, at: datetime | None = None) -> str:
        return sign_proof(
            signer, method="POST", path=path, body=data, now=at or world.clock(), jti=jti
        )

    path = "/v1/desk/eligibility"
    first = post(path, body, proof(path, body, "a" * 20))
    assert first.status_code == 401 and first.json()["code"] == "SESSION_INVALID"
    replay = post(path, body, proof(path, body, "a" * 20))
    assert replay.json()["code"] == "DESK_REQUEST_INVALID" and "replayed" in replay.json()["detail"]
    other_body = post(path, b'{"employee_id":"X"}', proof(path, body, "b" * 20))
    assert "body" in other_body.json()["detail"]
    other_path = post(path, body, proof("/v1/desk/issuances", body, "c" * 20))
    assert "another request" in other_path.json()["detail"]
    stale = post(path, body, proof(path, body, "d" * 20, world.clock() - timedelta(minutes=5)))
    assert "stale" in stale.json()["detail"]
    missing = httpx.post(
        world.url + path,
        content=body,
        headers={"Desk-Session": "x", "Content-Type": "application/json"},
    )
    assert missing.status_code == 401 and "missing" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("step", "backend"),
    [
        ("eligibility", "sqlite"),
        ("issuances", "sqlite"),
        ("confirmation-request", "sqlite"),
        # The lost answer to a confirm is where idempotency matters: both databases.
        ("confirmation-answer", "sqlite"),
        ("confirmation-answer", "postgresql"),
    ],
)
def test_link_cut_at_each_step_then_retry(
    tmp_path: Path, request: pytest.FixtureRequest, step: str, backend: str
) -> None:
    db_url = (
        f"sqlite:///{tmp_path / 'idsvc.sqlite3'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_db"))
    )
    with make_world(tmp_path, db_url) as world:
        _cut_and_retry(world, step)


def _cut_and_retry(world: World, step: str) -> None:
    proxy = DroppingProxy(world.url)
    try:
        remote = world.remote(url=proxy.url)
        remote.enrol(world.code)
        world.login(remote, "somphone")
        proxy.cut, _, proxy.when = step.partition("-")
        proxy.when = proxy.when or "request"
        card = VirtualCard(CardState.blank(serial=3))
        with pytest.raises(CentreUnreachable, match="Nothing went live"):
            issue(world, remote, card)
        states = world.states()
        if step == "confirmation-answer":
            assert states == ["live"]  # the centre confirmed; only the answer was lost
        else:
            assert "live" not in states
        proxy.cut = "\x00"
        pending = remote.identity.pending()
        if step.startswith("confirmation"):
            # The card is finished: `desk retry` re-sends the (idempotent) confirm.
            assert pending is not None and pending["stage"] == "confirming"
            remote.confirm_issuance(pending["credential_id"], actor="", now=world.clock())
            assert world.states() == ["live"]
        else:
            if pending is not None:  # begun at the centre, card unfinished: abandon, restart
                remote.abandon_issuance(
                    pending["credential_id"], reason="x", actor="", now=world.clock()
                )
            issue(world, remote, card)
            assert world.states().count("live") == 1
        assert remote.identity.pending() is None
    finally:
        proxy.close()


def test_card_pulled_mid_write_abandons_at_the_centre(world: World) -> None:
    remote = world.remote()
    remote.enrol(world.code)
    world.login(remote, "somphone")
    card = VirtualCard(CardState.blank(serial=4), fail_after=12)
    with pytest.raises(CardIssuanceFailed, match="nothing was made live"):
        issue(world, remote, card)
    assert world.states() == ["abandoned"]
    card.fail_after = None
    issue(world, remote, card)
    assert world.states() == ["abandoned", "live"]


def test_reissue_after_loss_needs_approval_from_a_desk(tmp_path: Path, db_url: str) -> None:
    centre = make_centre(tmp_path / "c", db_url, approval_required="reissue_after_loss")
    people = People(centre)
    people.add("somphone", "issuer")
    people.add("khamla", "supervisor")
    desks = centre.desks
    _, enrol_code = desks.add_desk("vte-02", office="Vientiane", by=None, now=NOW)
    clock = Clock()
    with live_server(create_app(centre, clock=clock)) as url:
        w = World(centre, desks, people, clock, url, enrol_code, tmp_path / "desk")
        remote = w.remote()
        remote.enrol(enrol_code)
        w.login(remote, "somphone")
        issue(w, remote, VirtualCard(CardState.blank(serial=5)))
        with pytest.raises(NotPermitted, match="re-issue after loss"):
            issue(w, remote, VirtualCard(CardState.blank(serial=6)))
        lost = centre.credentials.declare_lost(
            EMPLOYEE, reason="stolen", by=people.actor("somphone"), now=clock()
        )
        assert not isinstance(lost, str)
        own = f"/v1/desk/approvals/{lost.approval.id}/approval"
        with pytest.raises(SelfApproval, match="second person"):
            remote._call("POST", own, session=remote._session())  # the asker, at the desk
        w.login(remote, "khamla")
        view = remote_approve(remote, lost.approval.id)  # from the desk, over the API
        assert view["state"] == "done" and view["decided_by"] == "khamla"
        w.login(remote, "somphone")
        issue(w, remote, VirtualCard(CardState.blank(serial=6)))
        assert w.states() == ["revoked", "live"]
    centre.infra.db.dispose()


def remote_approve(remote: CentreClient, approval_id: str) -> dict[str, object]:
    listed = remote._call("GET", "/v1/desk/approvals", session=remote._session())
    assert [a["approval_id"] for a in listed] == [approval_id]
    done = remote._call(
        "POST", f"/v1/desk/approvals/{approval_id}/approval", session=remote._session()
    )
    assert isinstance(done, dict)
    return done
