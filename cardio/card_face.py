"""The printed card: front and back of an ISO/IEC 7810 ID-1 card, and A4 sheets of them.

Pure drawing: a ``CardFaceData`` value in (fields, photo bytes, QR text), Pillow images out; no
database, no clock, no environment. Sizes are in millimetres and turned into dots at the chosen
resolution (300 dpi or more), so the same layout prints on a card printer or an office printer.

Front: header with the issuer, the photo (35:45), the name in the national script (shaped, see
``cardio.fonts``), the Latin name, ministry, position, employee id and expiry. Back: the QR code
as large as fits (whole dots per module, at least 0.25 mm, quiet zone 4 modules), the card
serial, the issuer and its address, "scan to verify".

Output: ``save_png`` (front above back, one file, dpi recorded), ``save_pdf`` (two pages of card
size: front, back, as duplex card printers take them), ``sheet_pages`` (A4 pages with cut marks:
fronts on one page, backs on the next mirrored left-right so that long-edge duplex printing
puts each back behind its front).

Errors: ``cardio.errors.ScriptNotShapeable``, ``cardio.errors.QrTooLarge``.
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
from cardio.fonts import FontBook

CARD_MM = (85.60, 53.98)
A4_MM = (210.0, 297.0)
MIN_DPI = 300
INK = (20, 24, 32)
MUTED = (84, 92, 110)
BAND = (24, 58, 104)
WHITE = (255, 255, 255)
PHOTO_MM = (22.0, 28.29)  # 35:45, as the stored photo


@dataclass(frozen=True)
class CardFaceData:
    """What a card shows. ``qr_text`` is the Claim 169 text (base45) printed as the QR."""

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


@dataclass(frozen=True)
class CardFace:
    front: Image.Image
    back: Image.Image
    dpi: int
    qr_version: int
    qr_module_mm: float


class Layout:
    """Millimetres to dots at one resolution."""

    def __init__(self, dpi: int) -> None:
        if dpi < MIN_DPI:
            raise ValueError(f"card faces are drawn at {MIN_DPI} dpi or more, not {dpi}")
        self.dpi = dpi

    def px(self, mm: float) -> int:
        return round(mm * self.dpi / qr.MM_PER_INCH)

    def size(self, mm: tuple[float, float]) -> tuple[int, int]:
        return self.px(mm[0]), self.px(mm[1])


class CardRenderer:
    """Draws card faces; keep one per process (fonts are loaded once)."""

    def __init__(self, fonts: FontBook | None = None, dpi: int = MIN_DPI) -> None:
        self.fonts = fonts or FontBook()
        self.layout = Layout(dpi)
        self.line = lru_cache(maxsize=4096)(self._line)

    def check_text(self, data: CardFaceData) -> None:
        """Fail before drawing if any text cannot be drawn correctly."""
        for text in (data.name_local, data.name_latin, data.ministry, data.position):
            self.fonts.font(text, 20)

    def render(self, data: CardFaceData) -> CardFace:
        self.check_text(data)
        symbol = qr.encode(data.qr_text)
        back, dots = self._back(data, symbol)
        return CardFace(
            self._front(data),
            back,
            self.layout.dpi,
            symbol.version,
            dots * qr.MM_PER_INCH / self.layout.dpi,
        )

    # -- front ---------------------------------------------------------------------------------
    def _front(self, data: CardFaceData) -> Image.Image:
        lay = self.layout
        card = Image.new("RGB", lay.size(CARD_MM), WHITE)
        draw = ImageDraw.Draw(card)
        draw.rectangle((0, 0, card.width, lay.px(9.5)), fill=BAND)
        self._text(draw, (lay.px(4), lay.px(1.3)), data.issuer_name, 3.0, 78.0, WHITE, bold=True)
        self._text(draw, (lay.px(4), lay.px(5.4)), "CIVIL SERVANT IDENTITY CARD", 2.2, 78.0, WHITE)

        photo_box = (lay.px(4), lay.px(13), lay.px(4 + PHOTO_MM[0]), lay.px(13 + PHOTO_MM[1]))
        with Image.open(io.BytesIO(data.photo_jpeg), formats=["JPEG"]) as photo:
            face = photo.convert("RGB").resize(
                (photo_box[2] - photo_box[0], photo_box[3] - photo_box[1]),
                Image.Resampling.BILINEAR,
            )
        card.paste(face, photo_box[:2])
        draw.rectangle(photo_box, outline=MUTED, width=max(1, lay.px(0.15)))

        x, width = 29.5, 52.5
        y = 12.2
        y += self._text(draw, (lay.px(x), lay.px(y)), data.name_local, 4.4, width, INK, bold=True)
        y += 0.4
        y += self._text(draw, (lay.px(x), lay.px(y)), data.name_latin, 3.2, width, INK, bold=True)
        y += 1.4
        for label, value in (("Ministry", data.ministry), ("Position", data.position)):
            y += self._text(draw, (lay.px(x), lay.px(y)), label.upper(), 1.6, width, MUTED)
            y += self._text(draw, (lay.px(x), lay.px(y)), value, 2.5, width, INK) + 0.6
        self._field(draw, x, 42.0, "Employee ID", data.employee_id, 27.0)
        self._field(draw, x + 28.0, 42.0, "Expires", data.expires.isoformat(), 24.0)
        self._text(
            draw, (lay.px(4), lay.px(49.6)), f"Issued by {data.issuer_name}", 1.7, 78.0, MUTED
        )
        return card

    def _field(self, draw: ImageDraw.ImageDraw, x: float, y: float, label: str, value: str,
               width: float) -> None:  # fmt: skip
        lay = self.layout
        y += self._text(draw, (lay.px(x), lay.px(y)), label.upper(), 1.6, width, MUTED)
        self._text(draw, (lay.px(x), lay.px(y)), value, 2.6, width, INK, bold=True)

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

        x = (lay.px(2.5) + code.width) * qr.MM_PER_INCH / lay.dpi + 1.5
        width = CARD_MM[0] - x - 3.0
        y = 5.0
        y += self._text(draw, (lay.px(x), lay.px(y)), "Scan to verify", 3.0, width, INK, bold=True)
        y += self._text(
            draw, (lay.px(x), lay.px(y)), "any phone, online or offline", 1.8, width, MUTED
        )
        y += 2.5
        for label, value in (
            ("Card serial", data.card_serial),
            ("Issuer", data.issuer_name),
            ("Verify keys at", data.issuer_uri),
        ):
            y += self._text(draw, (lay.px(x), lay.px(y)), label.upper(), 1.6, width, MUTED)
            y += self._text(draw, (lay.px(x), lay.px(y)), value, 2.2, width, INK) + 1.0
        self._text(
            draw,
            (lay.px(x), lay.px(45.0)),
            f"If found, return to {data.issuer_name}.",
            1.7,
            width,
            MUTED,
        )
        return card, dots

    # -- text ----------------------------------------------------------------------------------
    def _text(
        self,
        draw: ImageDraw.ImageDraw,
        xy: tuple[int, int],
        text: str,
        size_mm: float,
        max_width_mm: float,
        fill: tuple[int, int, int],
        *,
        bold: bool = False,
    ) -> float:
        """Draw one line, shrunk (down to 60 %) to fit the width; returns the height used in
        mm. A text still too wide is cut with an ellipsis rather than run off the card."""
        if not text:
            return 0.0
        lay = self.layout
        mask, dx, dy, size = self.line(text, lay.px(size_mm), lay.px(max_width_mm), bold)
        draw.bitmap((xy[0] + dx, xy[1] + dy), mask, fill=fill)
        return size * 1.25 * qr.MM_PER_INCH / lay.dpi

    def _line(
        self, text: str, size: int, limit: int, bold: bool
    ) -> tuple[Image.Image, int, int, int]:
        """One line of text as an ink mask, its offset from the drawing point (left, top of the
        ascender line) and the font size used; ``line`` is this, cached."""
        # Shaping and rasterising a line costs ~1 ms; labels, ministries, positions and the
        # issuer repeat on every card of a batch, so the rendered line is kept.
        font = self.fonts.font(text, size, bold=bold)
        smallest = size * 6 // 10
        while font.getlength(text) > limit and size > smallest:
            size -= 1
            font = self.fonts.font(text, size, bold=bold)
        shown = text
        while font.getlength(shown) > limit and len(shown) > 1:
            shown = shown[:-2] + "…"
        # raqm picks language-specific shaping rules from ``language``; basic layout has none.
        language = self.fonts.language(text) if self.fonts.complex_layout else None
        box = font.getbbox(shown, language=language)
        left, top = math.floor(box[0]), math.floor(box[1])
        right, bottom = math.ceil(box[2]), math.ceil(box[3])
        mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
        ImageDraw.Draw(mask).text((-left, -top), shown, font=font, fill=255, language=language)
        return mask, left, top, size


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
