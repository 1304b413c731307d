"""The controls report's HTML page in Debian's Chromium (Playwright, no downloaded browser),
opened from a file:// URL as from a USB stick, on a 360 x 640 phone and printed to A4."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont, ImageStat
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, Route

from idsvc.reports import controls_html
from idsvc.reports.controls_html import as_html
from tests.idsvc.reports.sample import KHMER, LAO, LAO_OFFICE, sample_report
from tests.support.browser import PHONE, launch
from tests.support.shaping import SIZE, coverage, harfbuzz_line

GENERATED = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    b = launch(playwright_session)
    yield b
    b.close()


def write_page(folder: Path, name: str = "controls.html") -> str:
    path = folder / name
    path.write_bytes(as_html(sample_report(), issuer_name="MCS", generated_at=GENERATED))
    return path.as_uri()


class Visit:
    """A page opened at phone size, every request and console error recorded; any request
    but the page itself is refused."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.url = url
        self.context = browser.new_context(viewport=PHONE, locale="en-US")
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.refused: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page.on("request", self._request)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, wait_until="load")
        self.page.evaluate("document.fonts.ready.then(() => true)")

    def _route(self, route: Route) -> None:
        if route.request.url == self.url:
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(message.text)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def visit(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Visit]:
    v = Visit(browser, write_page(tmp_path_factory.mktemp("report")))
    yield v
    v.close()


def test_the_page_asks_for_nothing_but_itself_and_reports_no_error(visit: Visit) -> None:
    assert visit.url.startswith("file://")
    assert visit.requests == [visit.url]
    assert visit.refused == []
    # A CSP that blocked the style block or a font would be reported here.
    assert visit.errors == []
    # ...and the style is applied: the policy lets the page's own style block through.
    colour = visit.page.evaluate("getComputedStyle(document.querySelector('h1')).color")
    assert colour == "rgb(11, 61, 145)"


def test_the_text_holds_the_numbers(visit: Visit) -> None:
    text = visit.page.inner_text("body")
    for expected in (
        "3,637",
        "1,920",
        "52.8%",
        "33.3%",
        "2026-12-01 08:30 UTC",
        LAO,
        KHMER,
    ):
        assert expected in text, expected
    assert visit.page.inner_text("#median-lag dd") == "20"
    assert visit.page.inner_text("#p90-lag dd") == "40"
    assert visit.page.inner_text("#total-rate dd") == "52.8%"
    assert visit.page.inner_text("#retro-share dd") == "33.3%"


def test_the_charts_are_svg_with_their_numbers_as_text(visit: Visit) -> None:
    charts = visit.page.locator("#charts figure.chart")
    assert charts.count() == 3
    svg_text = visit.page.evaluate(
        "[...document.querySelectorAll('#charts svg text')].map((t) => t.textContent)"
    )
    for expected in ("85.0% (1,020 of 1,200)", "37.5% (900 of 2,400)", "1,500", "31", "12.5"):
        assert expected in svg_text, expected
    # Drawn to scale on screen: the enrolment bars are 0 %, nobody active, 85 % and 37.5 %.
    widths = visit.page.evaluate(
        "[...document.querySelectorAll('#charts figure:first-of-type rect.bar')]"
        ".map((r) => r.getBoundingClientRect().width)"
    )
    assert widths[:2] == [0, 0]
    assert widths[2] > 50 and widths[2] / widths[3] == pytest.approx(85 / 37.5, rel=0.02)


def test_nothing_is_wider_than_a_phone(visit: Visit) -> None:
    widths = visit.page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
    )
    assert widths[2] == PHONE["width"]
    assert max(widths[:2]) <= widths[2], widths
    # Opened, the long list of people still fits.
    visit.page.click("#flag-NO_CARD summary")
    assert visit.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    visit.page.click("#flag-NO_CARD summary")


def test_a_screenshot_shows_a_page(visit: Visit, tmp_path: Path) -> None:
    shot = tmp_path / "phone.png"
    visit.page.screenshot(path=str(shot), full_page=True)
    image = Image.open(shot).convert("L")
    assert image.width == PHONE["width"] and image.height > 2 * PHONE["height"]
    histogram = image.histogram()  # grey levels 0-255 of a white page with dark text and bars
    dark, white = sum(histogram[:128]), histogram[255]
    pixels = image.width * image.height
    assert 0.02 * pixels < dark < 0.5 * pixels, "not blank, not black"
    assert white > 0.4 * pixels
    assert ImageStat.Stat(image).stddev[0] > 20


def test_it_prints_on_a4(visit: Visit, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    visit.page.emulate_media(media="print")
    try:
        visit.page.pdf(path=str(pdf), format="A4", print_background=True)
    finally:
        visit.page.emulate_media(media="screen")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    pages = re.search(r"^Pages:\s+(\d+)$", info.stdout, re.MULTILINE)
    assert pages is not None and int(pages.group(1)) > 0
    assert "(A4)" in info.stdout
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "3,637" in text and "Payroll controls report" in text


# Shaping is tested, not assumed (as for the card face, tests/cardio/test_card_face_shaping.py):
# a name drawn by Chromium in the page's own font stack, large, must put every glyph where
# HarfBuzz puts it with the font the embedded subset was cut from (make_fonts.py: Debian's
# fonts-noto-core; the subset keeps every layout feature). Drawn unshaped (Pillow's basic
# layout), the same names must not match: the Khmer coeng (U+17D2) makes RO a subscript, and
# the Lao tone mark stacks on the vowel above it.
NOTO = Path("/usr/share/fonts/truetype/noto")
SHAPED = [
    (KHMER, "NotoSansKhmer-Regular.ttf", "km", "Noto Sans Khmer"),
    (LAO_OFFICE, "NotoSansLao-Regular.ttf", "lo", "Noto Sans Lao"),
]
DRAW_LARGE = """
([text, size]) => {
  const line = document.createElement("div");
  line.id = "probe";
  line.textContent = text;
  Object.assign(line.style, {
    fontSize: `${size}px`, lineHeight: `${3 * size}px`, whiteSpace: "pre",
    display: "inline-block", padding: `0 ${size}px`, color: "#000", background: "#fff",
  });
  document.querySelector("main").prepend(line);  // the font stack is the page's own
  return line;
}
"""


def _ink(png: bytes) -> Image.Image:
    return (
        Image.open(io.BytesIO(png)).convert("L").point(lambda v: 255 if v < 128 else 0).convert("1")
    )


def _binary(mask: Image.Image) -> Image.Image:
    return mask.convert("L").point(lambda v: 255 if v >= 128 else 0).convert("1")


def drawn_large(page: Page, text: str) -> tuple[Image.Image, list[dict[str, object]]]:
    """``text`` drawn by the page at ``SIZE`` px (as ink) and the fonts Chromium drew it with."""
    line = page.evaluate_handle(DRAW_LARGE, [text, SIZE]).as_element()
    assert line is not None
    try:
        return _ink(line.screenshot()), fonts_for(page, "#probe")
    finally:
        line.evaluate("(e) => e.remove()")


def script_fonts(fonts: list[dict[str, object]], family: str) -> list[tuple[object, object]]:
    """(family, from the page?) of each font that drew a character of ``family``'s script."""
    script = family.rsplit(" ", 1)[-1]
    return [(f["familyName"], f["isCustomFont"]) for f in fonts if script in str(f["familyName"])]


@pytest.mark.parametrize(("name", "font", "language", "family"), SHAPED, ids=["khmer", "lao"])
def test_names_are_shaped_as_harfbuzz_shapes_them(
    visit: Visit, name: str, font: str, language: str, family: str
) -> None:
    assert "\u17d2" in name or language == "lo"
    reference, glyphs = harfbuzz_line(NOTO / font, name, language)
    assert 0 not in glyphs
    ours, fonts = drawn_large(visit.page, name)
    # Drawn by the embedded font (a data: URI, hence "custom"), never by one of this machine.
    assert script_fonts(fonts, family) == [(family, True)], fonts
    # ...all of it: as many glyphs as HarfBuzz makes of it (spaces come from the system font).
    (own,) = [f for f in fonts if f["isCustomFont"]]
    assert own["glyphCount"] == len(glyphs) - name.count(" "), fonts
    assert coverage(ours, reference) > 0.97
    assert coverage(reference, ours) > 0.97

    unshaped = Image.new("L", reference.size, 0)
    basic = ImageFont.truetype(str(NOTO / font), SIZE, layout_engine=ImageFont.Layout.BASIC)
    ImageDraw.Draw(unshaped).text((SIZE, 2 * SIZE), name, font=basic, fill=255, anchor="ls")
    worst = min(coverage(_binary(unshaped), reference), coverage(reference, _binary(unshaped)))
    assert worst < 0.9, "the comparison cannot tell shaped from unshaped text"


def fonts_for(page: Page, selector: str) -> list[dict[str, object]]:
    """The fonts Chromium actually drew a node's text with (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, selector
        fonts: list[dict[str, object]] = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})[
            "fonts"
        ]
        return fonts
    finally:
        cdp.detach()


def name_selector(page: Page, name: str) -> str:
    index = page.evaluate(
        "(name) => [...document.querySelectorAll('#charts .name')]"
        ".findIndex((e) => e.textContent === name)",
        name,
    )
    assert index >= 0, name
    return f"#charts figure:first-of-type .row:nth-of-type({index + 1}) .name"


@pytest.mark.parametrize(("name", "family"), [(KHMER, "Noto Sans Khmer"), (LAO, "Noto Sans Lao")])
def test_names_are_drawn_with_the_page_own_fonts(visit: Visit, name: str, family: str) -> None:
    fonts = fonts_for(visit.page, name_selector(visit.page, name))
    own = [f for f in fonts if f["isCustomFont"]]
    assert [f["familyName"] for f in own] == [family], fonts
    letters = sum(1 for c in name if not c.isspace())
    assert isinstance(own[0]["glyphCount"], int) and own[0]["glyphCount"] >= letters // 2
    # No glyph of the script came from a font installed on this machine.
    assert not [f for f in fonts if not f["isCustomFont"] and "Khmer" in str(f["familyName"])]
    assert not [f for f in fonts if not f["isCustomFont"] and "Lao" in str(f["familyName"])]


def test_without_its_fonts_the_page_would_fail_the_font_tests(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same page with no @font-face draws with this machine's fonts, which the
    tests above tell apart (so they fail if the embedded fonts go missing)."""
    monkeypatch.setattr(controls_html, "_font_faces", lambda: "")
    controls_html._style.cache_clear()
    try:
        bare = Visit(browser, write_page(tmp_path, "bare.html"))
    finally:
        controls_html._style.cache_clear()
    try:
        assert bare.errors == []
        for name, *_ in SHAPED:
            _, fonts = drawn_large(bare.page, name)
            # This machine's fonts (Noto from Debian, or DejaVu Sans for Lao), none custom.
            assert fonts and not [f for f in fonts if f["isCustomFont"]], fonts
        fonts = fonts_for(bare.page, name_selector(bare.page, KHMER))
        assert not [f for f in fonts if f["isCustomFont"]], fonts
    finally:
        bare.close()
