"""What characters a register field may hold: the rules every text from HR obeys.

Characters that draw nothing, or draw unlike what is stored, are refused (``unwanted_character``):
controls (Cc, and the line and paragraph separators), bidirectional controls and marks
(U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C: Lao and Khmer are left-to-right and
need none), every other format character (Cf: U+200B, U+2060, U+FEFF, U+00AD, tags ...), the
other default-ignorable code points (the deprecated Khmer inherent vowels U+17B4/U+17B5,
variation selectors, Hangul fillers ...), private-use characters and unpaired surrogates. The
one exception is RFC 5892's CONTEXTJ rule: ZWNJ (U+200C) and ZWJ (U+200D) right after a virama
(combining class 9, e.g. the Khmer coeng U+17D2), where they choose how a conjunct is drawn;
anywhere else they only make two equal-looking names differ.

A field that starts like a spreadsheet formula (``FORMULA_START``) is refused by the HR rules,
so the register can never hand one back to a spreadsheet.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

FORMULA_START: Final = frozenset("=+-@\t\r")
# Embeddings, overrides, isolates and the direction marks make a name display unlike what is
# stored ("Trojan Source"); Lao and Khmer are left-to-right and need none of them.
_BIDI: Final = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL: Final = "\x00-\x1f\x7f-\x9f\u2028\u2029"
# General category Cf (Unicode 14/15) less the bidi ones above and the joiners, then the other
# Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt): characters that draw
# nothing. Listed rather than computed so that importing this module costs nothing; a test
# checks the list against the Unicode database of the running Python.
_INVISIBLE: Final = (
    "\u00ad\u034f\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b\u2060-\u2065\u206a-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0"
    "\ufff0-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
_PRIVATE_OR_SURROGATE: Final = (
    "\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd\ud800-\udfff"
)
_UNWANTED_RE: Final = re.compile(
    f"[{_CONTROL}{_BIDI}{_INVISIBLE}{_PRIVATE_OR_SURROGATE}\u200c\u200d]"
)
_JOINERS: Final = frozenset("\u200c\u200d")
_VIRAMA_CLASS: Final = 9
_BIDI_RE: Final = re.compile(f"[{_BIDI}]")
_CONTROL_RE: Final = re.compile(f"[{_CONTROL}]")


def unwanted_character(text: str) -> str | None:
    """What kind of character ``text`` must not hold (see the module's row rules), or None.

    The answer names the code point of an invisible or private-use character (so a clerk can
    find it: it cannot be seen), never the text around it."""
    for found in _UNWANTED_RE.finditer(text):  # one scan; nearly every field has no match
        char, at = found.group(), found.start()
        if char in _JOINERS:
            if at > 0 and unicodedata.combining(text[at - 1]) == _VIRAMA_CLASS:
                continue  # a conjunct's shape after a virama (RFC 5892 CONTEXTJ)
            return f"invisible character U+{ord(char):04X}"
        if _BIDI_RE.match(char):
            return "bidirectional control character"
        if _CONTROL_RE.match(char):
            return "control character"
        category = unicodedata.category(char)
        if category == "Cs":
            return "unpaired surrogate"
        if category == "Co":
            return f"private-use character U+{ord(char):04X}"
        return f"invisible character U+{ord(char):04X}"
    return None


_NAME_SEPARATORS: Final = re.compile(r"[-.\u2010-\u2015]")


def name_key(name_latin: str) -> str:
    """A Latin name as compared when looking for one person recorded twice: compatibility forms
    folded (NFKC), case folded, accents kept (Ngô and Ngo are different names), and runs of
    spaces, hyphens and dots as one space. "SOMPHONE  Keomany" and "Somphone Keomany" match."""
    folded = unicodedata.normalize("NFKC", name_latin).casefold()
    return " ".join(_NAME_SEPARATORS.sub(" ", folded).split())


def spreadsheet_safe(text: str) -> str:
    """A cell of a CSV the service writes, never read as a formula by a spreadsheet: text that
    starts like one gets a leading apostrophe (OWASP's CSV injection advice)."""
    return "'" + text if text[:1] in FORMULA_START else text
