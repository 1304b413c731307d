"""QR symbols for the printed card: capacity, encoding and rendering at print resolution.

Used by issuance (how big is a Claim 169 payload as a QR, refuse what a card cannot carry) and by
the card face (draw the symbol). The rules for a symbol that a cheap phone reads off a worn card:

- error correction level **M** (15 % of codewords recoverable: enough for wear, still compact);
- a quiet zone of at least **4 modules** (ISO/IEC 18004 requires it; decoders rely on it);
- modules of at least **0.25 mm** on paper, so a whole number of printer dots per module
  (``module_dots``), never a fractional scale that smears module edges;
- version ≤ 13 for a typical record, and never version 25 or more (``MAX_CARD_VERSION``): the
  symbol must fit the face and stay readable at 0.25 mm modules.

``version_for`` answers from the ISO/IEC 18004 capacity table without encoding anything (the
table is checked against two encoders in the tests). ``encode`` uses the zxing-cpp writer (C++):
it measured ~30x faster than ``qrcode`` and ``segno`` on the same payloads
(``bench/bench_qr_encode.py``; numbers in docs/dependencies.md).

Errors: ``cardio.errors.QrTooLarge``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, cast

import zxingcpp
from PIL import Image

from cardio.errors import QrTooLarge

ERROR_CORRECTION = "M"
QUIET_ZONE_MODULES = 4
MIN_MODULE_MM = 0.25
TYPICAL_VERSION_GOAL = 13
MAX_CARD_VERSION = 24
MM_PER_INCH = 25.4

# Characters of the QR alphanumeric mode: exactly the base45 alphabet (RFC 9285), which is why a
# base45 payload costs 5.5 bits a character in a QR instead of 8.
ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")

# Capacity at error correction M, versions 1..40 (ISO/IEC 18004:2015 Table 7).
_ALPHANUMERIC_CAPACITY_M = (
    20, 38, 61, 90, 122, 154, 178, 221, 262, 311, 366, 419, 483, 528, 600, 656, 734, 816, 909,
    970, 1035, 1134, 1248, 1326, 1451, 1542, 1637, 1732, 1839, 1994, 2113, 2238, 2369, 2506,
    2632, 2780, 2894, 3054, 3220, 3391,
)  # fmt: skip
_BYTE_CAPACITY_M = (
    14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624,
    666, 711, 779, 857, 911, 997, 1059, 1125, 1190, 1264, 1370, 1452, 1538, 1628, 1722, 1809,
    1911, 1989, 2099, 2213, 2331,
)  # fmt: skip


@dataclass(frozen=True)
class QrSize:
    """What a text costs as a QR symbol at error correction M."""

    version: int
    modules: int  # modules per side, without the quiet zone
    mode: str  # "alphanumeric" or "byte"
    payload_bytes: int  # bytes of the text as the encoder sees it (UTF-8 for byte mode)

    @property
    def fits_card(self) -> bool:
        return self.version <= MAX_CARD_VERSION


@dataclass(frozen=True)
class QrSymbol:
    """An encoded symbol, quiet zone not included: ``cells`` holds one byte a module, row by
    row, 0 for dark and 255 for light (ready to become an 8-bit image without a Python loop)."""

    version: int
    modules: int
    cells: bytes

    def is_dark(self, row: int, col: int) -> bool:
        return self.cells[row * self.modules + col] < 128


def modules_for_version(version: int) -> int:
    return 17 + 4 * version


# One C-level match: a per-character all() cost ~18 µs on a printed QR's 500 characters, ~6 %
# of an issuance (a printed QR's version is found for every credential issued).
_ALPHANUMERIC_RE = re.compile("[" + re.escape("".join(sorted(ALPHANUMERIC))) + "]*")


def is_alphanumeric(text: str) -> bool:
    return _ALPHANUMERIC_RE.fullmatch(text) is not None


def version_for(text: str) -> QrSize:
    """The smallest QR version (ECC M) that holds ``text``, without encoding it.

    Raises ``QrTooLarge`` when no version up to 40 holds it; callers that print compare
    ``version`` with ``MAX_CARD_VERSION`` (or call ``require_card_size``).
    """
    if is_alphanumeric(text):
        mode, length, table = "alphanumeric", len(text), _ALPHANUMERIC_CAPACITY_M
        payload = len(text)
    else:
        mode, payload, table = "byte", len(text.encode("utf-8")), _BYTE_CAPACITY_M
        length = payload
    for index, capacity in enumerate(table):
        if length <= capacity:
            version = index + 1
            return QrSize(version, modules_for_version(version), mode, payload)
    raise QrTooLarge(41, MAX_CARD_VERSION)


def require_card_size(text: str) -> QrSize:
    """``version_for``, refusing what a card face cannot carry (version 25 or more)."""
    size = version_for(text)
    if not size.fits_card:
        raise QrTooLarge(size.version, MAX_CARD_VERSION)
    return size


def encode(text: str) -> QrSymbol:
    """Encode ``text`` at ECC M in the smallest version; refuse what a card cannot carry."""
    size = require_card_size(text)
    barcode = zxingcpp.create_barcode(
        text, zxingcpp.BarcodeFormat.QRCode, ec_level=ERROR_CORRECTION, version=size.version
    )
    # zxingcpp.Image exports the buffer protocol (one byte a module, 0 = dark); its stubs do not
    # say so, hence the cast.
    image = memoryview(cast(Any, barcode.to_image(scale=1, add_quiet_zones=False)))
    rows, cols = image.shape or (0, 0)
    if rows != size.modules or cols != size.modules:
        # The capacity table and the encoder disagree: a bug to report, not to print around.
        raise AssertionError(f"encoder gave {rows}x{cols} modules for version {size.version}")
    return QrSymbol(size.version, rows, image.tobytes())


def module_dots(dpi: int, min_module_mm: float = MIN_MODULE_MM) -> int:
    """Whole printer dots per module so that a module is at least ``min_module_mm`` on paper."""
    return max(1, math.ceil(min_module_mm * dpi / MM_PER_INCH - 1e-9))


def side_dots(symbol: QrSymbol, dots_per_module: int) -> int:
    """Side of the rendered symbol, quiet zone included, in dots."""
    return (symbol.modules + 2 * QUIET_ZONE_MODULES) * dots_per_module


def render(symbol: QrSymbol, dots_per_module: int) -> Image.Image:
    """Black on white, 8-bit grey, quiet zone of ``QUIET_ZONE_MODULES`` on every side."""
    q = QUIET_ZONE_MODULES * dots_per_module
    side = side_dots(symbol, dots_per_module)
    modules = Image.frombytes("L", (symbol.modules, symbol.modules), symbol.cells)
    canvas = Image.new("L", (side, side), 255)
    # NEAREST keeps module edges sharp: every module becomes an exact block of dots.
    inner = symbol.modules * dots_per_module
    canvas.paste(modules.resize((inner, inner), Image.Resampling.NEAREST), (q, q))
    return canvas
