"""Draw the verifier's app icons (run once; the PNGs are committed):

    .venv/bin/python mobile_api/static/verify/icons/make_icons.py

A white shield with a check mark on the ministry blue; the maskable variant keeps the drawing
inside the central 80 % safe zone that Android's icon masks leave visible.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

BLUE = (11, 61, 145)
WHITE = (255, 255, 255)
GREEN = (10, 107, 44)
HERE = Path(__file__).resolve().parent


def icon(size: int, *, safe: float) -> Image.Image:
    image = Image.new("RGB", (size, size), BLUE)
    draw = ImageDraw.Draw(image)
    inset = size * (1 - safe) / 2
    s = size - 2 * inset

    def at(x: float, y: float) -> tuple[float, float]:
        return inset + x * s, inset + y * s

    shield = [
        at(0.5, 0.08),
        at(0.88, 0.22),
        at(0.84, 0.6),
        at(0.5, 0.92),
        at(0.16, 0.6),
        at(0.12, 0.22),
    ]
    draw.polygon(shield, fill=WHITE)
    draw.line(
        [at(0.3, 0.5), at(0.45, 0.66), at(0.72, 0.36)],
        fill=GREEN,
        width=round(s * 0.09),
        joint="curve",
    )
    return image


def main() -> None:
    icon(192, safe=0.9).save(HERE / "icon-192.png", optimize=True)
    icon(512, safe=0.9).save(HERE / "icon-512.png", optimize=True)
    icon(512, safe=0.7).save(HERE / "icon-maskable-512.png", optimize=True)


if __name__ == "__main__":
    main()
