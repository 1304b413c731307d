"""cardio.card_face on images, not strings: ID-1 size, the QR read back by zxing-cpp and zbar
from the PNG and from the rasterised PDF, also after a phone photo of a worn card; A4 sheets
with cut marks and duplex-mirrored backs; texts that cannot be drawn are refused."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from cardio import qr
from cardio.card_face import (
    CARDS_PER_SHEET,
    CardFaceData,
    CardRenderer,
    Layout,
    SheetWriter,
    both_sides,
    save_pdf,
    save_png,
)
from cardio.errors import QrTooLarge, ScriptNotShapeable
from cardio.fonts import FontBook
from idsvc.register.photos import normalise_photo
from tests.support.card_print import (
    QR_ONLY,
    phone_photo_of_worn_card,
    portrait_bytes,
    qr_text,
    zbarimg_texts,
    zxing_texts,
)

NAMES = {
    "lao": ("ສົມພອນ ແກ້ວມະນີ", "Somphone Keomany"),
    "khmer-coeng": ("ព្រុំ សុខា", "Prum Sokha"),
    "khmer-tone": ("ម៉ៅ សុវណ្ណ", "Mao Sovann"),
}


@pytest.fixture(scope="module")
def face_jpeg() -> bytes:
    return normalise_photo(portrait_bytes()).face_jpeg


@pytest.fixture(scope="module")
def renderer() -> CardRenderer:
    return CardRenderer()


def data_for(face_jpeg: bytes, key: str = "lao", text: str | None = None) -> CardFaceData:
    local, latin = NAMES[key]
    return CardFaceData(
        employee_id="LA-MOHA-000101",
        name_local=local,
        name_latin=latin,
        ministry="Ministry of Home Affairs",
        position="Deputy Director, Department of Civil Service Management",
        expires=date(2031, 11, 23),
        issuer_name="Ministry of Home Affairs",
        issuer_uri="https://id.moha.gov.la/issuers/default",
        card_serial="7KQ2-M4TZ-9C1D",
        qr_text=text or qr_text(),
        photo_jpeg=face_jpeg,
    )


@pytest.mark.parametrize(("dpi", "size"), [(300, (1011, 638)), (600, (2022, 1275))])
def test_both_sides_are_id1_size(face_jpeg: bytes, dpi: int, size: tuple[int, int]) -> None:
    face = CardRenderer(dpi=dpi).render(data_for(face_jpeg))
    assert face.front.size == face.back.size == size  # 85.60 x 53.98 mm
    assert face.qr_module_mm >= 0.25
    with pytest.raises(ValueError, match="300 dpi or more"):
        Layout(200)


@pytest.mark.parametrize("key", sorted(NAMES))
def test_qr_decodes_from_the_png_with_zxing_and_zbar(
    renderer: CardRenderer, face_jpeg: bytes, tmp_path: Path, key: str
) -> None:
    data = data_for(face_jpeg, key)
    face = renderer.render(data)
    assert face.qr_version == qr.version_for(data.qr_text).version == 13
    path = tmp_path / "card.png"
    save_png(face, path)
    with Image.open(path) as png:
        assert png.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        assert zxing_texts(png) == [data.qr_text]
    assert zbarimg_texts(path) == [data.qr_text]


@pytest.mark.parametrize(("key", "angle"), [("lao", 4.0), ("khmer-tone", -3.0)])
def test_qr_survives_a_phone_photo_of_a_worn_card(
    renderer: CardRenderer, face_jpeg: bytes, tmp_path: Path, key: str, angle: float
) -> None:
    data = data_for(face_jpeg, key)
    damaged = phone_photo_of_worn_card(both_sides(renderer.render(data)), 300, angle=angle)
    path = tmp_path / "phone.jpg"
    path.write_bytes(damaged)
    with Image.open(path) as photo:
        assert photo.width < 560  # really scaled down to 150 dpi
        assert zxing_texts(photo) == [data.qr_text]
    assert zbarimg_texts(path) == [data.qr_text]


def test_largest_printable_qr_decodes_and_a_larger_one_is_refused(
    renderer: CardRenderer, face_jpeg: bytes, tmp_path: Path
) -> None:
    # Version 24 (the card limit) still gets modules over 0.25 mm and reads from the print;
    # only typical records (version <= 13) are promised to survive the worn-card photo above.
    text = qr_text(1326, seed=9)
    face = renderer.render(data_for(face_jpeg, text=text))
    assert face.qr_version == 24 and face.qr_module_mm >= 0.25
    path = tmp_path / "v24.png"
    face.back.save(path)
    assert zxing_texts(face.back) == [text]
    assert zbarimg_texts(path) == [text]
    with pytest.raises(QrTooLarge):
        renderer.render(data_for(face_jpeg, text=qr_text(1327)))


def _pdftoppm(pdf: Path, dpi: int) -> list[Image.Image]:
    exe = shutil.which("pdftoppm")
    assert exe, "pdftoppm not found: apt-get install poppler-utils"
    subprocess.run([exe, "-r", str(dpi), "-png", str(pdf), str(pdf.with_suffix(""))], check=True)
    pages = sorted(pdf.parent.glob(pdf.stem + "-*.png"))
    return [Image.open(p) for p in pages]


def test_pdf_is_two_card_size_pages_and_the_back_decodes(
    renderer: CardRenderer, face_jpeg: bytes, tmp_path: Path
) -> None:
    data = data_for(face_jpeg, "khmer-coeng")
    pdf = tmp_path / "card.pdf"
    save_pdf(renderer.render(data), pdf)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    assert "Pages:           2" in info.stdout
    size = re.search(r"Page size:\s+([0-9.]+) x ([0-9.]+) pts", info.stdout)
    assert size is not None
    assert float(size[1]) == pytest.approx(85.60 / 25.4 * 72, abs=0.01)  # 85.60 mm in points
    assert float(size[2]) == pytest.approx(53.98 / 25.4 * 72, abs=0.01)  # 53.98 mm
    front, back = _pdftoppm(pdf, 300)
    assert zxing_texts(front) == []
    assert zxing_texts(back) == [data.qr_text]


def test_sheets_hold_eight_cards_with_mirrored_backs_and_cut_marks(
    renderer: CardRenderer, face_jpeg: bytes, tmp_path: Path
) -> None:
    texts = [qr_text(300, seed=i) for i in range(CARDS_PER_SHEET + 2)]
    pdf = tmp_path / "sheet.pdf"
    writer = SheetWriter(pdf, 300)
    for text in texts:
        writer.add(renderer.render(data_for(face_jpeg, text=text)))
    writer.close()
    assert writer.pages == 4  # fronts + backs, twice
    pages = _pdftoppm(pdf, 150)
    assert [p.size for p in pages] == [pages[0].size] * 4
    assert pages[0].size[0] == pytest.approx(1240, abs=1)  # A4 at 150 dpi
    assert pages[0].size[1] == pytest.approx(1754, abs=1)
    backs = zxingcpp.read_barcodes(pages[1], formats=QR_ONLY)
    assert sorted(b.text for b in backs) == sorted(texts[:CARDS_PER_SHEET])
    middle = pages[1].width / 2
    for barcode in backs:
        index = texts.index(barcode.text)
        left_on_front = index % 2 == 0
        on_right = barcode.position.top_left.x > middle
        assert on_right == left_on_front  # mirrored for long-edge duplex
    assert sorted(b.text for b in zxingcpp.read_barcodes(pages[3], formats=QR_ONLY)) == sorted(
        texts[CARDS_PER_SHEET:]
    )
    # cut marks: ink in the white margin beside each card edge, nothing else there
    first = pages[0].convert("L")

    def px(mm: float) -> int:
        return round(mm * 150 / 25.4)

    left, top = px((210 - (2 * 85.60 + 6)) / 2), px((297 - (4 * 53.98 + 3 * 6)) / 2)

    def darkest(x: int, y: int) -> int:
        low, _high = first.crop((x - 2, y - 2, x + 3, y + 3)).getextrema()
        assert isinstance(low, int)
        return low

    assert darkest(left - px(2.5), top) < 180  # horizontal mark left of the top-left corner
    assert darkest(left, top - px(2.5)) < 180  # vertical mark above it
    assert darkest(left - px(2.5), top + px(20)) > 200  # and the margin is otherwise white


def test_text_that_cannot_be_drawn_is_refused(face_jpeg: bytes, tmp_path: Path) -> None:
    renderer = CardRenderer()
    with pytest.raises(ScriptNotShapeable, match=r"cannot draw U\+2603"):
        renderer.render(replace(data_for(face_jpeg), name_latin="Somphone \u2603"))
    with pytest.raises(ScriptNotShapeable, match="no card font for the character U\\+0411"):
        renderer.render(replace(data_for(face_jpeg), name_local="Борис"))
    with pytest.raises(ScriptNotShapeable, match="mixes scripts"):
        renderer.render(replace(data_for(face_jpeg), name_local="ສົມພອນ សុខា"))
    no_fonts = CardRenderer(FontBook([tmp_path]))
    with pytest.raises(ScriptNotShapeable, match="fonts-noto-core"):
        no_fonts.render(data_for(face_jpeg))
    no_raqm = CardRenderer(FontBook(complex_layout=False))
    with pytest.raises(ScriptNotShapeable, match=r"needs complex text layout.*libraqm0"):
        no_raqm.render(data_for(face_jpeg, "khmer-tone"))
