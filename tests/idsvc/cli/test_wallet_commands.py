"""Issue 19: activating a phone credential from the console (``idsvc wallet offer``, the real
console script) and from a remote desk through the centre (``idsvc desk wallet-offer``'s
client and route, over loopback HTTP): the JSON answer, the QR in the terminal and as a PNG
(read back with zxing-cpp), the code read out on its own, the refusals with their reason, and
the desk's role and office rules."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from idsvc.errors import NotPermitted, WalletOfferRefused
from idsvc.register.photos import Photos
from idsvc.storage.tables import AuditEventRow
from tests.support.card_print import portrait_bytes
from tests.support.cli_runner import Cli
from tests.support.desk_world import EMPLOYEE, World
from tests.support.settings import SAMPLE_CSV

PERSON = "KH-MCS-010002"
RETIRED = "LA-MOF-002210"
NO_PHOTO = "LA-MOHA-000101"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    home = tmp_path_factory.mktemp("wallet-cli")
    c = Cli(home / "home", f"sqlite:///{home / 'idsvc.sqlite3'}")
    assert c("init").returncode == 0
    assert c("import-hr", str(SAMPLE_CSV)).returncode == 0
    photo = home / "face.jpg"
    photo.write_bytes(portrait_bytes())
    for person in (PERSON, RETIRED):
        r = c("photo", person, str(photo))
        assert r.returncode == 0, r.stderr
    return c


def test_json_is_exactly_the_offer_and_the_png_holds_it(cli: Cli, tmp_path: Path) -> None:
    png = tmp_path / "offer.png"
    r = cli("wallet", "offer", PERSON, "--json", "-o", str(png))
    assert r.returncode == 0, r.stderr
    offer = json.loads(r.stdout)
    assert set(offer) == {"offer_uri", "tx_code", "expires_at"}
    assert offer["offer_uri"].startswith("openid-credential-offer://?credential_offer=")
    assert offer["tx_code"].isdigit() and len(offer["tx_code"]) == 6
    (read,) = zxingcpp.read_barcodes(Image.open(png))
    assert read.text == offer["offer_uri"]  # the QR holds the offer, never the code
    parsed = json.loads(parse_qs(urlsplit(read.text).query)["credential_offer"][0])
    assert parsed["credential_issuer"] == "http://127.0.0.1:8000"  # IDSVC_PUBLIC_URL's default


def test_the_terminal_shows_the_qr_and_the_code_apart(cli: Cli) -> None:
    r = cli("wallet", "offer", PERSON)
    assert r.returncode == 0, r.stderr
    qr, _, rest = r.stdout.partition("or open: ")
    assert qr.count("▀") > 1000  # a whole symbol with its quiet zone
    uri, _, spoken = rest.partition("\n")
    code = spoken.split("do not show it with the QR: ")[1].split("\n")[0].split()
    assert len(code) == 2 and len("".join(code)) == 6  # "123 456": easier to read out
    assert "".join(code) not in uri and "".join(code) not in qr
    assert "single use, valid until" in r.stdout


def test_refusals_say_why(cli: Cli) -> None:
    r = cli("wallet", "offer", RETIRED)
    assert r.returncode == 5 and "retired" in r.stderr
    r = cli("wallet", "offer", NO_PHOTO, "--json")
    assert r.returncode == 5 and "no photo" in r.stderr and r.stdout == ""


def test_a_desk_issuer_makes_offers_in_its_office(world: World) -> None:
    remote = world.remote()
    remote.enrol(world.code)
    world.login(remote, "somphone")  # an issuer of Vientiane, the desk's office
    with pytest.raises(WalletOfferRefused, match="no photo"):
        remote.wallet_offer(EMPLOYEE)
    Photos(world.centre.infra.db).store(EMPLOYEE, portrait_bytes(), actor="t", now=world.clock())
    offer = remote.wallet_offer(EMPLOYEE)
    assert set(offer) == {"offer_uri", "tx_code", "expires_at"}
    with world.centre.infra.db.transaction() as session:
        (event,) = session.execute(
            select(AuditEventRow).where(AuditEventRow.action == "wallet.offer")
        ).scalars()
    assert (event.actor, event.target_id) == ("somphone@vte-01", EMPLOYEE)
    assert offer["tx_code"] not in json.dumps(event.details)

    world.login(remote, "khamla")  # a supervisor: not the issuer role
    with pytest.raises(NotPermitted, match="make phone credential offers"):
        remote.wallet_offer(EMPLOYEE)
