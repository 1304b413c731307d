"""Long texts on the card: wrapped to two lines (Lao and Khmer at cluster boundaries, each
line shaped on its own), never cut with an ellipsis, refused naming the field when even two
lines at the smallest size cannot hold them. Labels and header bilingual on Lao and Khmer
cards (country from the employee id), English elsewhere."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import pytest
from PIL import Image

from cardio.card_face import (
    CARD_MM,
    NATIONAL,
    CardFaceData,
    CardRenderer,
    national_labels,
)
from cardio.card_text import TextDoesNotFit, cluster_breaks, fit_lines, word_breaks
from cardio.fonts import script_of
from idsvc.register.photos import normalise_photo
from tests.support.card_print import portrait_bytes, qr_text
from tests.support.shaping import coverage, harfbuzz_line

LONG_POSITION = "Deputy Director General, Department of Civil Service Management and Training"
LAO_POSITION = "ຮອງຫົວໜ້າກົມຄຸ້ມຄອງລັດຖະກອນ ແລະ ຝຶກອົບຮົມ ກະຊວງພາຍໃນ ນະຄອນຫຼວງວຽງຈັນ"
KHMER_POSITION = "អនុប្រធាននាយកដ្ឋានគ្រប់គ្រងមន្ត្រីរាជការ និងបណ្តុះបណ្តាល ក្រសួងមុខងារសាធារណៈ"


@pytest.fixture(scope="module")
def renderer() -> CardRenderer:
    return CardRenderer()


@pytest.fixture(scope="module")
def lao() -> CardFaceData:
    return CardFaceData(
        employee_id="LA-MOHA-000101",
        name_local="ສົມພອນ ແກ້ວມະນີ",
        name_latin="Somphone Keomany",
        ministry="Ministry of Home Affairs",
        position="Deputy Director",
        expires=date(2031, 11, 23),
        issuer_name="Ministry of Home Affairs",
        issuer_uri="https://id.moha.gov.la/issuers/default",
        card_serial="7KQ2-M4TZ-9C1D",
        qr_text=qr_text(),
        photo_jpeg=normalise_photo(portrait_bytes()).face_jpeg,
        ministry_local="ກະຊວງພາຍໃນ",
        position_local="ຮອງຫົວໜ້າກົມ",
        issuer_name_local="ກະຊວງພາຍໃນ",
    )


def _fit(renderer: CardRenderer, text: str, size_mm: float, width_mm: float) -> list[str]:
    lay = renderer.layout
    lines, _size = renderer._fit(text, lay.px(size_mm), lay.px(width_mm), False, 2)
    return list(lines)


@pytest.mark.parametrize("text", [LONG_POSITION, LAO_POSITION, KHMER_POSITION])
def test_a_long_text_wraps_to_two_lines_and_loses_nothing(
    renderer: CardRenderer, text: str
) -> None:
    lines = _fit(renderer, text, 2.2, 40.6)
    assert len(lines) == 2 and "…" not in "".join(lines)
    assert "".join(lines).replace(" ", "").replace("\u200b", "") == text.replace(" ", "")
    first, second = lines
    # never a coeng at a line end (it joins the next consonant below), never a Lao vowel
    # written before its consonant, never a combining mark starting a line
    assert not first.endswith("\u17d2")
    assert first[-1] not in "\u0ec0\u0ec1\u0ec2\u0ec3\u0ec4"
    assert not second[0].isspace() and second[0].isprintable()
    assert script_of(second[0]) == script_of(text)


def test_each_wrapped_line_is_shaped_as_harfbuzz_shapes_it(renderer: CardRenderer) -> None:
    for text in (LAO_POSITION, KHMER_POSITION):
        choice = renderer.fonts.choice(script_of(text))
        for line in _fit(renderer, text, 2.2, 40.6):
            reference, glyphs = harfbuzz_line(choice.path, line, choice.language)
            assert 0 not in glyphs
            mask, _dx, _dy = renderer.line(line, 64, False)
            ours = mask.convert("L").point(lambda v: 255 if v >= 128 else 0).convert("1")
            assert coverage(ours, reference) > 0.99 and coverage(reference, ours) > 0.99


def test_break_opportunities() -> None:
    assert word_breaks("Deputy Director, Dept/Unit") == [7, 17, 22]
    # ព្រុំ: PO, COENG, RO, vowel U, nikahit: one cluster, no break inside
    assert cluster_breaks("ព្រុំសុខា") == [5, 7]
    # ເຈົ້າ: pre-base vowel E, then CO with its marks: no break after the pre-base vowel
    assert 1 not in cluster_breaks("ເຈົ້າຄຳ")


def test_what_two_lines_cannot_hold_is_refused_naming_the_field(
    renderer: CardRenderer, lao: CardFaceData
) -> None:
    for field, change in (
        ("position", {"position": ("Director " * 29)[:255]}),  # the register's limit
        ("name (national script)", {"name_local": ("ສົມພອນ " * 37)[:255]}),
        ("position (national script)", {"position_local": ("ຕຳແໜ່ງ" * 43)[:255]}),
        ("name (Latin script)", {"name_latin": ("Somphone Keomany " * 15)[:255]}),
    ):
        pattern = rf"the {re.escape(field)} does not fit on the card in 2 lines \(255 char"
        with pytest.raises(TextDoesNotFit, match=pattern):
            renderer.render(replace(lao, **change))  # type: ignore[arg-type]
    with pytest.raises(TextDoesNotFit, match="one line"):
        fit_lines("x" * 50, 20, 100, max_lines=1, width=lambda t, s: len(t) * s / 2)


def test_lao_and_khmer_cards_are_bilingual(renderer: CardRenderer, lao: CardFaceData) -> None:
    assert national_labels("LA-MOHA-000101") is NATIONAL["LA"]
    assert national_labels("KH-MCS-010001") is NATIONAL["KH"]
    assert national_labels("TH-MOI-000001") is None
    for labels in NATIONAL.values():
        for word in (labels.title, labels.name, labels.ministry, labels.position,
                     labels.employee_id, labels.expires):  # fmt: skip
            assert script_of(word) == labels.script
            renderer.fonts.font(word, 20)  # drawable: no tofu

    bilingual = renderer.render(lao).front
    english = renderer.render(replace(lao, employee_id="XX-MOHA-000101")).front
    plain = renderer.render(replace(lao, ministry_local=None, position_local=None)).front
    assert bilingual.size == english.size == renderer.layout.size(CARD_MM)
    # The national lines are drawn: the Lao card carries ink the English one lacks, and the
    # local ministry and position add ink of their own.
    assert _ink(bilingual) > _ink(plain) > _ink(english)
    # An issuer's local name in the other country's script is left off a Lao card.
    khmer_issuer = replace(lao, issuer_name_local="ក្រសួងមុខងារសាធារណៈ")
    assert _ink(renderer.render(khmer_issuer).front) < _ink(bilingual)


def _ink(image: Image.Image) -> int:
    dark = image.convert("L").point(lambda v: 255 if v < 128 else 0)
    return dark.histogram()[255]
