"""Shared by the printed-card tests: a real portrait, QR texts, the two QR decoders, and the
damage a worn card photographed by a phone goes through."""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import zxingcpp
from PIL import Image, ImageFilter

QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


FACES = Path(__file__).parent.parent / "data" / "faces"  # origin and licence in its README.md


def qr_text(length: int = 440, seed: int = 1) -> str:
    """Random Base45 text (what a printed credential's QR holds), the same for the same seed."""
    rng = random.Random(seed)
    return "".join(rng.choice(BASE45) for _ in range(length))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb's shape."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def portrait_bytes(fmt: str = "JPEG", size: tuple[int, int] = (900, 1200), **save: object) -> bytes:
    """A real head and shoulders (NASA's portrait of Eileen Collins, public domain), framed to
    ``size``: the face detector must find one face, with at least 90 pixels between the eyes
    from about 700 pixels high."""
    with Image.open(FACES / "astronaut.jpg") as astronaut:
        # the top 300 rows hold hair to shoulders; the face is centred at x = 225
        crop_w = min(astronaut.width, round(300 * size[0] / size[1]))
        left = min(max(0, 225 - crop_w // 2), astronaut.width - crop_w)
        image = astronaut.crop((left, 0, left + crop_w, 300)).resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def zxing_texts(image: Image.Image) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(image, formats=QR_ONLY)]


def zbarimg_texts(path: Path) -> list[str]:
    """Debian's zbar (``zbarimg`` from zbar-tools), on the file as saved."""
    exe = shutil.which("zbarimg")
    assert exe, "zbarimg not found: apt-get install zbar-tools (scripts/system-packages test)"
    proc = subprocess.run(
        [exe, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode in (0, 4), proc.stderr  # 4 = no symbol found
    return [line for line in proc.stdout.decode("ascii").splitlines() if line]


def phone_photo_of_worn_card(
    image: Image.Image, dpi: int, *, angle: float = 4.0, blur: float = 1.0
) -> bytes:
    """Scaled to 150 dpi, rotated a few degrees, blurred (Gaussian, sigma in 150-dpi pixels),
    saved as JPEG quality 40."""
    scale = 150 / dpi
    small = image.convert("RGB").resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR
    )
    turned = small.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")
    blurred = turned.filter(ImageFilter.GaussianBlur(blur))
    out = io.BytesIO()
    blurred.save(out, "JPEG", quality=40)
    return out.getvalue()
