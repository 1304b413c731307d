"""`idsvc card wipe` from a machine with no register and no centre, through pcscd and the
virtual card (issue 15): refused without --offline, card untouched and nothing made; with
--offline the card is wiped and a 0600 report is kept for the centre. The decision logic and
the report's way to the centre are tested without pcscd in test_desk_wipe_offline.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli_runner import Cli
from tests.support.pcsc import VirtualCardFactory
from tests.support.settings import SAMPLE_CSV

pytestmark = [pytest.mark.pcsc]

READER0 = "Virtual PCD 00 00"
PERSON = "KH-MCS-010002"


def test_wipe_with_no_register_needs_offline(
    tmp_path: Path, sqlite_url: str, virtual_card: VirtualCardFactory
) -> None:
    centre = Cli(tmp_path / "centre", sqlite_url)
    assert centre("init").returncode == 0
    assert centre("import-hr", str(SAMPLE_CSV)).returncode == 0
    virtual_card()
    issued = centre("issue", PERSON, "--reader", READER0, "--default-management-key", "--json")
    assert issued.returncode == 0, issued.stderr
    credential_id = json.loads(issued.stdout)["credential_id"]

    home = tmp_path / "elsewhere"
    home.mkdir()
    elsewhere = Cli(home, f"sqlite:///{home / 'idsvc.sqlite3'}")
    refused = elsewhere("card", "wipe", "--reader", READER0, "--default-management-key")
    assert refused.returncode == 26 and "--offline" in refused.stderr
    assert list(home.iterdir()) == []
    assert centre("card", "read", "--reader", READER0).returncode == 0  # still on the card

    wiped = elsewhere("card", "wipe", "--reader", READER0, "--default-management-key", "--offline")
    assert wiped.returncode == 0, wiped.stderr
    assert "wiped: credential" in wiped.stdout and credential_id in wiped.stdout
    assert "stays live" in wiped.stdout
    kept = home / "desk" / "pending-wipes.json"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert json.loads(kept.read_text())[0]["credential_id"] == credential_id
    assert not (home / "idsvc.sqlite3").exists()
    r = centre("credentials", PERSON, "--json")
    assert [c["state"] for c in json.loads(r.stdout)] == ["live"]  # until reported and revoked
