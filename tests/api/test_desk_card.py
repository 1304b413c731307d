"""A remote desk with a reader: `idsvc desk issue --reader` (a separate process, its own data
folder) writes the virtual PIV card through a real pcscd + vpcd, the centre signing over HTTP.
A card pulled mid-way leaves nothing live, and issuing again succeeds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cardio.pcsc import PcscTransport
from cardio.piv import ObjectId, PivSession
from idsvc.desk_centre import DeskCentre
from idsvc.operators import Enrolment
from mobile_api.app import create_app
from tests.api.conftest import live_server
from tests.cli_runner import Cli
from tests.conftest import NOW
from tests.fixtures_pcsc import VirtualCardFactory
from tests.idsvc.operator_people import PASSWORD, code, make_centre, secret_of

pytestmark = [pytest.mark.pcsc]

READER0 = "Virtual PCD 00 00"
EMPLOYEE = "LA-MOHA-000101"


def test_remote_desk_issues_through_pcscd(tmp_path: Path, virtual_card: VirtualCardFactory) -> None:
    centre = make_centre(tmp_path / "centre", f"sqlite:///{tmp_path / 'centre.sqlite3'}")
    added = centre.add_operator(
        "somphone", role="issuer", office="Vientiane", password=PASSWORD, by=None, now=NOW
    )
    assert isinstance(added, Enrolment)
    _, enrol_code = DeskCentre(centre).add_desk(
        "vte-01", office="Vientiane", by=None, now=datetime.now(UTC)
    )
    desk = Cli(tmp_path / "desk", "sqlite:///nowhere-the-desk-has-no-database")
    for name in ("IDSVC_KEY_PASSPHRASE", "IDSVC_DATABASE_URL"):
        desk.env.pop(name)
    with live_server(create_app(centre.service)) as url:
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
        assert [v.state for v in centre.service.credentials_of(EMPLOYEE)] == ["abandoned"]
        pulled.wait_pulled()

        virtual_card(state_file=tmp_path / "card.json")  # the same card, re-inserted
        # On an enrolled desk, the usual command goes to the centre.
        done = desk("issue", EMPLOYEE, "--reader", READER0, "--default-management-key", "--json")
        assert done.returncode == 0, done.stderr
        issued = json.loads(done.stdout)
    views = centre.service.credentials_of(EMPLOYEE)
    assert [v.state for v in views] == ["abandoned", "live"]
    assert views[1].id == issued["credential_id"]
    with PcscTransport.open(READER0) as transport:
        on_card = PivSession(transport).get_object(ObjectId.CREDENTIAL).decode()
    assert on_card == views[1].token
    assert centre.service.verify(on_card, now=datetime.now(UTC)).valid
    centre.service.db.dispose()
