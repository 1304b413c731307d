"""Fonts for the card face: which font draws which script, shaped, and never as tofu boxes.

Lao and Khmer need complex text layout: vowels above and below the consonant, Khmer subscript
consonants (coeng + consonant), tone marks stacked on vowels, reordered pre-base vowels. Pillow
does that only with its raqm layout engine (libraqm → HarfBuzz + FriBiDi); its basic layout
draws each code point side by side, which for ម៉ៅ សុវណ្ណ is 40 % wider and unreadable. So a
complex script is drawn with raqm or refused (``ScriptNotShapeable``), never drawn wrongly.

Fonts come from Debian's ``fonts-noto-core`` (Noto Sans, Noto Sans Lao, Noto Sans Khmer, Noto
Sans Thai), found under ``font_dirs``. Before a text is drawn every character is checked against
the font: a character the font lacks would come out as the ``.notdef`` box, so it is refused
with the script named instead.

Errors: ``cardio.errors.ScriptNotShapeable``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont, features

from cardio.errors import ScriptNotShapeable

DEFAULT_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))

# script -> (regular, bold) file names, ISO 15924 code, BCP 47 language for shaping rules
_FONT_FILES = {
    "Latin": ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "Latn", "en"),
    "Lao": ("NotoSansLao-Regular.ttf", "NotoSansLao-Bold.ttf", "Laoo", "lo"),
    "Khmer": ("NotoSansKhmer-Regular.ttf", "NotoSansKhmer-Bold.ttf", "Khmr", "km"),
    "Thai": ("NotoSansThai-Regular.ttf", "NotoSansThai-Bold.ttf", "Thai", "th"),
}
COMPLEX_SCRIPTS = frozenset({"Lao", "Khmer", "Thai"})
_RANGES = (
    (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Lao"),
    (0x1780, 0x17FF, "Khmer"),
    (0x19E0, 0x19FF, "Khmer"),
)
# A code point no Noto font maps (private use): what the font draws for a missing character.
_MISSING_PROBE = "\ue000"


@lru_cache(maxsize=4096)
def script_of(text: str) -> str:
    """The script of a name: Lao, Khmer or Thai when any of its letters is; otherwise Latin if
    every letter is Latin. Raises ``ScriptNotShapeable`` for any other script."""
    found: set[str] = set()
    for ch in text:
        cp = ord(ch)
        named = next((s for lo, hi, s in _RANGES if lo <= cp <= hi), None)
        if named is not None:
            found.add(named)
        elif unicodedata.category(ch)[0] == "L" and "LATIN" not in unicodedata.name(ch, ""):
            raise ScriptNotShapeable(
                f"no card font for the character U+{cp:04X} ({unicodedata.name(ch, 'unnamed')})"
            )
    if len(found) > 1:
        raise ScriptNotShapeable(f"a name mixes scripts ({', '.join(sorted(found))})")
    return found.pop() if found else "Latin"


@dataclass(frozen=True)
class FontChoice:
    script: str
    path: Path
    language: str


class FontBook:
    """Finds and loads the card's fonts; one per process is enough (fonts are cached)."""

    def __init__(
        self, font_dirs: Sequence[Path] = DEFAULT_FONT_DIRS, *, complex_layout: bool | None = None
    ) -> None:
        self._dirs = tuple(font_dirs)
        # ``complex_layout`` is Pillow's raqm support unless told otherwise (tests say False to
        # check that a missing engine is refused rather than drawn wrongly).
        self.complex_layout = features.check("raqm") if complex_layout is None else complex_layout

    def choice(self, script: str, *, bold: bool = False) -> FontChoice:
        regular, heavy, _code, language = _FONT_FILES[script]
        name = heavy if bold else regular
        path = _find(self._dirs, name)
        if path is None:
            raise ScriptNotShapeable(
                f"no font for {script} script: {name} not found under "
                f"{', '.join(str(d) for d in self._dirs)} (Debian: apt-get install fonts-noto-core)"
            )
        return FontChoice(script, path, language)

    def font(self, text: str, size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
        """A font that draws ``text`` correctly at ``size`` pixels, or ``ScriptNotShapeable``."""
        script = script_of(text)
        if script in COMPLEX_SCRIPTS and not self.complex_layout:
            raise ScriptNotShapeable(
                f"{script} script needs complex text layout, and Pillow has no raqm here "
                "(Debian: apt-get install libraqm0)"
            )
        choice = self.choice(script, bold=bold)
        missing = _missing_characters(str(choice.path), text)
        if missing:
            listed = ", ".join(f"U+{ord(c):04X}" for c in missing)
            raise ScriptNotShapeable(f"{choice.path.name} cannot draw {listed}")
        return _load(str(choice.path), size, self.complex_layout)

    @staticmethod
    def language(text: str) -> str:
        return _FONT_FILES[script_of(text)][3]


@lru_cache(maxsize=64)
def _find(dirs: tuple[Path, ...], name: str) -> Path | None:
    for directory in dirs:
        if directory.is_dir():
            for path in sorted(directory.rglob(name)):
                return path
    return None


@lru_cache(maxsize=256)
def _load(path: str, size: int, complex_layout: bool) -> ImageFont.FreeTypeFont:
    engine = ImageFont.Layout.RAQM if complex_layout else ImageFont.Layout.BASIC
    return ImageFont.truetype(path, size, layout_engine=engine)


def _missing_characters(path: str, text: str) -> list[str]:
    return [ch for ch in dict.fromkeys(text) if not _has_glyph(path, ch)]


@lru_cache(maxsize=4096)
def _has_glyph(path: str, ch: str) -> bool:
    if ch.isspace() or unicodedata.category(ch) in ("Cf", "Cc"):
        return True  # spaces and joiners draw nothing by design
    # Basic layout maps one code point to one glyph, so a missing one is exactly the glyph the
    # font draws for the private-use probe (its .notdef).
    probe = _load(path, 48, False)
    return _bitmap(probe, ch) != _bitmap(probe, _MISSING_PROBE)


def _bitmap(font: ImageFont.FreeTypeFont, text: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(text)
    return mask.size, bytes(mask)


def covered(font_book: FontBook, texts: Iterable[str]) -> None:
    """Check up front that every text can be drawn (a batch checks all names first)."""
    for text in texts:
        if text:
            font_book.font(text, 24)
