"""The printed card: front and back of an ISO/IEC 7810 ID-1 card, and A4 sheets of them.

Pure drawing: a ``CardFaceData`` value in (fields, photo bytes, QR text), Pillow images out; no
database, no clock, no environment. Sizes are in millimetres and turned into dots at the chosen
resolution (300 dpi or more), so the same layout prints on a card printer or an office printer.

Front: header with the issuer, the photo (35:45), the name in the national script (shaped, see
``cardio.fonts``), the Latin name, ministry, position, employee id and expiry. A Lao (``LA-``)
or Khmer (``KH-``) employee's card is bilingual, as both governments' cards are: labels and
title in the national language with English beneath, and the issuer, ministry and position
also in the national script when ``CardFaceData`` has them (``NATIONAL``). Back: the QR code
as large as fits (whole dots per module, at least 0.25 mm, quiet zone 4 modules), the card
serial, the issuer and its address, "scan to verify". Every text is shrunk a little or wrapped
to two lines to fit its place, never cut (``cardio.card_text``); the holder's photo is opened
by the one rule for images (``cardio.images``).

Output: ``save_png`` (front above back, one file, dpi recorded), ``save_pdf`` (two pages of card
size: front, back, as duplex card printers take them), ``sheet_pages`` (A4 pages with cut marks:
fronts on one page, backs on the next mirrored left-right so that long-edge duplex printing
puts each back behind its front).

Errors: ``cardio.errors.ScriptNotShapeable``, ``cardio.errors.QrTooLarge``,
``cardio.card_text.TextDoesNotFit`` (naming the field), ``cardio.images.ImageRefused``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw

from cardio import qr
from cardio.card_text import TextDoesNotFit, fit_lines
from cardio.fonts import FontBook, script_of
from cardio.images import ImageRule, open_image

CARD_MM = (85.60, 53.98)
A4_MM = (210.0, 297.0)
MIN_DPI = 300
INK = (20, 24, 32)
MUTED = (84, 92, 110)
BAND = (24, 58, 104)
WHITE = (255, 255, 255)
PHOTO_MM = (22.0, 28.29)  # 35:45, as the stored photo


@dataclass(frozen=True)
class BatchItem:
    """One id of a batch: its face, or why it was not printed."""

    employee_id: str
    face: CardFace | None
    refused: str | None


@dataclass(frozen=True)
class CardFaceData:
    """What a card shows. ``qr_text`` is the Claim 169 text (base45) printed as the QR.
    ``*_local``: the same in the national script, when the register or settings have it."""

    employee_id: str
    name_local: str
    name_latin: str
    ministry: str
    position: str
    expires: date
    issuer_name: str
    issuer_uri: str
    card_serial: str
    qr_text: str
    photo_jpeg: bytes
    ministry_local: str | None = None
    position_local: str | None = None
    issuer_name_local: str | None = None


@dataclass(frozen=True)
class CardFace:
    front: Image.Image
    back: Image.Image
    dpi: int
    qr_version: int
    qr_module_mm: float


@dataclass(frozen=True)
class Labels:
    """A card's words in one language; ``script`` is the script its texts must be in."""

    script: str
    title: str
    name: str
    ministry: str
    position: str
    employee_id: str
    expires: str


ENGLISH = Labels("Latin", "CIVIL SERVANT IDENTITY CARD", "Name", "Ministry", "Position",
                 "Employee ID", "Expires")  # fmt: skip
# The national language of the card, from the employee id's country code (the register's
# EMPLOYEE_ID_PATTERN starts with it): a Lao ministry's card is in Lao whatever the script of
# the holder's name. The words match the verifier page's (mobile_api/static/verify/i18n.js);
# the ministries' own staff should review both before a national roll-out.
NATIONAL = {
    "LA": Labels("Lao", "ບັດປະຈຳຕົວລັດຖະກອນ", "ຊື່", "ກະຊວງ", "ຕຳແໜ່ງ", "ລະຫັດລັດຖະກອນ", "ໝົດອາຍຸ"),
    "KH": Labels("Khmer", "អត្តសញ្ញាណប័ណ្ណមន្ត្រីរាជការ", "ឈ្មោះ", "ក្រសួង", "មុខតំណែង",
                 "អត្តលេខមន្ត្រី", "ផុតកំណត់"),
}  # fmt: skip
# The holder's photo on the card: JPEG made by idsvc.register.photos (here, or at the centre for a
# remote desk, which sends it over the network), opened by the one rule for images.
FACE_RULE = ImageRule("card photo", max_bytes=2 * 1024 * 1024, max_pixels=4_000_000,
                      formats=("JPEG",))  # fmt: skip


def national_labels(employee_id: str) -> Labels | None:
    return NATIONAL.get(employee_id[:2])


def _in_script(national: Labels | None, text: str | None) -> str | None:
    """A national-script text, shown only on a card of that script: a deployment's settings
    (the issuer's local name) may be in the other country's."""
    if national is None or not text or script_of(text) != national.script:
        return None
    return text


def _both(national_text: str | None, english: str, field: str) -> list[_Text]:
    """A value in the national script above its English, smaller when both are shown."""
    if not national_text:
        return [_Text(english, 2.2, field)]
    return [_Text(national_text, 2.2, f"{field} (national script)"), _Text(english, 1.9, field)]


def _words(national: Labels | None, label: str) -> tuple[str, str | None]:
    """A label in English and, on a national card, in the national language."""
    english: str = getattr(ENGLISH, label)
    return english, (getattr(national, label) if national else None)


class Layout:
    """Millimetres to dots at one resolution."""

    def __init__(self, dpi: int) -> None:
        if dpi < MIN_DPI:
            raise ValueError(f"card faces are drawn at {MIN_DPI} dpi or more, not {dpi}")
        self.dpi = dpi

    def px(self, mm: float) -> int:
        return round(mm * self.dpi / qr.MM_PER_INCH)

    def mm(self, px: float) -> float:
        return px * qr.MM_PER_INCH / self.dpi

    def size(self, mm: tuple[float, float]) -> tuple[int, int]:
        return self.px(mm[0]), self.px(mm[1])


@dataclass(frozen=True)
class _Text:
    """One text to place: what, how big (mm), how wide its box (mm), and the field it is
    (named when it does not fit)."""

    text: str
    size: float
    field: str
    fill: tuple[int, int, int] = INK
    bold: bool = False
    max_lines: int = 2


class CardRenderer:
    """Draws card faces; keep one per process (fonts are loaded once)."""

    def __init__(self, fonts: FontBook | None = None, dpi: int = MIN_DPI) -> None:
        self.fonts = fonts or FontBook()
        self.layout = Layout(dpi)
        # Shaping and rasterising a line costs ~1 ms; labels, ministries, positions and the
        # issuer repeat on every card of a batch, so measured and rendered lines are kept.
        self.line = lru_cache(maxsize=4096)(self._line)
        self._width = lru_cache(maxsize=16384)(self._measure)
        self._fit = lru_cache(maxsize=4096)(self._fit_uncached)

    def check_text(self, data: CardFaceData) -> None:
        """Fail before drawing if any text cannot be drawn correctly."""
        for text in (data.name_local, data.name_latin, data.ministry, data.position,
                     data.ministry_local, data.position_local, data.issuer_name_local):  # fmt: skip
            if text:
                self.fonts.font(text, 20)

    def render(self, data: CardFaceData) -> CardFace:
        self.check_text(data)
        symbol = qr.encode(data.qr_text)
        front = self._front(data)
        back, dots = self._back(data, symbol)
        return CardFace(
            front, back, self.layout.dpi, symbol.version, dots * qr.MM_PER_INCH / self.layout.dpi
        )

    # -- front ---------------------------------------------------------------------------------
    def _front(self, data: CardFaceData) -> Image.Image:
        lay = self.layout
        card = Image.new("RGB", lay.size(CARD_MM), WHITE)
        draw = ImageDraw.Draw(card)
        national = national_labels(data.employee_id)

        def local(text: str | None) -> str | None:
            return _in_script(national, text)

        header = [
            _Text(t, size, field, WHITE, bold, max_lines=1)
            for t, size, field, bold in (
                (local(data.issuer_name_local), 2.8, "issuer's local name", True),
                (data.issuer_name, 2.1 if national else 3.0, "issuer's name", True),
                (national.title if national else None, 1.9, "card title", False),
                (ENGLISH.title, 1.6 if national else 2.2, "card title", False),
            )
            if t
        ]
        band = 1.0 + self._stack(None, 4.0, 1.0, header, 77.6) + 0.9
        draw.rectangle((0, 0, card.width, lay.px(band)), fill=BAND)
        self._stack(draw, 4.0, 1.0, header, 77.6)

        # Bottom row, from the card's edge up: employee id under the photo, expiry beside it.
        bottom = [
            (4.0, *_words(national, "employee_id"), data.employee_id),
            (29.5, *_words(national, "expires"), data.expires.isoformat()),
        ]
        # Labels first, values on one line below the taller label block: Lao and Khmer labels
        # differ in height (marks below the line), the values still line up.
        fields = [(x, self._labels(loc, en), [_Text(v, 2.5, en, bold=True)])
                  for x, en, loc, v in bottom]  # fmt: skip
        label_h = max(self._stack(None, x, 0.0, words, 24.0) for x, words, _ in fields)
        value_h = max(self._stack(None, x, 0.0, value, 24.0) for x, _, value in fields)
        row_top = CARD_MM[1] - 1.4 - label_h - value_h
        for x, words, value in fields:
            self._stack(draw, x, row_top, words, 24.0)
            self._stack(draw, x, row_top + label_h, value, 24.0)

        photo_top = band + 1.6
        photo_box = (lay.px(4), lay.px(photo_top), lay.px(4 + PHOTO_MM[0]),
                     lay.px(photo_top + PHOTO_MM[1]))  # fmt: skip
        face = open_image(data.photo_jpeg, FACE_RULE).convert("RGB")
        face = face.resize(
            (photo_box[2] - photo_box[0], photo_box[3] - photo_box[1]), Image.Resampling.BILINEAR
        )
        card.paste(face, photo_box[:2])
        draw.rectangle(photo_box, outline=MUTED, width=max(1, lay.px(0.15)))

        names = [_Text(data.name_local, 3.6, "name (national script)", bold=True)]
        if data.name_latin != data.name_local:
            names.append(_Text(data.name_latin, 2.5, "name (Latin script)", bold=True))
        rows = [
            (*_words(national, "name"), names),
            (*_words(national, "ministry"),
             _both(local(data.ministry_local), data.ministry, "ministry")),
            (*_words(national, "position"),
             _both(local(data.position_local), data.position, "position")),
        ]  # fmt: skip
        y, limit = band + 1.2, row_top - 0.6
        for english, national_word, values in rows:
            labels = self._labels(national_word, english)
            height = max(self._stack(None, 29.5, y, labels, 12.0),
                         self._stack(None, 42.0, y, values, 40.6))  # fmt: skip
            if y + height > limit:
                field = values[-1].field if values else english.lower()
                raise TextDoesNotFit(
                    f"the card has no room left for the {field}: shorten the longest texts "
                    "(name, ministry, position) in the register"
                )
            self._stack(draw, 29.5, y, labels, 12.0)
            self._stack(draw, 42.0, y, values, 40.6)
            y += height + 0.9
        return card

    def _labels(self, national_word: str | None, english: str) -> list[_Text]:
        words = [_Text(english.upper(), 1.25 if national_word else 1.6, "label", MUTED)]
        if national_word:
            words.insert(0, _Text(national_word, 1.6, "label", MUTED))
        return words

    # -- back ----------------------------------------------------------------------------------
    def _back(self, data: CardFaceData, symbol: qr.QrSymbol) -> tuple[Image.Image, int]:
        lay = self.layout
        card = Image.new("RGB", lay.size(CARD_MM), WHITE)
        draw = ImageDraw.Draw(card)
        room = lay.px(CARD_MM[1] - 2 * 2.5)  # the QR may use the full height but 2.5 mm edges
        dots = max(qr.module_dots(lay.dpi), room // (symbol.modules + 2 * qr.QUIET_ZONE_MODULES))
        code = qr.render(symbol, dots)
        top = (card.height - code.height) // 2
        card.paste(code.convert("RGB"), (lay.px(2.5), top))

        x = lay.mm(lay.px(2.5) + code.width) + 1.5
        width = CARD_MM[0] - x - 3.0
        texts = [
            _Text("Scan to verify", 3.0, "back title", bold=True),
            _Text("any phone, online or offline", 1.8, "back title", MUTED),
        ]
        y = 5.0 + self._stack(draw, x, 5.0, texts, width) + 2.5
        national = national_labels(data.employee_id)
        issuer_local = _in_script(national, data.issuer_name_local)
        for label, values in (
            ("Card serial", [(data.card_serial, "card serial")]),
            (
                "Issuer",
                [(issuer_local, "issuer's local name"), (data.issuer_name, "issuer's name")],
            ),
            ("Verify keys at", [(data.issuer_uri, "issuer's URL (IDSVC_ISSUER)")]),
        ):
            texts = [_Text(label.upper(), 1.6, "label", MUTED)]
            texts += [_Text(value, 2.2, field) for value, field in values if value]
            y += self._stack(draw, x, y, texts, width) + 1.0
        found = [_Text(f"If found, return to {data.issuer_name}.", 1.7, "issuer's name", MUTED)]
        self._stack(draw, x, max(y, 45.0), found, width)
        return card, dots

    # -- text ----------------------------------------------------------------------------------
    def _stack(self, draw: ImageDraw.ImageDraw | None, x: float, y: float,
               texts: Sequence[_Text], width: float) -> float:  # fmt: skip
        """Draw ``texts`` one under the other from (x, y) mm (measure only when ``draw`` is
        None); returns the height used in mm. Each text is shrunk or wrapped to fit
        ``width`` mm, or refused naming its field (``TextDoesNotFit``)."""
        lay = self.layout
        top = y
        for item in texts:
            try:
                lines, size = self._fit(item.text, lay.px(item.size), lay.px(width),
                                        item.bold, item.max_lines)  # fmt: skip
            except TextDoesNotFit as exc:
                raise TextDoesNotFit(f"the {item.field} {exc}: shorten it") from None
            for text in lines:
                mask, dx, dy = self.line(text, size, item.bold)
                # Lao and Khmer marks reach above and below a Latin line: each line takes the
                # height its ink needs, so stacked and subscript marks never touch the next.
                above = max(0, -dy)
                if draw is not None:
                    at = (lay.px(x) + dx, lay.px(y) + above + dy)
                    draw.bitmap(at, mask, fill=item.fill)
                y += lay.mm(above + max(size * 1.25, dy + mask.height + size * 0.08))
        return y - top

    def _measure(self, text: str, size: int, bold: bool) -> float:
        return float(self.fonts.font(text, size, bold=bold).getlength(text))

    def _fit_uncached(
        self, text: str, size: int, limit: int, bold: bool, max_lines: int
    ) -> tuple[Sequence[str], int]:
        return fit_lines(
            text, size, limit, max_lines=max_lines, width=lambda t, s: self._width(t, s, bold)
        )

    def _line(self, text: str, size: int, bold: bool) -> tuple[Image.Image, int, int]:
        """One line of text as an ink mask and its offset from the drawing point (left, top
        of the ascender line); ``line`` is this, cached."""
        font = self.fonts.font(text, size, bold=bold)
        # raqm picks language-specific shaping rules from ``language``; basic layout has none.
        language = self.fonts.language(text) if self.fonts.complex_layout else None
        box = font.getbbox(text, language=language)
        left, top = math.floor(box[0]), math.floor(box[1])
        right, bottom = math.ceil(box[2]), math.ceil(box[3])
        mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
        ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255, language=language)
        return mask, left, top


def both_sides(face: CardFace, gap_mm: float = 3.0) -> Image.Image:
    """Front above back, on white: the PNG a desk looks at or sends to a card printer driver."""
    gap = round(gap_mm * face.dpi / qr.MM_PER_INCH)
    sheet = Image.new("RGB", (face.front.width, face.front.height * 2 + gap), WHITE)
    sheet.paste(face.front, (0, 0))
    sheet.paste(face.back, (0, face.front.height + gap))
    return sheet


def save_png(face: CardFace, path: Path | io.BytesIO) -> None:
    # compress_level 1: ~60 % of the default level's CPU time for a ~20 % larger file (measured)
    both_sides(face).save(path, "PNG", dpi=(face.dpi, face.dpi), compress_level=1)


def _pdf_options(page: Image.Image, page_mm: tuple[float, float]) -> dict[str, object]:
    # The resolution per axis that makes the page exactly ``page_mm``: whole dots round the
    # card's 53.98 mm to 54.02 mm at 300 dpi, and a printer scales by the page size.
    # Pillow embeds RGB pages as JPEG: quality 95 without chroma subsampling keeps module edges
    # sharp enough for decoders (checked by the tests on the rasterised PDF).
    return {
        "dpi": (
            page.width * qr.MM_PER_INCH / page_mm[0],
            page.height * qr.MM_PER_INCH / page_mm[1],
        ),
        "quality": 95,
        "subsampling": 0,
    }


def save_pdf(face: CardFace, path: Path | io.BytesIO) -> None:
    """Two pages of card size (front, back) at the face's resolution."""
    face.front.save(
        path, "PDF", save_all=True, append_images=[face.back], **_pdf_options(face.front, CARD_MM)
    )


# -- A4 sheets ---------------------------------------------------------------------------------
SHEET_COLUMNS = 2
SHEET_ROWS = 4
SHEET_GAP_MM = 6.0
CUT_MARK_MM = 5.0
CARDS_PER_SHEET = SHEET_COLUMNS * SHEET_ROWS


def _slots(lay: Layout) -> list[tuple[int, int]]:
    """Top-left corner of each card on an A4 page, row by row, grid centred."""
    grid_w = SHEET_COLUMNS * CARD_MM[0] + (SHEET_COLUMNS - 1) * SHEET_GAP_MM
    grid_h = SHEET_ROWS * CARD_MM[1] + (SHEET_ROWS - 1) * SHEET_GAP_MM
    left, top = (A4_MM[0] - grid_w) / 2, (A4_MM[1] - grid_h) / 2
    return [
        (
            lay.px(left + col * (CARD_MM[0] + SHEET_GAP_MM)),
            lay.px(top + row * (CARD_MM[1] + SHEET_GAP_MM)),
        )
        for row in range(SHEET_ROWS)
        for col in range(SHEET_COLUMNS)
    ]


def _cut_marks(page: Image.Image, lay: Layout, corners: Iterable[tuple[int, int]]) -> None:
    """Short lines just outside each card corner, along its edges: cut along them."""
    draw = ImageDraw.Draw(page)
    w, h = lay.size(CARD_MM)
    gap, mark, thick = lay.px(1.0), lay.px(CUT_MARK_MM / 2), max(1, lay.px(0.2))
    for x, y in corners:
        for cx, cy, dx, dy in ((x, y, -1, -1), (x + w, y, 1, -1), (x, y + h, -1, 1),
                               (x + w, y + h, 1, 1)):  # fmt: skip
            draw.line((cx + dx * gap, cy, cx + dx * (gap + mark), cy), fill=INK, width=thick)
            draw.line((cx, cy + dy * gap, cx, cy + dy * (gap + mark)), fill=INK, width=thick)


def sheet_pages(faces: Sequence[CardFace]) -> list[Image.Image]:
    """A4 pages: for each group of ``CARDS_PER_SHEET`` faces, a page of fronts and a page of
    backs in mirrored columns (long-edge duplex)."""
    if not faces:
        return []
    lay = Layout(faces[0].dpi)
    slots = _slots(lay)
    page_size = lay.size(A4_MM)
    pages: list[Image.Image] = []
    for start in range(0, len(faces), CARDS_PER_SHEET):
        group = faces[start : start + CARDS_PER_SHEET]
        fronts = Image.new("RGB", page_size, WHITE)
        backs = Image.new("RGB", page_size, WHITE)
        for index, face in enumerate(group):
            row, col = divmod(index, SHEET_COLUMNS)
            fronts.paste(face.front, slots[index])
            backs.paste(face.back, slots[row * SHEET_COLUMNS + (SHEET_COLUMNS - 1 - col)])
        corners = slots[: len(group)]
        mirrored = [
            slots[(i // SHEET_COLUMNS) * SHEET_COLUMNS + SHEET_COLUMNS - 1 - i % SHEET_COLUMNS]
            for i in range(len(group))
        ]
        _cut_marks(fronts, lay, corners)
        _cut_marks(backs, lay, mirrored)
        pages += [fronts, backs]
    return pages


class SheetWriter:
    """Writes A4 sheets to a PDF as faces arrive, one group of ``CARDS_PER_SHEET`` at a time,
    so a batch of thousands of cards never holds more than one sheet in memory."""

    def __init__(self, path: Path, dpi: int) -> None:
        self.path = path
        self.dpi = dpi
        self.pages = 0
        self._group: list[CardFace] = []

    def add(self, face: CardFace) -> None:
        self._group.append(face)
        if len(self._group) == CARDS_PER_SHEET:
            self._flush()

    def close(self) -> None:
        if self._group:
            self._flush()

    def _flush(self) -> None:
        pages = sheet_pages(self._group)
        self._group = []
        first, *rest = pages
        first.save(
            self.path,
            "PDF",
            save_all=True,
            append_images=rest,
            append=self.pages > 0,  # an incremental update: earlier sheets stay on disk
            **_pdf_options(first, A4_MM),
        )
        self.pages += len(pages)
