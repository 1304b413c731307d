"""Images handed to idsvc by a person (a desk photo, a scan of a card for ``verify --image``)
are opened by one rule, ``cardio.images.open_image``: decompression bombs, other formats and
damaged files are refused with a message and the command's documented exit code (photo 20,
verify 18), never an internal error (70)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from PIL import Image

from cardio.images import ImageRefused, ImageRule, open_image
from idsvc.cli.errors import exit_code_for
from idsvc.credentials.printed_qr import qr_text_from_image
from idsvc.errors import PhotoRejected, QrImageUnreadable
from idsvc.register.photos import normalise_photo
from tests.support.card_print import png_declaring
from tests.support.cli_runner import Cli


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims ``width`` x ``height``."""
    out = io.BytesIO()
    Image.new("L", (8, 8)).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    # marker, length (2), precision (1), then height and width (2 bytes each)
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


BOMBS = [
    ("png-20000", png_declaring(20000, 20000)),
    ("jpeg-65000", jpeg_declaring(65000, 65000)),
]


def test_the_bombs_declare_what_they_claim() -> None:
    # Pillow reads the declared size without decoding: exactly what a bomb abuses.
    for _name, data in BOMBS:
        with pytest.raises(Image.DecompressionBombError):
            Image.open(io.BytesIO(data))


@pytest.mark.parametrize(("name", "data"), BOMBS, ids=[n for n, _ in BOMBS])
def test_both_paths_refuse_a_bomb_with_the_same_rule(name: str, data: bytes) -> None:
    with pytest.raises(QrImageUnreadable, match="decompression bomb") as scanned:
        qr_text_from_image(data)
    assert exit_code_for(scanned.value)[0] == 18
    with pytest.raises(PhotoRejected, match="decompression bomb") as photo:
        normalise_photo(data)
    assert exit_code_for(photo.value)[0] == 20
    rule = ImageRule("image", max_bytes=1 << 20, max_pixels=1_000_000)
    with pytest.raises(ImageRefused, match="image refused: its declared size is a decompression"):
        open_image(data, rule)


def test_the_rule_reads_what_it_accepts() -> None:
    rule = ImageRule("scan", max_bytes=1 << 20, max_pixels=10_000)
    out = io.BytesIO()
    Image.new("RGB", (100, 100), "white").save(out, "PNG")
    image = open_image(out.getvalue(), rule)
    assert image.size == (100, 100) and image.format == "PNG"
    with pytest.raises(ImageRefused, match=r"scan too large: 101 x 100 pixels"):
        out = io.BytesIO()
        Image.new("RGB", (101, 100), "white").save(out, "PNG")
        open_image(out.getvalue(), rule)
    with pytest.raises(ImageRefused, match="a GIF file: only JPEG or PNG"):
        open_image(b"GIF89a" + bytes(40), rule)


def test_verify_image_bombs_exit_18(tmp_path: Path) -> None:
    # No database is touched: the image is refused before the service is opened.
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'idsvc.sqlite3'}")
    for name, data in BOMBS:
        path = tmp_path / f"{name}.{'png' if name.startswith('png') else 'jpg'}"
        path.write_bytes(data)
        r = cli("verify", "--image", str(path))
        assert r.returncode == 18, (name, r.returncode, r.stderr)
        assert "decompression bomb" in r.stderr and "internal error" not in r.stderr
