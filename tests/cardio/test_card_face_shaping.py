"""Shaping is tested, not assumed: the card's name lines must put every glyph where HarfBuzz
(uharfbuzz, an independent binding of the shaping engine) puts it, with no .notdef glyph.

HarfBuzz shapes the name with the same font file the card uses; its glyph outlines are drawn at
the positions it gives (advances and mark offsets) into a reference bitmap. The card's line
bitmap must match it within 2 pixels everywhere. Drawing the same names without shaping
(Pillow's basic layout) must NOT match for the names whose marks stack or whose subscripts
attach, which shows the comparison can fail."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from cardio.card_face import CardRenderer
from cardio.fonts import FontBook, script_of
from tests.support.shaping import SIZE, coverage, harfbuzz_line

NAMES = [
    ("ສົມພອນ ແກ້ວມະນີ", False),  # Lao: vowels above and below, tone mark
    ("ເຈົ້າຄຳ ສີ້ວົງ", True),  # Lao: tone marks stacked on upper vowels
    ("ព្រុំ សុខា", True),  # Khmer: coeng + RO subscript, vowel and nikahit stacked
    ("ម៉ៅ សុវណ្ណ", True),  # Khmer: musikatoan, split vowel, subscript NNO
]


def _binary(mask: Image.Image) -> Image.Image:
    return mask.convert("L").point(lambda v: 255 if v >= 128 else 0).convert("1")


@pytest.fixture(scope="module")
def renderer() -> CardRenderer:
    return CardRenderer()


@pytest.mark.parametrize(("name", "basic_breaks_it"), NAMES)
def test_card_lines_put_glyphs_where_harfbuzz_does(
    renderer: CardRenderer, name: str, basic_breaks_it: bool
) -> None:
    book = renderer.fonts
    choice = book.choice(script_of(name))
    reference, glyphs = harfbuzz_line(choice.path, name, choice.language)
    assert 0 not in glyphs, "HarfBuzz found a .notdef glyph: the font lacks a character"

    line, _dx, _dy = renderer.line(name, SIZE, False)
    ours = _binary(line)
    assert coverage(ours, reference) > 0.99
    assert coverage(reference, ours) > 0.99

    unshaped = Image.new("L", reference.size, 0)
    basic = ImageFont.truetype(str(choice.path), SIZE, layout_engine=ImageFont.Layout.BASIC)
    ImageDraw.Draw(unshaped).text((SIZE, 2 * SIZE), name, font=basic, fill=255, anchor="ls")
    worst = min(coverage(_binary(unshaped), reference), coverage(reference, _binary(unshaped)))
    if basic_breaks_it:
        assert worst < 0.95, "the comparison cannot tell shaped from unshaped text"


def test_the_card_uses_the_raqm_engine_and_noto_fonts(renderer: CardRenderer) -> None:
    assert renderer.fonts.complex_layout, "Pillow without raqm: apt-get install libraqm0"
    assert renderer.fonts.choice("Lao").path.name == "NotoSansLao-Regular.ttf"
    assert renderer.fonts.choice("Khmer", bold=True).path.name == "NotoSansKhmer-Bold.ttf"
    font = FontBook().font("ព្រុំ សុខា", 40)
    assert font.layout_engine == ImageFont.Layout.RAQM
