"""`idsvc card wipe` where there is no register (issue 15): on the in-process virtual card, with
the centre over real HTTP on loopback (SQLite and PostgreSQL), and the real CLI for the refusal.

With no register and no centre to ask, a wipe is refused before the card is touched unless the
operator says `--offline`; then it is wiped, a report is kept (0600) and the centre hears of it
with the machine's next request as a desk. The centre audits it and names the credential that
stays live; it revokes nothing on a desk's word. The same CLI run with pcscd is in
test_desk_wipe_pcsc.py (marked pcsc).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlalchemy import select

from cardio.errors import NotFound
from cardio.piv import Chuid, ManagementKeyType, ObjectId, PivSession
from cardio.transport import Transport
from cardio.virtual import CardState, VirtualCard
from idsvc.cli.card_commands import PIV_TEST_MANAGEMENT_KEY
from idsvc.cli.desk_card_commands import wipe_away_from_register
from idsvc.desk_client.cards import CardSecrets
from idsvc.desk_client.centre_client import CentreClient
from idsvc.desk_client.identity import DeskIdentity
from idsvc.errors import CentreUnreachable, DeskRefused
from idsvc.storage.tables import AuditEventRow
from tests.support.cli_runner import Cli
from tests.support.desk_world import DroppingProxy, World, issue
from tests.support.virtual_card import ReaderTransport

SECRETS = CardSecrets(PIV_TEST_MANAGEMENT_KEY, ManagementKeyType.TDES)


def opener(card: VirtualCard) -> Callable[[], AbstractContextManager[Transport]]:
    return lambda: contextlib.nullcontext(ReaderTransport(card))


def credential_on(card: VirtualCard) -> bytes | None:
    try:
        return PivSession(ReaderTransport(card)).get_object(ObjectId.CREDENTIAL)
    except NotFound:
        return None


def audited(world: World, action: str) -> list[AuditEventRow]:
    with world.centre.infra.db.transaction() as session:
        return list(
            session.execute(select(AuditEventRow).where(AuditEventRow.action == action)).scalars()
        )


def issued_card(world: World, serial: int) -> tuple[VirtualCard, str]:
    remote = world.remote()
    remote.enrol(world.code)
    world.login(remote, "somphone")
    card = VirtualCard(CardState.blank(serial=serial))
    return card, issue(world, remote, card)


def test_no_register_no_centre_refused_then_offline_and_reported(
    world: World, tmp_path: Path
) -> None:
    card, credential_id = issued_card(world, 41)
    chuid = PivSession(ReaderTransport(card)).get_object(ObjectId.CHUID)
    card_uuid = str(Chuid.parse(chuid).guid)
    elsewhere = tmp_path / "elsewhere"  # a machine with no register that is no desk
    commands = card.commands

    with pytest.raises(DeskRefused, match="pass --offline") as refused:
        wipe_away_from_register(
            opener(card), secrets=SECRETS, revoke_reason=None, offline=False, home=elsewhere
        )
    assert "stay live" in str(refused.value)
    assert card.commands == commands and credential_on(card) is not None  # not touched
    assert not elsewhere.exists()

    with pytest.raises(DeskRefused, match="--revoke-reason needs the register"):
        wipe_away_from_register(
            opener(card), secrets=SECRETS, revoke_reason="x", offline=True, home=elsewhere
        )
    assert credential_on(card) is not None

    done = wipe_away_from_register(
        opener(card), secrets=SECRETS, revoke_reason=None, offline=True, home=elsewhere,
        now=world.clock,
    )  # fmt: skip
    assert done.removed[0] == "credential" and credential_on(card) is None
    kept = elsewhere / "desk" / "pending-wipes.json"
    assert kept.stat().st_mode & 0o777 == 0o600
    (report,) = json.loads(kept.read_text())
    assert report["credential_id"] == credential_id and report["card_uuid"] == card_uuid
    assert done.report == report
    assert world.centre.credentials.credential(credential_id).state == "live"
    assert audited(world, "card.wipe_reported") == []

    # Later the machine is enrolled as a desk: enrolment sends nothing, its next request does.
    _, code = world.desks.add_desk("vte-02", office="Vientiane", by=None, now=world.clock())
    notices: list[str] = []
    later = CentreClient(
        DeskIdentity(elsewhere), clock=world.clock, centre_url=world.url, notice=notices.append
    )
    later.enrol(code)
    assert kept.exists()
    world.login(later, "somphone")
    assert not kept.exists()
    (event,) = audited(world, "card.wipe_reported")
    assert event.actor == "desk:vte-02" and event.target_id == card_uuid
    assert event.details["credential_id"] == credential_id
    assert event.details["credential_state"] == "live"
    assert event.details["operator_at_desk"] is None
    # Named for a registrar, not revoked on the desk's word.
    assert world.centre.credentials.credential(credential_id).state == "live"
    (notice,) = notices
    assert credential_id in notice and "still live" in notice and "idsvc revoke" in notice


def test_desk_that_cannot_reach_its_centre(world: World) -> None:
    proxy = DroppingProxy(world.url)
    remote = world.remote(url=proxy.url)
    remote.enrol(world.code)
    world.login(remote, "somphone")
    card = VirtualCard(CardState.blank(serial=42))
    credential_id = issue(world, remote, card)
    proxy.close()  # the link is down

    with pytest.raises(CentreUnreachable, match="pass --offline") as refused:
        wipe_away_from_register(
            opener(card), secrets=SECRETS, revoke_reason=None, offline=False,
            home=world.desk_home, now=world.clock, remote=remote,
        )  # fmt: skip
    assert "was not wiped" in str(refused.value)
    assert credential_on(card) is not None  # read, asked, nothing deleted

    done = wipe_away_from_register(
        opener(card), secrets=SECRETS, revoke_reason=None, offline=True,
        home=world.desk_home, now=world.clock, remote=remote,
    )  # fmt: skip
    assert credential_on(card) is None and done.answer is None
    (report,) = DeskIdentity(world.desk_home).wipe_reports()
    assert report["credential_id"] == credential_id and report["operator"] == "somphone"

    # The link is back: the next request (here, a status check) reports it first.
    back = world.remote()
    back.desk_state()
    assert DeskIdentity(world.desk_home).wipe_reports() == []
    (event,) = audited(world, "card.wipe_reported")
    assert event.actor == "desk:vte-01"
    assert event.details["operator_at_desk"] == "somphone"
    assert event.details["credential_id"] == credential_id


def test_cli_refuses_a_wipe_from_an_empty_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cli = Cli(home, f"sqlite:///{home / 'idsvc.sqlite3'}")
    # No pcscd needed: the refusal comes before any reader is opened.
    r = cli("card", "wipe", "--reader", "Virtual PCD 00 00", "--default-management-key")
    assert r.returncode == 26, r.stderr
    assert "--offline" in r.stderr and "stay live" in r.stderr
    assert sorted(p.name for p in home.rglob("*")) == []  # no database, no report


def test_a_credential_that_is_not_the_cards_is_not_named(world: World) -> None:
    _, credential_id = issued_card(world, 43)
    identity = DeskIdentity(world.desk_home)
    identity.add_wipe_report(
        {"report_id": "6f1c3c9e-4a55-4c55-9d7e-0d5f6c7b8a90", "card_uuid": str(uuid.uuid4()),
         "credential_id": credential_id, "wiped_at": world.clock().isoformat(), "operator": None}
    )  # fmt: skip
    (found,) = world.remote().report_wipes()
    assert found["credential_id"] is None and found["credential_state"] is None
    (event,) = audited(world, "card.wipe_reported")
    assert event.details["read_from_card"] == credential_id
    assert event.details["credential_id"] is None
    assert identity.wipe_reports() == []
