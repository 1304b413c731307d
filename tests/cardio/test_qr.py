"""cardio.qr: the capacity table agrees with two independent encoders, symbols decode with two
independent decoders (zxing-cpp, zbar), the print rules (ECC M, quiet zone, module size) hold."""

from __future__ import annotations

import io
import random

import pytest
import segno
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pyzbar import pyzbar

from cardio import qr
from cardio.errors import QrTooLarge

QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _text(n: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(BASE45) for _ in range(n))


def _zxing(image: Image.Image) -> list[zxingcpp.Barcode]:
    return list(zxingcpp.read_barcodes(image, formats=QR_ONLY))


def _zbar(image: Image.Image) -> list[str]:
    return [d.data.decode("ascii") for d in pyzbar.decode(image.convert("L"))]


@pytest.mark.parametrize("version", [1, 2, 5, 9, 13, 14, 17, 22, 24, 25, 40])
def test_capacity_table_agrees_with_segno_at_every_boundary(version: int) -> None:
    for alphabet, table in (("A1 /", qr._ALPHANUMERIC_CAPACITY_M), ("ab", qr._BYTE_CAPACITY_M)):
        most = table[version - 1]
        fits = (alphabet * most)[:most]
        assert qr.version_for(fits).version == version
        assert segno.make(fits, error="M", boost_error=False, micro=False).version == version
        if version < 40:
            over = (alphabet * (most + 1))[: most + 1]
            assert qr.version_for(over).version == version + 1
            assert segno.make(over, error="M", boost_error=False, micro=False).version == (
                version + 1
            )


def test_modes_and_payload_bytes() -> None:
    assert qr.version_for("HC1:ABC").mode == "alphanumeric"
    lower = qr.version_for("eyJhbGciOi.x")
    assert lower.mode == "byte" and lower.payload_bytes == 12
    lao = qr.version_for("ສົມພອນ")
    assert lao.mode == "byte" and lao.payload_bytes == len("ສົມພອນ".encode())


@given(
    st.text(alphabet=st.sampled_from([*sorted(qr.ALPHANUMERIC), "a", "_", "\n", "\x00", "ສ", "é"]))
)
def test_alphanumeric_is_exactly_the_qr_alphanumeric_set(text: str) -> None:
    # The mode decides the version printed on every card: one character outside the 45 of
    # ISO/IEC 18004 Table 5 (a lowercase letter, a newline at the end) makes it byte mode.
    assert qr.is_alphanumeric(text) == all(ch in qr.ALPHANUMERIC for ch in text)
    assert not qr.is_alphanumeric(text + "\n")


def test_typical_claim169_length_is_version_13_and_the_card_limit_is_24() -> None:
    assert qr.version_for(_text(450)).version == 13  # 450 base45 chars fit version 13 at ECC M
    assert qr.require_card_size(_text(1326)).version == 24
    with pytest.raises(
        QrTooLarge, match="needs QR version 25; a card face carries at most version 24"
    ):
        qr.require_card_size(_text(1327))
    with pytest.raises(QrTooLarge):
        qr.encode(_text(1500))
    with pytest.raises(QrTooLarge):
        qr.version_for(_text(3392))


@pytest.mark.parametrize("length", [20, 300, 483, 1326])
def test_encoded_symbol_decodes_with_zxing_and_zbar(length: int) -> None:
    text = _text(length, seed=length)
    symbol = qr.encode(text)
    assert symbol.version == qr.version_for(text).version
    assert symbol.modules == 17 + 4 * symbol.version
    image = qr.render(symbol, qr.module_dots(300))
    found = _zxing(image)
    assert [b.text for b in found] == [text]
    assert found[0].ec_level == "M"
    assert found[0].symbology_identifier == "]Q1"  # model 2 QR, no ECI
    assert _zbar(image) == [text]


@pytest.mark.parametrize("dpi", [300, 600, 1200])
def test_modules_are_at_least_a_quarter_millimetre(dpi: int) -> None:
    dots = qr.module_dots(dpi)
    assert dots * 25.4 / dpi >= qr.MIN_MODULE_MM
    assert (dots - 1) * 25.4 / dpi < qr.MIN_MODULE_MM  # and not needlessly large


def test_quiet_zone_is_four_modules_of_white() -> None:
    symbol = qr.encode(_text(100))
    dots = 3
    image = qr.render(symbol, dots)
    assert image.size == ((symbol.modules + 8) * dots,) * 2
    margin = 4 * dots
    side = image.width
    for box in ((0, 0, side, margin), (0, side - margin, side, side), (0, 0, margin, side),
                (side - margin, 0, side, side)):  # fmt: skip
        assert image.crop(box).getextrema() == (255, 255)
    # the finder pattern's corner module starts exactly where the quiet zone ends
    assert image.getpixel((margin, margin)) == 0
    assert image.getpixel((margin - 1, margin - 1)) == 255


def test_rendered_modules_match_an_independent_encoding_when_decoded() -> None:
    # The symbol segno makes for the same text and version holds the same data: both decode
    # to the text, and zxing reads the same version from each (independent encoders agree).
    text = _text(400, seed=3)
    ours = _zxing(qr.render(qr.encode(text), 4))[0]
    theirs_png = segno.make(text, error="M", boost_error=False, micro=False)

    buffer = io.BytesIO()
    theirs_png.save(buffer, kind="png", scale=4, border=4)
    theirs = _zxing(Image.open(buffer))[0]
    assert ours.text == theirs.text == text
    assert qr.encode(text).version == theirs_png.version


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=BASE45, min_size=1, max_size=900))
def test_any_base45_text_round_trips(text: str) -> None:
    image = qr.render(qr.encode(text), 2)
    assert [b.text for b in _zxing(image)] == [text]
