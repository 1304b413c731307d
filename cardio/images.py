"""Opening an image a person handed us (a desk photo, a photo or scan of a card): one rule.

Only JPEG and PNG are opened, recognised by their first bytes before any decoder runs (a GIF,
WebP, HEIC or PDF is named as such). The pixel count is read from the header and capped
before a pixel is inflated: a decompression bomb declares a huge size in a tiny file, and
Pillow's own guard either only warns (below twice its limit) or raises an error of its own
class; both are refused here. A damaged or truncated file is refused too. Every refusal is an
``ImageRefused`` whose message says what is wrong, never a decoder's traceback; callers turn it
into their own error (``PhotoRejected``, ``QrImageUnreadable``) and exit code.

Each caller states its limits as an ``ImageRule`` (``idsvc.register.photos.PHOTO_RULE``,
``cardio.qr_scan.SCAN_RULE``, ``cardio.card_face.FACE_RULE``).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from cardio.errors import PrintError

__all__ = ["ImageRefused", "ImageRule", "open_image"]

_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
_OTHER_IMAGES = {
    b"GIF8": "GIF",
    b"RIFF": "WebP",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"%PDF": "PDF",
}
_MIB = 1024 * 1024


class ImageRefused(PrintError):
    """The image is not one we open: not JPEG/PNG, too large, a bomb, damaged."""


@dataclass(frozen=True)
class ImageRule:
    """What one kind of image may be. ``noun`` names it in messages ("photo", "image")."""

    noun: str
    max_bytes: int
    max_pixels: int
    formats: tuple[str, ...] = ("JPEG", "PNG")

    def check_size(self, size: int) -> None:
        """Refuse a file by its byte count alone (before reading or uploading it)."""
        if size > self.max_bytes:
            raise ImageRefused(
                f"{self.noun} too large: {size:,} bytes, larger than {self.max_bytes // _MIB} MiB"
            )


def _format_of(data: bytes, rule: ImageRule) -> str:
    accepted = " or ".join(rule.formats)
    for magic, name in _SIGNATURES.items():
        if data.startswith(magic):
            if name not in rule.formats:
                raise ImageRefused(f"a {name} file: only {accepted} files are accepted")
            return name
    for magic, name in _OTHER_IMAGES.items():
        if data.startswith(magic):
            raise ImageRefused(f"a {name} file: only {accepted} files are accepted")
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        raise ImageRefused(f"a HEIC/AVIF file: only {accepted} files are accepted")
    raise ImageRefused(f"not an image: only {accepted} files are accepted")


def open_image(data: bytes, rule: ImageRule) -> Image.Image:
    """The decoded image (pixels loaded), or ``ImageRefused`` naming what is wrong."""
    rule.check_size(len(data))
    kind = _format_of(data, rule)
    try:
        with warnings.catch_warnings():
            # Pillow's bomb check only warns below twice its limit; ours is stricter and runs
            # on the header, before any pixel is decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind])
            width, height = image.size
            if width * height > rule.max_pixels:
                raise ImageRefused(
                    f"{rule.noun} too large: {width} x {height} pixels "
                    f"(at most {rule.max_pixels / 1_000_000:g} megapixels)"
                )
            image.load()
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # DecompressionBombError is neither an OSError nor a Warning: named here on purpose.
        raise ImageRefused(
            f"{rule.noun} refused: its declared size is a decompression bomb"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated or corrupt data as OSError/SyntaxError/ValueError.
        raise ImageRefused(
            f"the {kind} {rule.noun} cannot be decoded (damaged or truncated: {type(exc).__name__})"
        ) from None
    return image
