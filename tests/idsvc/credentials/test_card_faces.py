"""Printed cards end to end, on SQLite and PostgreSQL: issue, take a photo, draw the face, read
the QR back from the image with zxing-cpp and zbar (also from a phone photo of a worn card),
and verify what was read with the service. Then the desk commands as an operator runs them."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from cardio.card_face import both_sides, save_png
from idsvc.cli.errors import exit_code_for
from idsvc.credentials.card_faces import CardFaces, read_batch_file
from idsvc.errors import CardFaceFailed, PhotoMissing, UnknownEmployee
from idsvc.register.photos import Photos
from idsvc.services import Services
from idsvc.storage.tables import AuditEventRow
from tests.support.card_print import (
    FACES,
    phone_photo_of_worn_card,
    portrait_bytes,
    zbarimg_texts,
    zxing_texts,
)
from tests.support.cli_runner import Cli
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

HEADER = (
    "employee_id,name_local,name_latin,sex,date_of_birth,ministry,unit,position,grade,category,"
    "status,status_date,hire_date,ministry_local,position_local"
)
EXTRA_HOLDERS = "\n".join(
    [
        HEADER,
        "KH-MCS-020001,ម៉ៅ សុវណ្ណ,Mao Sovann,M,1979-04-02,Ministry of Civil Service,"
        "General Department of Civil Service,Deputy Director,A1,civil_servant,active,"
        "2005-01-03,2005-01-03,ក្រសួងមុខងារសាធារណៈ,អនុប្រធាននាយកដ្ឋាន",
        "LA-MOHA-000901,ເຈົ້າຄຳ ສີ້ວົງ,Chaokham Sivong,M,1980-05-06,Ministry of Home Affairs,"
        "Department of Civil Service Management,Technical Officer,K4,civil_servant,active,"
        "2008-02-01,2008-02-01,ກະຊວງພາຍໃນ,ວິຊາການ",
    ]
)
LONG_POSITION = ("Director of the Department of Civil Service Management " * 5)[:255]
# ສົມພອນ ແກ້ວມະນີ and ព្រុំ សុខា are in the sample register already
PEOPLE = ["LA-MOHA-000101", "KH-MCS-010001", "KH-MCS-020001", "LA-MOHA-000901"]
WORN = {"LA-MOHA-000101", "KH-MCS-020001"}


@pytest.fixture
def desk(service: Services) -> Services:
    service.register.import_hr(EXTRA_HOLDERS.encode(), source_name="extra.csv", actor="hr", now=NOW)
    for person in PEOPLE:
        Photos(service.infra.db).store(person, portrait_bytes(), actor="desk", now=NOW)
        service.credentials.issue(person, actor="desk", now=NOW)
    return service


def test_every_script_prints_scans_and_verifies(desk: Services, tmp_path: Path) -> None:
    faces = CardFaces(desk.infra.db)
    for person in PEOPLE:
        (view,) = [v for v in desk.credentials.credentials_of(person) if v.state == "live"]
        face = faces.render(person, actor="desk-7", now=NOW)
        assert face.qr_version <= 24 and face.qr_module_mm >= 0.25
        png = tmp_path / f"{person}.png"
        save_png(face, png)
        with Image.open(png) as image:
            read = zxing_texts(image)
        assert read == [view.qr_text]
        assert zbarimg_texts(png) == read
        result = desk.verification.verify(read[0], now=NOW)
        assert result.valid, result.reasons
        assert result.holder and result.holder["employee_id"] == person
        if person in WORN:
            # A phone photo of a worn card. Blur sigma 0.8 px at 150 dpi: at 1.0 px zbar (not
            # zxing) sometimes misses version-17 symbols; tests/cardio/test_card_face.py holds a
            # typical version-13 symbol to sigma 1.0 with both decoders.
            worn = tmp_path / f"{person}-phone.jpg"
            worn.write_bytes(
                phone_photo_of_worn_card(both_sides(face), face.dpi, angle=-3.5, blur=0.8)
            )
            with Image.open(worn) as image:
                assert zxing_texts(image) == read
            assert zbarimg_texts(worn) == read
    with desk.infra.db.transaction() as session:
        printed = session.scalars(
            select(AuditEventRow.target_id).where(AuditEventRow.action == "card_face.render")
        ).all()
    assert printed == PEOPLE

    # with the holder's small photo in the QR (Claim 169 field 62): bigger, still scans
    view = desk.credentials.issue("LA-MOHA-000901", actor="desk", now=NOW, qr_photo=True)
    face = faces.render("LA-MOHA-000901", actor="desk-7", now=NOW)
    assert face.qr_version <= 24 and face.qr_module_mm >= 0.25
    png = tmp_path / "with-photo.png"
    save_png(face, png)
    with Image.open(png) as image:
        assert zxing_texts(image) == [view.qr_text]
    assert zbarimg_texts(png) == [view.qr_text]
    assert desk.verification.verify(str(view.qr_text), now=NOW).valid


def test_what_must_not_be_printed_is_refused_and_a_batch_goes_on(desk: Services) -> None:
    faces = CardFaces(desk.infra.db)
    with pytest.raises(UnknownEmployee):
        faces.render("XX-NOBODY-1", actor="desk", now=NOW)
    with pytest.raises(CardFaceFailed, match="no live credential") as failed:
        faces.render("KH-MCS-010002", actor="desk", now=NOW)  # never issued
    assert exit_code_for(failed.value)[0] == 20
    (view,) = [v for v in desk.credentials.credentials_of("KH-MCS-020001") if v.state == "live"]
    with pytest.raises(CardFaceFailed, match="expired on"):
        faces.render("KH-MCS-020001", actor="desk", now=view.expires_at + timedelta(seconds=1))
    desk.credentials.change_state(view.id, "suspend", reason="inquiry", actor="admin", now=NOW)
    with pytest.raises(CardFaceFailed, match="suspended"):
        faces.render("KH-MCS-020001", actor="desk", now=NOW)
    desk.credentials.issue("KH-MOEYS-220931", actor="desk", now=NOW)
    with pytest.raises(PhotoMissing):
        faces.render("KH-MOEYS-220931", actor="desk", now=NOW)

    # a batch reports and skips what is refused, and prints the rest
    ids = read_batch_file("# desk 7, morning\nLA-MOHA-000101\n\nXX-NOBODY-1\nKH-MCS-010001 \n")
    assert ids == ["LA-MOHA-000101", "XX-NOBODY-1", "KH-MCS-010001"]
    items = list(faces.render_batch(ids + ids[:1], actor="desk", now=NOW))
    assert [(i.employee_id, i.face is not None) for i in items] == [
        ("LA-MOHA-000101", True),
        ("XX-NOBODY-1", False),
        ("KH-MCS-010001", True),
        ("LA-MOHA-000101", True),
    ]
    assert items[1].refused == "no employee 'XX-NOBODY-1' in the register"


def _deployment(sqlite_url: str, tmp_path: Path) -> tuple[Cli, Services]:
    """The CLI and, set up in-process with its settings, an initialised service (each `idsvc`
    process costs ~2 s of imports)."""
    cli = Cli(tmp_path / "home", sqlite_url)
    setup = make_service(
        make_settings(
            cli.home,
            sqlite_url,
            issuer=cli.env["IDSVC_ISSUER"],
            status_list_size=int(cli.env["IDSVC_STATUS_LIST_SIZE"]),
        )
    )
    setup.credentials.init(now=NOW, actor="admin")
    return cli, setup


def test_desk_commands(sqlite_url: str, tmp_path: Path) -> None:
    cli, setup = _deployment(sqlite_url, tmp_path)
    setup.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="hr.csv", actor="hr", now=NOW)
    setup.credentials.issue("KH-MCS-010001", actor="desk", now=datetime.now(UTC))
    setup.infra.db.dispose()
    portrait = tmp_path / "sokha.jpg"
    portrait.write_bytes(portrait_bytes())
    not_a_photo = tmp_path / "notes.txt"
    not_a_photo.write_text("no photo here")

    r = cli("photo", "KH-MCS-010001", str(not_a_photo))
    assert r.returncode == 20 and "not an image" in r.stderr
    r = cli("photo", "KH-MCS-010001", str(FACES / "rocket.jpg"))  # a photo, but of no one
    assert r.returncode == 20 and "no face found: the photo must show" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = cli("photo", "KH-MCS-010001", str(portrait), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["width"] == 420

    card = tmp_path / "card.png"
    r = cli("card-face", "KH-MCS-010001", "-o", str(card))
    assert r.returncode == 0, r.stderr
    assert "QR version" in r.stdout
    (text,) = zbarimg_texts(card)
    r = cli("verify", text, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["holder"]["name"] == "ព្រុំ សុខា"

    batch = tmp_path / "ids.txt"
    batch.write_text("KH-MCS-010001\nXX-NOBODY-1\n")
    sheet = tmp_path / "sheet.pdf"
    r = cli("card-face", "--batch", str(batch), "-o", str(sheet))
    assert r.returncode == 20
    assert "XX-NOBODY-1: no employee" in r.stderr
    assert "1 card(s) on 2 A4 page(s)" in r.stdout and "1 skipped" in r.stdout
    info = subprocess.run(["pdfinfo", str(sheet)], capture_output=True, text=True, check=True)
    assert "Pages:           2" in info.stdout
    assert not list(tmp_path.glob(".*.partial"))


def test_card_face_refuses_what_two_lines_cannot_hold(sqlite_url: str, tmp_path: Path) -> None:
    cli, setup = _deployment(sqlite_url, tmp_path)
    long_one = (
        f"LA-MOHA-000902,ສີວິໄລ ພົມມະວົງ,Sivilay Phommavong,F,1985-01-02,Ministry of Home Affairs,"
        f"Department of Civil Service Management,{LONG_POSITION},K4,civil_servant,active,"
        "2009-02-01,2009-02-01,,"
    )
    setup.register.import_hr(
        f"{EXTRA_HOLDERS}\n{long_one}\n".encode(), source_name="x.csv", actor="hr", now=NOW
    )
    now = datetime.now(UTC)
    for person in ("LA-MOHA-000901", "LA-MOHA-000902"):
        Photos(setup.infra.db).store(person, portrait_bytes(), actor="desk", now=now)
        setup.credentials.issue(person, actor="desk", now=now)
    setup.infra.db.dispose()

    card = tmp_path / "card.png"
    r = cli("card-face", "LA-MOHA-000902", "-o", str(card))
    assert r.returncode == 20, r.stderr
    assert "the position does not fit on the card in 2 lines (255 characters)" in r.stderr
    assert not card.exists() and not list(tmp_path.glob(".*.partial"))

    # the Lao card prints bilingual, with the issuer's Lao name from the settings
    lao_name = {"IDSVC_ISSUER_NAME_LOCAL": "ກະຊວງພາຍໃນ"}
    r = cli("card-face", "LA-MOHA-000901", "-o", str(card), env=lao_name)
    assert r.returncode == 0, r.stderr
    (text,) = zbarimg_texts(card)
    assert cli("verify", text).returncode == 0

    batch = tmp_path / "ids.txt"
    batch.write_text("LA-MOHA-000901\nLA-MOHA-000902\n")
    sheet = tmp_path / "sheet.pdf"
    r = cli("card-face", "--batch", str(batch), "-o", str(sheet), env=lao_name)
    assert r.returncode == 20
    assert "LA-MOHA-000902: the position does not fit" in r.stderr
    assert "1 card(s) on 2 A4 page(s)" in r.stdout and "1 skipped" in r.stdout

    # a local name no card can show is refused at start-up, naming the setting
    for bad in ("Ministry of Home Affairs", "ກະຊວງ\u0007", "ກ" * 65):
        r = cli(
            "card-face", "LA-MOHA-000901", "-o", str(card), env={"IDSVC_ISSUER_NAME_LOCAL": bad}
        )
        assert r.returncode == 3 and "IDSVC_ISSUER_NAME_LOCAL" in r.stderr, r.stderr
