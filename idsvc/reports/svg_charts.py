"""Bar charts as inline SVG for the controls report's HTML page (``controls_html``).

No chart library: three kinds of bars are all the report needs, and markup written here needs
no script, no style attribute (the page's Content-Security-Policy allows neither) and no fetch.
Every chart prints its numbers as SVG ``<text>`` beside the bars, so a reader never has to
estimate a bar's length, and a screen reader gets the same numbers from ``aria-label``.

Names (ministries, in Lao or Khmer script) are HTML text above each bar, not SVG text: SVG
text does not wrap, and a long ministry name must stay whole on a 360 px phone. Every string
that reaches the markup goes through ``html.escape``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

# The bars' user units: 320 wide fills a 360 px phone at about one unit per pixel.
WIDTH: Final = 320
_BAR: Final = 14
_TEXT: Final = 12
_CHAR: Final = 7.2  # a bold digit or Latin letter at 12 px, for the room a number needs


@dataclass(frozen=True)
class Bar:
    """One bar: ``value`` sets its length against the chart's scale, ``text`` is printed."""

    label: str
    value: float
    text: str
    tone: str = "bar"  # a CSS class: bar, warn, quiet


@dataclass(frozen=True)
class BarGroup:
    """One named row of a chart (a ministry) with one or more bars."""

    name: str
    bars: Sequence[Bar]


def _number(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def _bars_svg(
    bars: Sequence[Bar], scale: float, value_room: float, *, labelled: bool, track: bool
) -> str:
    """One small SVG: a bar per line, the number right of it (and a label left if asked)."""
    label_room = 132 if labelled else 0
    room = WIDTH - label_room - value_room
    line = _BAR + 6
    height = line * len(bars) + 2
    parts = [
        f'<svg class="bars" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape("; ".join(f"{b.label}: {b.text}" for b in bars))}">'
    ]
    for i, bar in enumerate(bars):
        y = 1 + i * line
        length = room * (bar.value / scale) if scale > 0 else 0.0
        # A non-zero value always shows a sliver: zero and "very few" must look different.
        if bar.value > 0:
            length = max(length, 2.0)
        if track:  # the whole scale, pale: a rate's bar is read against 100 %
            parts.append(
                f'<rect class="track" x="{label_room}" y="{y}" width="{_number(room)}" '
                f'height="{_BAR}"/>'
            )
        if labelled:
            parts.append(
                f'<text class="lab" x="{label_room - 6}" y="{y + _BAR - 3}" '
                f'text-anchor="end">{escape(bar.label)}</text>'
            )
        parts.append(
            f'<rect class="{escape(bar.tone)}" x="{label_room}" y="{y}" '
            f'width="{_number(length)}" height="{_BAR}"/>'
        )
        parts.append(
            f'<text class="val" x="{_number(label_room + length + 5)}" y="{y + _BAR - 3}">'
            f"{escape(bar.text)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    title: str,
    groups: Sequence[BarGroup],
    *,
    scale: float | None = None,
    track: bool = False,
    note: str = "",
) -> str:
    """A figure: for each group, its name as text and its bars (labelled when there are
    several) against one scale for the whole chart (``scale``, or the largest value);
    ``track`` draws the whole scale behind each bar."""
    bars = [b for g in groups for b in g.bars]
    top = scale if scale is not None else max((b.value for b in bars), default=0.0)
    # The same length for every group, so bars compare across groups; the longest bar still
    # leaves room for the longest number beside it.
    value_room = 8 + _CHAR * max((len(b.text) for b in bars), default=0)
    parts = [f'<figure class="chart"><figcaption>{escape(title)}</figcaption>']
    if not groups:
        parts.append('<p class="none">Nothing to show.</p>')
    for group in groups:
        labelled = len(group.bars) > 1
        parts.append(
            f'<div class="row"><div class="name">{escape(group.name)}</div>'
            f"{_bars_svg(group.bars, top, value_room, labelled=labelled, track=track)}</div>"
        )
    if note:
        parts.append(f'<p class="note">{escape(note)}</p>')
    parts.append("</figure>")
    return "".join(parts)


def column_chart(
    title: str,
    columns: Sequence[tuple[str, float | None]],
    *,
    unit: str,
    reference: tuple[float, str] | None = None,
    note: str = "",
) -> str:
    """A figure with one SVG: a column per label (short labels such as months), its value
    printed above it; ``None`` is "no data", shown as such rather than as zero. ``reference``
    draws a dashed line at a value with its own words (e.g. one pay period)."""
    # A legend line on top (the reference line's words), room for the numbers above the
    # columns, and the labels below the axis.
    height, legend, top_room, bottom_room, left = 206, 16, 22, 22, 8
    plot = height - legend - top_room - bottom_room
    known = [v for _, v in columns if v is not None]
    top = max([*known, reference[0] if reference else 0.0, 1.0])
    step = (WIDTH - 2 * left) / max(len(columns), 1)
    width = min(step * 0.6, 40.0)
    label = "; ".join(
        f"{c}: {'no data' if v is None else _number(v) + ' ' + unit}" for c, v in columns
    )
    parts = [
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg class="columns" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape(label)}">',
        f'<line class="axis" x1="{left}" x2="{WIDTH - left}" y1="{height - bottom_room}" '
        f'y2="{height - bottom_room}"/>',
    ]
    for i, (name, value) in enumerate(columns):
        centre = left + step * (i + 0.5)
        base = height - bottom_room
        if value is None:
            parts.append(
                f'<text class="val quiet" x="{_number(centre)}" y="{base - 4}" '
                f'text-anchor="middle">none</text>'
            )
        else:
            bar = plot * value / top
            if value > 0:
                bar = max(bar, 2.0)
            parts.append(
                f'<rect class="bar" x="{_number(centre - width / 2)}" y="{_number(base - bar)}" '
                f'width="{_number(width)}" height="{_number(bar)}"/>'
                f'<text class="val" x="{_number(centre)}" y="{_number(base - bar - 5)}" '
                f'text-anchor="middle">{escape(_number(value))}</text>'
            )
        parts.append(
            f'<text class="lab" x="{_number(centre)}" y="{height - 6}" '
            f'text-anchor="middle">{escape(name)}</text>'
        )
    if reference is not None:
        y = height - bottom_room - plot * reference[0] / top
        parts.append(
            f'<line class="ref" x1="{left}" x2="{WIDTH - left}" y1="{_number(y)}" '
            f'y2="{_number(y)}"/><line class="ref" x1="{left}" x2="{left + 24}" y1="8" y2="8"/>'
            f'<text class="lab" x="{left + 30}" y="12">{escape(reference[1])}</text>'
        )
    parts.append("</svg>")
    if note:
        parts.append(f'<p class="note">{escape(note)}</p>')
    parts.append("</figure>")
    return "".join(parts)
