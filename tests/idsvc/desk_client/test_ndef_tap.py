"""The NFC tap URL carries the signed printed QR in its fragment, so a tap verifies offline.

Through the real desk path: `idsvc issue --reader` on the virtual PIV card (pcscd + vpcd),
then the NDEF record is read back with our NDEF reader as a phone would, and the URL is
verified as it stands.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cardio.ndef import NdefSession, parse_uri_message
from cardio.pcsc import PcscTransport
from cardio.virtual.state import NDEF_FILE_SIZE
from idsvc.formats.base45 import ALPHABET
from idsvc.formats.claim169 import printed_text_of
from tests.support.cli_runner import Cli
from tests.support.pcsc import VirtualCardFactory
from tests.support.settings import SAMPLE_CSV

pytestmark = [pytest.mark.pcsc]

READER0 = "Virtual PCD 00 00"
PERSON = "LA-MOHA-000102"  # the longest record of the sample register


def test_tap_url_verifies_offline_from_its_fragment(
    tmp_path: Path, sqlite_url: str, virtual_card: VirtualCardFactory
) -> None:
    desk = Cli(tmp_path / "home", sqlite_url)
    assert desk("init").returncode == 0
    assert desk("import-hr", str(SAMPLE_CSV)).returncode == 0
    virtual_card()
    r = desk("issue", PERSON, "--reader", READER0, "--default-management-key", "--json")
    assert r.returncode == 0, r.stderr
    issued = json.loads(r.stdout)

    with PcscTransport.open(READER0) as transport:
        raw = NdefSession(transport).read_message()
    url = parse_uri_message(raw)
    assert url == issued["verify_url"]
    assert len(raw) + 2 <= NDEF_FILE_SIZE

    parts = urlsplit(url)
    assert parts.path.endswith("/" + issued["credential_id"])
    # Only space and '%' are escaped: every other character is base45 or a legal fragment.
    assert " " not in parts.fragment
    assert set(parts.fragment.replace("%20", "").replace("%25", "")) <= set(ALPHABET)
    assert printed_text_of(url) == issued["qr_text"]

    r = desk("verify", url, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["valid"] and out["credential_id"] == issued["credential_id"]

    assert desk("revoke", issued["credential_id"], "--reason", "card lost").returncode == 0
    r = desk("verify", url, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["reasons"] == ["REVOKED"]
