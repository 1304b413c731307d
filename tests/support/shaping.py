"""The reference for shaped text: glyph outlines drawn where HarfBuzz (uharfbuzz, an independent
binding of the shaping engine) places them, and how much of one bitmap's ink lies on another's."""

from __future__ import annotations

from pathlib import Path

import uharfbuzz as hb
from PIL import Image, ImageChops, ImageDraw, ImageFilter

SIZE = 64  # pixels per em of the reference lines


class OutlinePen:
    """fontTools-style pen (hence its method names): flattens a glyph's contours into polygons
    (font units -> pixels)."""

    def __init__(self, x: float, y: float, scale: float) -> None:
        self.x, self.y, self.scale = x, y, scale
        self.contours: list[list[tuple[float, float]]] = []
        self._points: list[tuple[float, float]] = []
        self._last = (0.0, 0.0)

    def _at(self, p: tuple[float, float]) -> tuple[float, float]:
        return (self.x + p[0] * self.scale, self.y - p[1] * self.scale)

    def moveTo(self, p: tuple[float, float]) -> None:
        self._points, self._last = [self._at(p)], p

    def lineTo(self, p: tuple[float, float]) -> None:
        self._points.append(self._at(p))
        self._last = p

    def qCurveTo(self, *points: tuple[float, float]) -> None:
        controls, end = list(points[:-1]), points[-1]
        start = self._last
        for i, c in enumerate(controls):
            stop = (
                end
                if i == len(controls) - 1
                else ((c[0] + controls[i + 1][0]) / 2, (c[1] + controls[i + 1][1]) / 2)
            )
            for k in range(1, 9):
                t = k / 8
                self._points.append(
                    self._at(
                        (
                            (1 - t) ** 2 * start[0] + 2 * (1 - t) * t * c[0] + t * t * stop[0],
                            (1 - t) ** 2 * start[1] + 2 * (1 - t) * t * c[1] + t * t * stop[1],
                        )
                    )
                )
            start = stop
        self._last = end

    def curveTo(
        self, c1: tuple[float, float], c2: tuple[float, float], end: tuple[float, float]
    ) -> None:
        start = self._last
        for k in range(1, 9):
            t = k / 8
            m = 1 - t
            self._points.append(
                self._at(
                    (
                        m**3 * start[0]
                        + 3 * m * m * t * c1[0]
                        + 3 * m * t * t * c2[0]
                        + t**3 * end[0],
                        m**3 * start[1]
                        + 3 * m * m * t * c1[1]
                        + 3 * m * t * t * c2[1]
                        + t**3 * end[1],
                    )
                )
            )
        self._last = end

    def closePath(self) -> None:
        if len(self._points) > 2:
            self.contours.append(self._points)
        self._points = []

    endPath = closePath


def harfbuzz_line(font_path: Path, text: str, language: str) -> tuple[Image.Image, list[int]]:
    """The reference: glyphs drawn where HarfBuzz places them; also the glyph ids."""
    face = hb.Face(hb.Blob.from_file_path(str(font_path)))
    font = hb.Font(face)
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    buffer.language = language
    hb.shape(font, buffer)
    scale = SIZE / face.upem
    width = int(sum(p.x_advance for p in buffer.glyph_positions) * scale) + 2 * SIZE
    mask = Image.new("1", (width, 3 * SIZE), 0)
    pen_x, baseline = float(SIZE), 2.0 * SIZE
    for info, pos in zip(buffer.glyph_infos, buffer.glyph_positions, strict=True):
        pen = OutlinePen(pen_x + pos.x_offset * scale, baseline - pos.y_offset * scale, scale)
        font.draw_glyph_with_pen(info.codepoint, pen)
        for contour in pen.contours:  # even-odd fill: counters stay open
            layer = Image.new("1", mask.size, 0)
            ImageDraw.Draw(layer).polygon(contour, fill=1)
            mask = ImageChops.logical_xor(mask, layer)
        pen_x += pos.x_advance * scale
    return mask, [info.codepoint for info in buffer.glyph_infos]


def _cropped(mask: Image.Image) -> Image.Image:
    box = mask.getbbox()
    assert box is not None, "nothing was drawn"
    return mask.crop(box)


def coverage(a: Image.Image, b: Image.Image) -> float:
    """Share of ``a``'s ink within 2 px of ``b``'s ink, both aligned on their ink boxes."""
    a, b = _cropped(a), _cropped(b)
    size = (max(a.width, b.width), max(a.height, b.height))
    canvas_a, canvas_b = Image.new("1", size, 0), Image.new("1", size, 0)
    canvas_a.paste(a, (0, 0))
    canvas_b.paste(b, (0, 0))
    near_b = canvas_b.convert("L").filter(ImageFilter.MaxFilter(5)).convert("1")
    ink = sum(1 for v in canvas_a.get_flattened_data() if v)
    hit = sum(1 for v in ImageChops.logical_and(canvas_a, near_b).get_flattened_data() if v)
    return hit / ink
