"""The controls report's HTML page as markup: escaped, self-contained, complete (the page in
Chromium is ``test_controls_html_browser``)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from datetime import UTC, date, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest

from idsvc.reports.controls import ControlsReport, Group
from idsvc.reports.controls_html import LIST_LIMIT, as_html
from tests.idsvc.reports.sample import (
    EMPTY,
    HOSTILE_ID,
    IMG,
    KHMER,
    LAO,
    LONG_LIST,
    SCRIPT,
    sample_report,
)

GENERATED = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
ISSUER = "Ministry of Civil Service <b>bold</b>"


class Markup(HTMLParser):
    """Every element with its attributes, the text, and the style block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style = ""
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "style":
            self.style += data
        else:
            self.text.append(data)

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]


def parsed(page: bytes) -> Markup:
    markup = Markup()
    markup.feed(page.decode("utf-8"))
    return markup


@pytest.fixture(scope="module")
def page() -> bytes:
    return as_html(sample_report(), issuer_name=ISSUER, generated_at=GENERATED)


def test_every_register_value_is_escaped(page: bytes) -> None:
    text = page.decode("utf-8")
    for hostile in (SCRIPT, IMG, HOSTILE_ID, ISSUER):
        assert hostile not in text
    markup = parsed(page)
    tags = {tag for tag, _ in markup.elements}
    assert not tags & {"script", "img", "iframe", "object", "embed", "b"}
    handlers = [(t, n) for t, attrs in markup.elements for n in attrs if n.startswith("on")]
    assert handlers == []
    # ...and each is there, as text a reader sees.
    words = "".join(markup.text)
    for hostile in (SCRIPT, IMG, HOSTILE_ID, ISSUER):
        assert hostile in words
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_the_page_fetches_nothing_and_allows_only_its_own_style(page: bytes) -> None:
    markup = parsed(page)
    (meta,) = [m for m in markup.tags("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    policy = meta["content"] or ""
    rules = dict(rule.strip().split(" ", 1) for rule in policy.split(";"))
    assert rules["default-src"] == "'none'"
    assert rules["font-src"] == "data:"
    assert "script-src" not in rules and "unsafe-inline" not in policy
    digest = base64.b64encode(hashlib.sha256(markup.style.encode()).digest()).decode()
    assert rules["style-src"] == f"'sha256-{digest}'", "the hash is the style block's"
    # The policy comes before anything it must govern.
    assert markup.elements.index(("meta", meta)) < [t for t, _ in markup.elements].index("style")
    # No URL anywhere but data: fonts; no link, no external reference.
    assert not markup.tags("link") and not markup.tags("script")
    for _, attrs in markup.elements:
        for name in ("src", "href", "xlink:href", "action"):
            assert name not in attrs
    urls = re.findall(r"url\(\"?([a-z]+):", markup.style)
    assert urls == ["data", "data"]
    assert "http://" not in page.decode() and "https://" not in page.decode()
    assert "@page { size: A4" in markup.style


def test_the_fonts_are_embedded_for_lao_and_khmer(page: bytes) -> None:
    style = parsed(page).style
    faces = re.findall(r"@font-face \{([^}]*)\}", style)
    assert len(faces) == 2
    ranges = " ".join(faces)
    assert "U+0E80-0EFF" in ranges and "U+1780-17FF" in ranges
    for face in faces:
        (data,) = re.findall(r"base64,([A-Za-z0-9+/=]+)", face)
        assert base64.b64decode(data)[:4] == b"wOF2"


def test_header_totals_and_names_are_there(page: bytes) -> None:
    words = " ".join(parsed(page).text)
    for expected in (
        "2026-11-01 to 2026-11-30",
        "All ministries",
        "2026-12-01 08:30 UTC",
        "3,637",  # active
        "1,920",  # enrolled
        "52.8%",  # 1,920 / 3,637
        "85.0% (1,020 of 1,200)",
        "37.5% (900 of 2,400)",
        "33.3%",  # retroactive share
        LAO,
        KHMER,
    ):
        assert expected in words, expected
    # The names are characters, not character references: the page is UTF-8.
    assert LAO.encode() in page and KHMER.encode() in page


def test_maker_checker_outcomes_are_counted(page: bytes) -> None:
    words = [w.strip() for w in parsed(page).text if w.strip()]
    at = words.index("Maker-checker approvals")
    assert words[at + 2 : at + 16] == [
        "Action",
        "Outcome",
        "Requests",
        "hr correction",
        "pending",
        "2",
        "revoke",
        "done",
        "3",
        "revoke",
        "rejected",
        "1",
        "Total",
        "6",
    ]


def test_a_ministry_with_nobody_active_divides_by_nothing(page: bytes) -> None:
    words = parsed(page).text
    at = words.index(EMPTY)
    assert words[at + 1] == "no active staff"


def test_long_lists_are_folded_and_capped() -> None:
    report = sample_report()
    page = as_html(report, issuer_name="x", generated_at=GENERATED, list_limit=100)
    markup = parsed(page)
    details = markup.tags("details")
    assert [d["id"] for d in details] == [
        "flag-CONTRACT_ENDED",
        "flag-PAST_RETIREMENT_AGE",
        "flag-DUPLICATE_IDENTITY",
        "flag-NO_CARD",
        "flag-ACCOUNT_CHANGED",
    ]
    assert all("open" not in d for d in details), "a long list never buries the page"
    words = " ".join(markup.text)
    assert f"Never enrolled (NO_CARD): {LONG_LIST:,}" in words
    assert f"The first 100 of {LONG_LIST:,} people are listed" in words
    assert "KH-MOEYS-000099" in words and "KH-MOEYS-000100" not in words
    full = " ".join(parsed(as_html(report, issuer_name="x", generated_at=GENERATED)).text)
    assert LIST_LIMIT < LONG_LIST and f"KH-MOEYS-{LIST_LIMIT - 1:06d}" in full


def test_late_changes_show_lag_and_pay_periods_at_risk(page: bytes) -> None:
    markup = parsed(page)
    cells = [a for a in markup.tags("td") if a.get("data-label")]
    assert {a["data-label"] for a in cells} >= {"Lag (days)", "Pay periods at risk"}
    words = [w.strip() for w in markup.text if w.strip()]
    at = words.index("KH-MOEYS-000777")
    assert words[at : at + 9] == [
        "KH-MOEYS-000777",
        KHMER,
        "មន្ទីរខេត្តព្រះវិហារ",
        "deceased",
        "2026-10-15",
        "2026-11-24",
        "40",
        "3",
        "yes",
    ]
    # The change reported 3 days after it took effect is not late, hence not listed.
    assert "LA-MOES-000042" not in words


def test_charts_print_their_numbers_as_svg_text(page: bytes) -> None:
    text = page.decode("utf-8")
    svgs = re.findall(r"<svg .*?</svg>", text)
    numbers = [re.findall(r"<text [^>]*>([^<]*)</text>", s) for s in svgs]
    flat = [n for ns in numbers for n in ns]
    assert "85.0% (1,020 of 1,200)" in flat and "no active staff" in flat
    assert "1,500" in flat and "7" in flat
    assert [n for n in flat if n in {"12.5", "9", "31", "17", "20"}] == [
        "12.5",
        "9",
        "31",
        "17",
        "20",
    ]
    assert "none" in flat, "a month without changes says so instead of drawing zero"
    for s in svgs:
        assert 'role="img"' in s and "aria-label=" in s


def test_an_empty_register_still_gives_a_page() -> None:
    as_of = date(2026, 11, 30)
    empty = ControlsReport(
        as_of=as_of,
        period_start=as_of.replace(day=1),
        ministry="ກະຊວງ <x>",
        pay_period_days=30,
        late_after_days=30,
        groups=[],
        total=Group("ກະຊວງ <x>", ""),
        flagged=[],
        changes=[],
        median_lag_days=None,
        p90_lag_days=None,
        retroactive_share=None,
        lag_by_month=[],
        approvals={},
    )
    local = datetime(2026, 12, 1, 15, 30, tzinfo=timezone(timedelta(hours=7)))
    words = " ".join(parsed(as_html(empty, issuer_name="x", generated_at=local)).text)
    assert "ກະຊວງ <x>" in words and "2026-12-01 08:30 UTC" in words
    assert "Nothing to show." in words and "None in the period." in words


def test_the_same_report_gives_the_same_bytes() -> None:
    report = sample_report()
    again = dataclasses.replace(report)
    first = as_html(report, issuer_name="x", generated_at=GENERATED)
    assert first == as_html(again, issuer_name="x", generated_at=GENERATED)
