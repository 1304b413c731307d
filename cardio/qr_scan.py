"""Read QR codes from a photo or scan of a card (PNG or JPEG), with zxing-cpp.

The image is opened by the one rule for images a person hands us (``cardio.images``): only
PNG and JPEG, recognised by their first bytes; the pixel count read from the header and capped
before pixels are inflated (a decompression bomb declares a huge size in a small file). Every
refusal is a ``QrScanError`` whose message says what to do, never a decoder's traceback.
"""

from __future__ import annotations

from typing import Final

import zxingcpp

from cardio.images import ImageRefused, ImageRule, open_image

__all__ = ["MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "SCAN_RULE", "QrScanError", "read_qr_texts"]

MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
MAX_IMAGE_PIXELS: Final = 50_000_000  # a 50-megapixel phone camera
SCAN_RULE: Final = ImageRule("image", max_bytes=MAX_IMAGE_BYTES, max_pixels=MAX_IMAGE_PIXELS)

# The image cannot be read: not PNG/JPEG, too big, damaged. The name callers catch.
QrScanError = ImageRefused


def read_qr_texts(data: bytes) -> list[str]:
    """The text of every QR code zxing-cpp finds in the image (possibly none)."""
    image = open_image(data, SCAN_RULE)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    # Only QR: ~6x faster than trying every symbology, and nothing else is ours.
    only_qr = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    barcodes = zxingcpp.read_barcodes(image, formats=only_qr)
    return [barcode.text for barcode in barcodes if barcode.valid]
