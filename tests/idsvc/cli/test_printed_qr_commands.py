"""`idsvc issue` / `idsvc verify` with the printed QR, as an operator runs them (real processes).

The QR images for ``verify --image`` are drawn by ``segno``, an encoder independent of ours,
then photographed badly (rotated, blurred, JPEG quality 40) with Pillow.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import segno
from PIL import Image, ImageFilter

from idsvc.cli.errors import exit_code_for
from tests.support.cli_runner import Cli
from tests.support.settings import SAMPLE_CSV

PERSON = "KH-MCS-010002"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    # One deployment for the module: each `idsvc` process costs seconds on a loaded CI box.
    home = tmp_path_factory.mktemp("cli")
    c = Cli(home / "home", f"sqlite:///{home / 'idsvc.sqlite3'}")
    assert c("init").returncode == 0
    assert c("import-hr", str(SAMPLE_CSV)).returncode == 0
    return c


@pytest.fixture(scope="module")
def issued(cli: Cli) -> dict[str, str]:
    r = cli("issue", PERSON, "--json")
    assert r.returncode == 0, r.stderr
    view: dict[str, str] = json.loads(r.stdout)
    assert "printed QR: version" in r.stderr and "(ECC M)" in r.stderr
    size = r.stderr.split("printed QR: version ")[1]
    assert size.startswith(f"{view['qr_version']} (ECC M), {len(view['qr_text'])} bytes")
    return view


def test_verify_detects_the_printed_form(cli: Cli, issued: dict[str, str]) -> None:
    assert 1 <= int(issued["qr_version"]) <= 24
    r = cli("verify", "-", input=issued["qr_text"] + "\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "VALID" in r.stdout and "សុខ ចាន់ថា" in r.stdout
    r = cli("verify", issued["qr_text"][:-1] + "*", "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["reasons"] in (["MALFORMED"], ["BAD_SIGNATURE"])


def test_verify_a_tap_url(cli: Cli, issued: dict[str, str]) -> None:
    from idsvc.formats.claim169 import fragment_of

    url = f"https://id.mof.gov.la/v/x#{fragment_of(issued['qr_text'])}"
    r = cli("verify", url, "--json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["valid"] is True


def _png(text: str, scale: int = 4) -> bytes:
    out = io.BytesIO()
    segno.make(text, error="m", mode="alphanumeric", boost_error=False).save(
        out, kind="png", scale=scale, border=4
    )
    return out.getvalue()


def test_verify_image_png_and_a_bad_phone_photo(
    cli: Cli, issued: dict[str, str], tmp_path: Path
) -> None:
    text = issued["qr_text"]
    png = tmp_path / "scan.png"
    png.write_bytes(_png(text))
    r = cli("verify", "--image", str(png), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["valid"] is True

    photo = Image.open(io.BytesIO(_png(text, scale=6))).convert("L")
    photo = photo.rotate(4, expand=True, fillcolor=255).filter(ImageFilter.GaussianBlur(1.2))
    jpeg = tmp_path / "photo.jpg"
    photo.save(jpeg, "JPEG", quality=40)
    r = cli("verify", "--image", str(jpeg))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "VALID" in r.stdout


def test_verify_image_errors_are_clear(cli: Cli, tmp_path: Path) -> None:
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture")
    blank = tmp_path / "blank.png"
    Image.new("L", (400, 400), 255).save(blank)
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as f:
        f.write(b"\xff\xd8\xff")
        f.truncate(20 * 1024 * 1024 + 1)
    broken = tmp_path / "broken.png"
    broken.write_bytes(_png("HELLO")[:60])
    cases = [
        (not_image, "not an image"),
        (blank, "no QR code found"),
        (huge, "larger than 20 MiB"),
        (broken, "cannot be decoded"),
        (tmp_path / "missing.png", "cannot read"),
    ]
    # The same path the command takes, in-process (each process costs seconds)...
    from idsvc.cli.core_commands import _read_image
    from idsvc.credentials.printed_qr import qr_text_from_image
    from idsvc.errors import QrImageUnreadable

    for path, message in cases:
        with pytest.raises(QrImageUnreadable, match=message) as caught:
            qr_text_from_image(_read_image(path))
        assert exit_code_for(caught.value)[0] == 18
    # ... and one real process for the exit status and message.
    r = cli("verify", "--image", str(blank))
    assert r.returncode == 18 and "no QR code found" in r.stderr, r.stderr
    assert os.path.getsize(huge) > 20 * 1024 * 1024


def test_too_big_for_a_card_exits_18(cli: Cli, tmp_path: Path) -> None:
    import random

    rng = random.Random(5)
    ministry, unit, position = (
        "".join(chr(rng.choice(range(0x1780, 0x17A2))) for _ in range(255)) for _ in range(3)
    )
    header = SAMPLE_CSV.read_text(encoding="utf-8").splitlines()[0].removesuffix(",office")
    csv = tmp_path / "long.csv"
    csv.write_text(
        f"{header}\nKH-MCS-019999,សុខ ចាន់ថា,Sok Chantha,F,1988-02-28,{ministry},{unit},"
        f"{position},B2,civil_servant,active,2012-01-02,2012-01-02\n",
        encoding="utf-8",
    )
    assert cli("import-hr", str(csv)).returncode == 0
    r = cli("issue", "KH-MCS-019999")
    assert r.returncode == 18, r.stderr
    assert "would need QR version" in r.stderr and "at most version 24" in r.stderr
