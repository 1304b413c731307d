"""A remote desk with a reader: `idsvc desk issue --reader` (a separate process, its own data
folder) writes the virtual PIV card through a real pcscd + vpcd, the centre signing over HTTP.
A card pulled mid-way leaves nothing live, and issuing again succeeds. Then the usual card
commands on that desk: `card verify|read`, `card-face`, `card wipe --revoke-reason`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from cardio.pcsc import PcscTransport
from cardio.piv import ObjectId, PivSession
from idsvc.register.photos import Photos
from idsvc.staff.operators import Enrolment
from idsvc.storage.tables import AuditEventRow, CredentialRow
from mobile_api.app import create_app
from tests.support.card_print import portrait_bytes, zbarimg_texts
from tests.support.cli_runner import Cli
from tests.support.http import live_server
from tests.support.operator_people import PASSWORD, code, make_centre, secret_of
from tests.support.pcsc import VirtualCardFactory
from tests.support.settings import NOW

pytestmark = [pytest.mark.pcsc]

READER0 = "Virtual PCD 00 00"
EMPLOYEE = "LA-MOHA-000101"


def test_remote_desk_issues_through_pcscd(
    tmp_path: Path, virtual_card: VirtualCardFactory, attestation_ca: Path
) -> None:
    # The centre takes only card keys the card attests (issue 15); the bench's cards can.
    centre = make_centre(
        tmp_path / "centre",
        f"sqlite:///{tmp_path / 'centre.sqlite3'}",
        attestation_ca_file=attestation_ca / "ca.pem",
    )
    added = centre.staff.add_operator(
        "somphone", role="issuer", office="Vientiane", password=PASSWORD, by=None, now=NOW
    )
    assert isinstance(added, Enrolment)
    _, enrol_code = centre.desks.add_desk(
        "vte-01", office="Vientiane", by=None, now=datetime.now(UTC)
    )
    desk = Cli(tmp_path / "desk", "sqlite:///nowhere-the-desk-has-no-database")
    for name in ("IDSVC_KEY_PASSPHRASE", "IDSVC_DATABASE_URL"):
        desk.env.pop(name)
    with live_server(create_app(centre)) as url:
        assert desk("desk", "enrol", "--centre", url, "--code", enrol_code).returncode == 0
        login = desk(
            "desk", "login", "--operator", "somphone", "--password-stdin",
            "--otp", code(secret_of(added.otpauth_uri), datetime.now(UTC)),
            input=PASSWORD + "\n",
        )  # fmt: skip
        assert login.returncode == 0, login.stderr

        pulled = virtual_card(state_file=tmp_path / "card.json", fail_after=14)
        failed = desk("desk", "issue", EMPLOYEE, "--reader", READER0, "--default-management-key")
        assert failed.returncode in (11, 17), failed.stderr
        assert "retry" in failed.stderr.lower()
        assert [v.state for v in centre.credentials.credentials_of(EMPLOYEE)] == ["abandoned"]
        pulled.wait_pulled()

        virtual_card(state_file=tmp_path / "card.json")  # the same card, re-inserted
        # On an enrolled desk, the usual command goes to the centre.
        done = desk("issue", EMPLOYEE, "--reader", READER0, "--default-management-key", "--json")
        assert done.returncode == 0, done.stderr
        issued = json.loads(done.stdout)
        views = centre.credentials.credentials_of(EMPLOYEE)
        assert [v.state for v in views] == ["abandoned", "live"]
        assert views[1].id == issued["credential_id"]
        with centre.infra.db.transaction() as session:
            row = session.get(CredentialRow, issued["credential_id"])
            assert row is not None and row.key_attestation == "piv-attest"
        with PcscTransport.open(READER0) as transport:
            on_card = PivSession(transport).get_object(ObjectId.CREDENTIAL).decode()
        assert on_card == views[1].token

        # The usual card commands on the enrolled desk: the card here, the register there.
        verified = desk("card", "verify", "--reader", READER0, "--json")
        assert verified.returncode == 0, verified.stderr
        out = json.loads(verified.stdout)
        assert out["valid"] and out["challenge_checked"]
        assert out["credential_id"] == issued["credential_id"]
        assert out["card_uuid"] == issued["card_uuid"]
        read = desk("card", "read", "--reader", READER0, "--json")
        assert read.returncode == 0 and json.loads(read.stdout)["challenge_checked"] is False
        Photos(centre.infra.db).store(
            EMPLOYEE, portrait_bytes(), actor="test", now=datetime.now(UTC)
        )
        face = tmp_path / "face.png"
        assert desk("card-face", EMPLOYEE, "-o", str(face)).returncode == 0
        assert zbarimg_texts(face) == [views[1].qr_text]
        wiped = desk(
            "card", "wipe", "--reader", READER0, "--default-management-key",
            "--revoke-reason", "card damaged",
        )  # fmt: skip
        assert wiped.returncode == 0, wiped.stderr
        assert "revoked" in wiped.stdout and "wiped: credential" in wiped.stdout
        assert centre.credentials.credential(issued["credential_id"]).state == "revoked"
        blank = desk("card", "read", "--reader", READER0)
        assert blank.returncode == 15 and "blank or was wiped" in blank.stderr
    with centre.infra.db.transaction() as session:
        wipe = session.execute(
            select(AuditEventRow).where(AuditEventRow.action == "card.wipe")
        ).scalar_one()
    assert wipe.actor == "somphone@vte-01" and wipe.target_id == issued["card_uuid"]
    centre.infra.db.dispose()
    # After issuing, checking, printing and wiping: the desk's own key, the public CA, its
    # config and the session; no issuer key, no database, no register.
    home = tmp_path / "desk"
    files = sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file())
    assert files == [
        "desk/desk-key.pem",
        "desk/desk.json",
        "desk/issuer-ca.pem",
        "desk/session.json",
    ]
