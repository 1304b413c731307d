"""Fitting a card's text into its box: shrink a little, wrap to two lines, or refuse.

A text is never cut: a card that prints "Deputy Director, Department of Civ…" states something
the register does not. So a text is drawn on one line, shrunk down to ``ONE_LINE_SHRINK`` of
its size; else on two lines, down to ``TWO_LINE_SHRINK``; else ``TextDoesNotFit`` names the
field, and the operator shortens it in the register (or the issuer's name in the settings).

Where a line may break: after a space, a zero-width space (U+200B: Khmer and Lao write no
spaces between words, and typed text marks word ends with it) or ``/ , -``; only if none of
those gives two lines that fit, between two orthographic clusters (never after a Khmer coeng
U+17D2, which joins the next consonant below, never after a Lao or Thai vowel written before
its consonant, never before a combining mark). Each line is then shaped on its own
(``cardio.fonts``), so a break never splits what HarfBuzz stacks.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

from cardio.errors import PrintError

ONE_LINE_SHRINK = 0.75
TWO_LINE_SHRINK = 0.6
_SOFT = " \u200b"
_AFTER = "/,-"
_COENG = "\u17d2"
_PRE_BASE = frozenset("\u0e40\u0e41\u0e42\u0e43\u0e44\u0ec0\u0ec1\u0ec2\u0ec3\u0ec4")


class TextDoesNotFit(PrintError):
    """A text does not fit its place on the card even on two lines at the smallest size."""


def word_breaks(text: str) -> list[int]:
    """Indexes where a second line may start: after spaces, ZWSP and ``/ , -``."""
    return [
        i
        for i in range(1, len(text))
        if (text[i - 1] in _SOFT or text[i - 1] in _AFTER) and text[i] not in _SOFT
    ]


def cluster_breaks(text: str) -> list[int]:
    """Indexes between orthographic clusters: the fallback for a word longer than a line."""
    return [
        i
        for i in range(1, len(text))
        if unicodedata.category(text[i])[0] in "LN"
        and text[i - 1] != _COENG
        and text[i - 1] not in _PRE_BASE
        and text[i] not in _SOFT
    ]


def _split(text: str, at: int) -> tuple[str, str]:
    return text[:at].rstrip(_SOFT), text[at:].lstrip(_SOFT)


def fit_lines(
    text: str,
    size: int,
    limit: int,
    *,
    max_lines: int,
    width: Callable[[str, int], float],
) -> tuple[Sequence[str], int]:
    """The lines and the size (pixels) that draw ``text`` within ``limit`` pixels, or
    ``TextDoesNotFit`` (message without the field; the caller names it). ``width(text, size)``
    measures one shaped line."""
    one_line_floor = max(1, round(size * ONE_LINE_SHRINK))
    for trial in range(size, one_line_floor - 1, -1):
        if width(text, trial) <= limit:
            return (text,), trial
    if max_lines >= 2:
        floor = max(1, round(size * TWO_LINE_SHRINK))
        for candidates in (word_breaks(text), cluster_breaks(text)):
            for trial in range(min(size, one_line_floor), floor - 1, -1):
                # Two lines hold at most twice a line: a longer text needs no search.
                if width(text, trial) > 2 * limit + trial:
                    continue
                best: tuple[float, tuple[str, str]] | None = None
                for at in candidates:
                    first, second = _split(text, at)
                    if not first or not second:
                        continue
                    wider = max(width(first, trial), width(second, trial))
                    if wider <= limit and (best is None or wider < best[0]):
                        best = (wider, (first, second))  # the most even pair reads best
                if best is not None:
                    return best[1], trial
    lines = "one line" if max_lines == 1 else f"{max_lines} lines"
    raise TextDoesNotFit(f"does not fit on the card in {lines} ({len(text)} characters)")
