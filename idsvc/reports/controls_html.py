"""The controls report as one HTML page a payroll director reads on a phone, a PC or on paper.

The page is a single self-contained file: it opens from a USB stick on a PC with no network.
Styles are inline, charts are inline SVG (``svg_charts``), the Lao and Khmer fonts are embedded
as ``data:`` URIs, and a Content-Security-Policy in the page itself forbids every fetch: only
the one inline style block (by its hash) and ``data:`` fonts are allowed; no script at all.

The fonts are the script subsets the web verifier also serves (``idsvc/data/fonts``, made by
``make_fonts.py`` there): many PCs and phones have no Lao or Khmer font, and names must never
show as boxes. They are named by their own family names and restricted to their scripts
(``unicode-range``), so Lao and Khmer text always uses them and Latin text the system's font.

Every value from the register passes through ``html.escape``. Lists are capped at
``list_limit`` rows each (the CSV and JSON forms carry everything), so a payroll of 300,000
people still gives a page a phone can open.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from html import escape
from importlib import resources
from typing import Final

from idsvc.bank.payroll_reasons import MEANING, PayrollReason
from idsvc.reports.controls import FLAGS, Change, ControlsReport, Flagged, Group
from idsvc.reports.svg_charts import Bar, BarGroup, bar_chart, column_chart

LIST_LIMIT: Final = 1000
# (CSS family, file in idsvc/data/fonts, the code points it is used for)
SCRIPT_FONTS: Final = (
    ("Report Noto Sans Lao", "NotoSansLao-Regular.woff2", "U+0E80-0EFF, U+200B-200D, U+25CC"),
    (
        "Report Noto Sans Khmer",
        "NotoSansKhmer-Regular.woff2",
        "U+1780-17FF, U+19E0-19FF, U+200B-200D, U+25CC",
    ),
)
FLAG_NAMES: Final = {
    PayrollReason.CONTRACT_ENDED: "Contract ended",
    PayrollReason.PAST_RETIREMENT_AGE: "Past retirement",
    PayrollReason.DUPLICATE_IDENTITY: "Duplicate identity",
    PayrollReason.NO_CARD: "Never enrolled",
    PayrollReason.ACCOUNT_CHANGED: "Account changed",
}

_CSS: Final = """
:root {
  font-family: "Report Noto Sans Lao", "Report Noto Sans Khmer", system-ui, "Noto Sans",
    "DejaVu Sans", sans-serif;
  font-size: 16px; line-height: 1.45; color: #111; background: #fff;
  --accent: #0b3d91; --warn: #b3261e; --line: #c8ccd4; --pale: #eef1f6;
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 62rem; padding: 0.75rem; overflow-wrap: anywhere; }
h1 { font-size: 1.35rem; margin: 0 0 0.25rem; color: var(--accent); }
h2 { font-size: 1.15rem; margin: 1.75rem 0 0.5rem; border-bottom: 2px solid var(--accent);
  break-after: avoid; }
h3 { font-size: 1rem; margin: 1rem 0 0.25rem; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 0.75rem;
  margin: 0.5rem 0; }
header dt { font-weight: 600; }
header dd { margin: 0; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(9.5rem, 1fr));
  gap: 0.5rem; margin: 0; }
.figures div { background: var(--pale); border-radius: 6px; padding: 0.5rem 0.75rem;
  break-inside: avoid; }
.figures dt { font-size: 0.85rem; }
.figures dd { margin: 0; font-size: 1.4rem; font-weight: 700; }
.figures .alarm dd { color: var(--warn); }
.chart { margin: 1rem 0; break-inside: avoid; }
@media screen and (min-width: 52rem) {
  #charts { display: grid; grid-template-columns: 1fr 1fr; column-gap: 2rem; }
  #charts h2 { grid-column: 1 / -1; }
}
.chart figcaption { font-weight: 600; margin-bottom: 0.35rem; }
.chart .row { margin: 0.15rem 0 0.45rem; break-inside: avoid; }
.chart .name { font-size: 0.9rem; }
.chart svg { display: block; width: 100%; max-width: 320px; height: auto; }
.chart svg.columns { max-width: 420px; }
svg text { font-family: inherit; font-size: 12px; fill: #111; }
svg .val { font-weight: 700; }
svg .quiet, .none, .note { fill: #666; color: #555; font-size: 0.85rem; }
svg .bar { fill: var(--accent); }
svg .track { fill: var(--pale); }
svg .warn { fill: var(--warn); }
svg .axis { stroke: #333; stroke-width: 1; }
svg .ref { stroke: var(--warn); stroke-width: 1; stroke-dasharray: 4 3; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0; font-size: 0.92rem; }
th, td { border: 1px solid var(--line); padding: 0.25rem 0.4rem; text-align: left;
  vertical-align: top; }
th { background: var(--pale); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
/* A number or a heading word is never split; names and ids may be, anywhere, to fit. */
th { overflow-wrap: normal; }
td.n { overflow-wrap: normal; white-space: nowrap; }
tfoot td { font-weight: 700; }
tr { break-inside: avoid; }
thead { display: table-header-group; }
details { margin: 0.5rem 0; border: 1px solid var(--line); border-radius: 6px;
  padding: 0.25rem 0.6rem; }
summary { cursor: pointer; font-weight: 600; padding: 0.25rem 0; }
.meaning { margin: 0.25rem 0; }
footer { margin-top: 2rem; font-size: 0.85rem; color: #444; }
@media (max-width: 40rem) {
  table.stack thead { display: none; }
  table.stack, table.stack tbody, table.stack tfoot, table.stack tr, table.stack td {
    display: block; width: 100%; }
  table.stack tr { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 0.5rem;
    padding: 0.2rem 0.5rem; }
  table.stack td { border: 0; display: flex; justify-content: space-between; gap: 0.75rem;
    padding: 0.1rem 0; text-align: right; }
  table.stack td::before { content: attr(data-label); font-weight: 600; text-align: left;
    flex: none; max-width: 55%; }
}
@page { size: A4; margin: 14mm 12mm; }
@media print {
  :root { font-size: 10.5pt; }
  table { font-size: 9pt; }
  body { max-width: none; padding: 0; }
  details { border: 0; padding: 0; }
  details::details-content { content-visibility: visible; display: block; }
  summary { list-style: none; }
  section { break-before: auto; }
}
"""


@cache
def _font_faces() -> str:
    """The @font-face rules with each font inlined (read once per process)."""
    fonts = resources.files("idsvc").joinpath("data", "fonts")
    rules = []
    for family, name, ranges in SCRIPT_FONTS:
        data = base64.b64encode(fonts.joinpath(name).read_bytes()).decode("ascii")
        rules.append(
            f'@font-face {{ font-family: "{family}"; '
            f'src: url("data:font/woff2;base64,{data}") format("woff2"); '
            f"unicode-range: {ranges}; font-display: block; }}"
        )
    return "\n".join(rules)


@cache
def _style() -> tuple[str, str]:
    """The page's one style block and its CSP hash source."""
    css = _font_faces() + _CSS
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return css, f"'sha256-{digest}'"


def content_security_policy(style_hash: str) -> str:
    """Nothing may be fetched: no script, no image, no connection; the style block by its hash
    and fonts only from ``data:`` (the page's own). ``form-action`` and ``base-uri`` shut the
    two doors ``default-src`` leaves open."""
    return (
        f"default-src 'none'; style-src {style_hash}; font-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _int(n: int) -> str:
    return f"{n:,}"


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}".removesuffix(".0")


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _rate(group: Group) -> str:
    if not group.active:
        return "no active staff"
    return f"{group.enrolment_rate:.1%} ({_int(group.enrolled)} of {_int(group.active)})"


def _ministry(name: str) -> str:
    return name or "(no ministry)"


def _table(
    headings: Sequence[tuple[str, bool]],
    rows: Iterable[Sequence[object]],
    *,
    foot: Sequence[object] | None = None,
) -> str:
    """A table; ``headings`` are (words, numeric). One of more than four columns becomes a
    card per row on a phone (a narrow one fits as it is, and a long list stays short)."""
    head = "".join(f'<th scope="col"{" class=n" if n else ""}>{_e(h)}</th>' for h, n in headings)

    def row(cells: Sequence[object]) -> str:
        return (
            "<tr>"
            + "".join(
                f'<td data-label="{_e(h)}"{" class=n" if n else ""}>{_e(c)}</td>'
                for (h, n), c in zip(headings, cells, strict=True)
            )
            + "</tr>"
        )

    body = "".join(row(r) for r in rows)
    tail = f"<tfoot>{row(foot)}</tfoot>" if foot is not None else ""
    cls = ' class="stack"' if len(headings) > 4 else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody>{tail}</table>"


def _by_ministry(groups: Sequence[Group]) -> list[Group]:
    """The offices of each ministry added up (the charts show ministries)."""
    active: dict[str, int] = defaultdict(int)
    enrolled: dict[str, int] = defaultdict(int)
    flags: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for g in groups:
        active[g.ministry] += g.active
        enrolled[g.ministry] += g.enrolled
        for code, n in g.flags.items():
            flags[g.ministry][code] += n
    return [Group(m, "", active[m], enrolled[m], dict(flags[m])) for m in sorted(active)]


def _header(report: ControlsReport, issuer_name: str, generated_at: datetime) -> str:
    when = generated_at if generated_at.tzinfo else generated_at.replace(tzinfo=UTC)
    items = [
        ("Issuer", issuer_name),
        ("Period", f"{report.period_start.isoformat()} to {report.as_of.isoformat()}"),
        ("As of", report.as_of.isoformat()),
        ("Ministry", report.ministry if report.ministry is not None else "All ministries"),
        ("Generated at", f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC"),
        ("Pay period", f"{report.pay_period_days} days; late after {report.late_after_days} days"),
    ]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return (
        f"<header><h1>Payroll controls report</h1>"
        f'<p class="note">{_e(issuer_name)}: the month {report.as_of:%Y-%m} up to its as-of day</p>'
        f"<dl>{rows}</dl></header>"
    )


def _figure(label: str, value: str, *, alarm: bool = False, key: str = "") -> str:
    cls = ' class="alarm"' if alarm else ""
    ident = f' id="{_e(key)}"' if key else ""
    return f"<div{cls}{ident}><dt>{_e(label)}</dt><dd>{_e(value)}</dd></div>"


def _totals(report: ControlsReport) -> str:
    total = report.total
    late = len(report.late)
    figures = [
        _figure("People active", _int(total.active), key="total-active"),
        _figure("Enrolled (card with photo)", _int(total.enrolled), key="total-enrolled"),
        _figure(
            "Enrolment rate",
            _share(total.enrolment_rate) if total.active else "—",
            key="total-rate",
        ),
        *(
            _figure(FLAG_NAMES[f], _int(total.flags.get(f, 0)), alarm=bool(total.flags.get(f)))
            for f in FLAGS
        ),
        _figure("Status changes", _int(len(report.changes))),
        _figure("Median reporting lag (days)", _days(report.median_lag_days), key="median-lag"),
        _figure("90th percentile lag (days)", _days(report.p90_lag_days), key="p90-lag"),
        _figure("Reported late", _int(late), alarm=late > 0),
        _figure("Retroactive share", _share(report.retroactive_share), key="retro-share"),
    ]
    return (
        f'<section id="totals"><h2>Totals</h2><dl class="figures">{"".join(figures)}</dl></section>'
    )


def _charts(report: ControlsReport) -> str:
    ministries = _by_ministry(report.groups)
    enrolment = bar_chart(
        "Enrolment rate by ministry (people seen at a desk, of those active)",
        [
            BarGroup(
                _ministry(m.ministry),
                [Bar("Enrolment rate", m.enrolment_rate * 100, _rate(m))],
            )
            for m in ministries
        ],
        scale=100.0,
        track=True,
    )
    flags = bar_chart(
        "Flags by ministry (people flagged, per flag)",
        [
            BarGroup(
                _ministry(m.ministry),
                [
                    Bar(FLAG_NAMES[f], m.flags.get(f, 0), _int(m.flags.get(f, 0)), "warn")
                    for f in FLAGS
                ],
            )
            for m in ministries
        ],
    )
    counts = ", ".join(f"{m.month}: {_int(m.changes)}" for m in report.lag_by_month)
    lag = column_chart(
        "Reporting lag over the last months (median days from a status date to the register)",
        [(m.month, m.median_lag_days) for m in report.lag_by_month],
        unit="days",
        reference=(float(report.pay_period_days), f"one pay period: {report.pay_period_days} days"),
        note=f"Status changes per month: {counts}.",
    )
    return f'<section id="charts"><h2>At a glance</h2>{enrolment}{flags}{lag}</section>'


def _places(report: ControlsReport) -> str:
    headings = [
        ("Ministry", False),
        ("Office", False),
        ("Active", True),
        ("Enrolled", True),
        ("Rate", True),
        *((FLAG_NAMES[f], True) for f in FLAGS),
    ]

    def cells(g: Group, ministry: str, office: str) -> list[object]:
        rate = _share(g.enrolment_rate) if g.active else "—"
        flags = [_int(g.flags.get(f, 0)) for f in FLAGS]
        return [ministry, office, _int(g.active), _int(g.enrolled), rate, *flags]

    rows = [cells(g, _ministry(g.ministry), g.office or "—") for g in report.groups]
    total = cells(report.total, "Total", "")
    return (
        '<section id="places"><h2>By ministry and office</h2>'
        f"{_table(headings, rows, foot=total)}</section>"
    )


def _capped(items: Sequence[object], limit: int, what: str) -> str:
    if len(items) <= limit:
        return ""
    return (
        f'<p class="note">The first {_int(limit)} of {_int(len(items))} {_e(what)} are listed; '
        "the CSV and JSON forms of this report list them all.</p>"
    )


def _late(report: ControlsReport, limit: int) -> str:
    late: list[Change] = report.late
    intro = (
        f"<p>Status changes recorded in the period: {_int(len(report.changes))}; reported more "
        f"than {report.late_after_days} days after they took effect: {_int(len(late))}. "
        "Pay periods at risk are the pay periods begun while the change was unknown: salaries "
        "that may have been paid to someone retired, dismissed or dead.</p>"
    )
    if not late:
        return f'<section id="late"><h2>Late status changes</h2>{intro}</section>'
    headings = [
        ("Employee", False),
        ("Ministry", False),
        ("Office", False),
        ("Status", False),
        ("Status date", True),
        ("Recorded", True),
        ("Lag (days)", True),
        ("Pay periods at risk", True),
        ("Retroactive", False),
    ]
    rows = [
        [
            c.employee_id,
            _ministry(c.ministry),
            c.office or "—",
            c.status,
            c.status_date.isoformat(),
            c.recorded_on.isoformat(),
            _int(c.lag_days),
            _int(c.pay_periods_at_risk),
            "yes" if c.retroactive else "no",
        ]
        for c in late[:limit]
    ]
    return (
        f'<section id="late"><h2>Late status changes</h2>{intro}'
        f"{_table(headings, rows)}{_capped(late, limit, 'late changes')}</section>"
    )


def _retroactive(report: ControlsReport) -> str:
    changes: dict[str, list[Change]] = defaultdict(list)
    for c in report.changes:
        changes[c.ministry].append(c)
    headings = [("Ministry", False), ("Changes", True), ("Retroactive", True), ("Share", True)]

    def cells(name: str, items: list[Change]) -> list[object]:
        retro = sum(c.retroactive for c in items)
        share = _share(retro / len(items)) if items else "—"
        return [name, _int(len(items)), _int(retro), share]

    rows = [cells(_ministry(m), changes[m]) for m in sorted(changes)]
    return (
        '<section id="retroactive"><h2>Retroactive changes</h2>'
        "<p>Changes recorded in the period that took effect before it began, as a share of the "
        "period's changes (PEFA PI-23: few retroactive corrections means changes are made on "
        "time).</p>"
        f"{_table(headings, rows, foot=cells('Total', report.changes))}</section>"
    )


def _flagged(report: ControlsReport, limit: int) -> str:
    by_flag: dict[str, list[Flagged]] = defaultdict(list)
    for f in report.flagged:
        by_flag[f.flag].append(f)
    headings = [("Employee", False), ("Ministry", False), ("Office", False)]
    parts = ['<section id="flagged"><h2>Flagged people</h2>']
    for flag in FLAGS:
        people = by_flag.get(flag, [])
        rows = [[p.employee_id, _ministry(p.ministry), p.office or "—"] for p in people[:limit]]
        body = _table(headings, rows) if rows else '<p class="none">Nobody.</p>'
        parts.append(
            f'<details id="flag-{_e(flag)}"><summary>{_e(FLAG_NAMES[flag])} ({_e(flag)}): '
            f"{_int(len(people))}</summary>"
            f'<p class="meaning">{_e(MEANING[flag][:1].upper() + MEANING[flag][1:])}.</p>{body}'
            f"{_capped(people, limit, 'people')}</details>"
        )
    parts.append("</section>")
    return "".join(parts)


def _approvals(report: ControlsReport) -> str:
    intro = "<p>Maker-checker requests made in the period, by action and outcome.</p>"
    if not report.approvals:
        return (
            f'<section id="approvals"><h2>Maker-checker approvals</h2>{intro}'
            '<p class="none">None in the period.</p></section>'
        )
    headings = [("Action", False), ("Outcome", False), ("Requests", True)]
    rows = [
        [action.replace("_", " "), outcome, _int(count)]
        for action, outcomes in report.approvals.items()
        for outcome, count in outcomes.items()
    ]
    total = sum(n for outcomes in report.approvals.values() for n in outcomes.values())
    return (
        f'<section id="approvals"><h2>Maker-checker approvals</h2>{intro}'
        f"{_table(headings, rows, foot=['Total', '', _int(total)])}</section>"
    )


def as_html(
    report: ControlsReport,
    *,
    issuer_name: str,
    generated_at: datetime,
    list_limit: int = LIST_LIMIT,
) -> bytes:
    """The report as one self-contained HTML page, UTF-8."""
    css, style_hash = _style()
    policy = _e(content_security_policy(style_hash))
    title = f"Payroll controls {report.as_of:%Y-%m} — {issuer_name}"
    if report.ministry is not None:
        title += f" — {report.ministry}"
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_e(title)}</title><style>{css}</style></head><body>"
        f"{_header(report, issuer_name, generated_at)}<main>"
        f"{_totals(report)}{_charts(report)}{_places(report)}{_late(report, list_limit)}"
        f"{_retroactive(report)}{_flagged(report, list_limit)}{_approvals(report)}</main>"
        "<footer><p>Enrolled: active in HR with a live card and a photo taken at a desk. "
        "Reporting lag: days from the date a status took effect to the day the register "
        "learned it. This page is a read of the register; it changed nothing.</p></footer>"
        "</body></html>\n"
    )
    return page.encode("utf-8")
