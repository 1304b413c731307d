"""The officials' web verifier in real headless Chromium at 360 x 640: scan a rendered card
face (photo and fake camera), offline after one visit, revocation, tampering, stale data, the
NFC tap URL (with its QR, and without it: checked online by credential id), and every
language with its own fonts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright

from idsvc.credentials.views import CredentialView
from idsvc.formats.claim169 import fragment_of
from idsvc.register.photos import Photos
from tests.support.browser import PHONE, Site, launch, site
from tests.support.card_pictures import card_images, save_photo, save_y4m
from tests.support.card_print import portrait_bytes

KHMER_NAME, KHMER_LATIN = "សុខ ចាន់ថា", "Sok Chantha"
LAO_EMPLOYEE, LAO_NAME = "LA-MOHA-000101", "ສົມພອນ ແກ້ວມະນີ"
# Functions, not expressions: a string expression would need eval, which the page's CSP forbids.
READY = "() => document.documentElement.dataset.ready === '1'"
# The status lists' exp (24 x ttl = 8 days) lies beyond the 7-day hard limit, so that the
# hard limit is what makes data stale in the TRUST_STALE test. The service answers from its
# database at once (no per-worker cache), so a revocation shows in the very next check.
TTL = 8 * 3600


@dataclass
class World:
    site: Site
    khmer: CredentialView
    lao: CredentialView
    card_png: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("web")
    with site(tmp, status_list_ttl=TTL, verify_cache_ttl=0) as s:
        now = datetime.now(UTC)
        khmer = s.service.credentials.issue("KH-MCS-010002", actor="test-desk", now=now)
        lao = s.service.credentials.issue(LAO_EMPLOYEE, actor="test-desk", now=now)
        image = card_images(khmer, name_local=KHMER_NAME, name_latin=KHMER_LATIN)
        yield World(s, khmer, lao, save_photo(image, tmp / "card.png"))


def open_page(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(READY)
    return page


def result(page: Page, *, source: str | None = None) -> str:
    page.wait_for_selector("#result:not([hidden])")
    if source is not None:
        page.wait_for_function(
            "(s) => document.getElementById('result').dataset.source === s", arg=source
        )
    verdict = page.get_attribute("#result", "data-verdict")
    assert verdict is not None
    return verdict


def paste(page: Page, text: str) -> None:
    page.locator("#paste-box").evaluate("(box) => { box.open = true; }")
    page.fill("#paste", text)
    page.click("#check")


def tamper(token: str) -> str:
    head, payload, signature = token.split(".")
    middle = len(signature) // 2
    swapped = "B" if signature[middle] != "B" else "C"
    return ".".join([head, payload, signature[:middle] + swapped + signature[middle + 1 :]])


def go_offline_and_reload(context: BrowserContext, page: Page) -> None:
    # The workers must hold the page before the network goes away.
    page.wait_for_function("() => document.documentElement.dataset.installed === '1'")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    context.set_offline(True)
    page.reload()
    page.wait_for_function(READY)


def test_photo_of_the_card_face_is_valid_with_both_scripts(
    world: World, phone: BrowserContext, artefacts: Path
) -> None:
    page = open_page(phone, f"{world.site.base_url}/verify/")
    page.set_input_files("#photo", str(world.card_png))
    assert result(page, source="server") == "VALID"
    assert page.text_content("#holder-name") == KHMER_NAME
    assert page.text_content("#holder-latin") == KHMER_LATIN
    assert page.get_attribute("#result", "class") == "green"
    assert "VALID" in (page.text_content("#phone-verdict") or "")
    page.screenshot(path=str(artefacts / "photo-valid.png"))


def test_camera_stream_of_the_card_face_is_valid(
    world: World, playwright_session: Playwright, tmp_path: Path
) -> None:
    from PIL import Image

    video = save_y4m(Image.open(world.card_png), tmp_path / "card.y4m")
    browser = launch(
        playwright_session,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    )
    try:
        context = browser.new_context(
            viewport=PHONE, is_mobile=True, has_touch=True, service_workers="block"
        )
        context.grant_permissions(["camera"], origin=world.site.base_url)
        page = open_page(context, f"{world.site.base_url}/verify/")
        page.click("#scan")
        assert result(page) == "VALID"
        assert page.text_content("#holder-name") == KHMER_NAME
        assert page.locator("#camera").is_hidden()
    finally:
        browser.close()


def test_offline_after_one_visit_verifies_from_the_cache(
    world: World, installed_phone: BrowserContext
) -> None:
    page = open_page(installed_phone, f"{world.site.base_url}/verify/")
    go_offline_and_reload(installed_phone, page)
    assert page.evaluate("() => navigator.onLine") is False
    paste(page, world.lao.token)
    assert result(page) == "VALID"
    assert page.get_attribute("#result", "data-source") == "phone"
    assert page.text_content("#holder-name") == LAO_NAME
    assert "Offline" in (page.text_content("#server-verdict") or "")
    assert "old" in (page.text_content("#data-age") or "")
    # A card tapped while offline opens its URL under /v/: the second worker serves the page.
    assert world.khmer.qr_text is not None
    page.goto(f"{world.site.base_url}/v/{world.khmer.id}#{fragment_of(world.khmer.qr_text)}")
    assert result(page) == "VALID"
    assert page.text_content("#holder-name") == KHMER_NAME


def test_revoked_on_the_server_shows_revoked_after_a_refresh(
    world: World, installed_phone: BrowserContext
) -> None:
    now = datetime.now(UTC)
    credential = world.site.service.credentials.issue("LA-MOHA-000102", actor="test-desk", now=now)
    page = open_page(installed_phone, f"{world.site.base_url}/verify/")
    paste(page, credential.token)
    assert result(page, source="server") == "VALID"
    world.site.service.credentials.revoke(credential.id, reason="card lost", by=None, now=now)
    page.click("#again")
    paste(page, credential.token)  # online: the service already knows
    assert result(page, source="server") == "REVOKED"
    page.click("#again")
    page.click("#refresh")
    page.wait_for_function(
        "() => document.getElementById('message').textContent.includes('up to date')"
    )
    go_offline_and_reload(installed_phone, page)
    paste(page, credential.token)  # offline: the phone's refreshed list knows too
    assert result(page) == "REVOKED"
    assert page.get_attribute("#result", "class") == "red"


def test_one_tampered_character_is_a_bad_signature(world: World, phone: BrowserContext) -> None:
    page = open_page(phone, f"{world.site.base_url}/verify/")
    paste(page, tamper(world.khmer.token))
    assert result(page) == "BAD_SIGNATURE"
    assert page.get_attribute("#result", "class") == "red"
    assert page.text_content("#holder-name") == ""
    assert not page.is_visible("#holder-details")  # no empty Ministry/Position labels


def test_past_the_hard_limit_is_trust_stale_never_valid(
    world: World, installed_phone: BrowserContext
) -> None:
    page = open_page(installed_phone, f"{world.site.base_url}/verify/")
    go_offline_and_reload(installed_phone, page)
    page.clock.set_fixed_time(datetime.now(UTC) + timedelta(days=7, hours=12))
    page.reload()
    page.wait_for_function(READY)
    paste(page, world.khmer.token)
    assert result(page) == "TRUST_STALE"
    assert page.get_attribute("#result", "class") == "orange"
    assert "days" in (page.text_content("#data-age") or "")


def test_the_card_tap_url_verifies_without_any_action(world: World, phone: BrowserContext) -> None:
    assert world.khmer.qr_text is not None
    tap = f"{world.site.base_url}/v/{world.khmer.id}#{fragment_of(world.khmer.qr_text)}"
    page = phone.new_page()
    page.goto(tap)
    assert result(page) == "VALID"
    assert page.text_content("#holder-name") == KHMER_NAME
    # A JWT in the fragment of the page's own URL works the same way.
    page.goto(f"{world.site.base_url}/verify/#{world.lao.token}")
    page.reload()
    assert result(page) == "VALID"
    assert page.text_content("#holder-name") == LAO_NAME


# The page's words for a tap link without its QR, in each language (i18n.js).
BY_ID_OFFLINE = {
    "en": "cannot be reached: connect to the internet, or scan the QR on the back",
    "lo": "ຕິດຕໍ່ລະບົບບໍ່ໄດ້: ເຊື່ອມຕໍ່ອິນເຕີເນັດ ຫຼື ສະແກນ QR ດ້ານຫຼັງບັດ",
    "km": "មិនអាចភ្ជាប់ប្រព័ន្ធបានទេ៖ សូមភ្ជាប់អ៊ីនធឺណិត ឬស្កេន QR នៅខាងក្រោយកាត",
}
UNKNOWN_CREDENTIAL = {
    "en": "The service knows no card with this number.",
    "lo": "ລະບົບບໍ່ຮູ້ຈັກບັດທີ່ມີເລກນີ້.",
    "km": "ប្រព័ន្ធមិនស្គាល់កាតដែលមានលេខនេះទេ។",
}


def said(page: Page, key: str) -> str:
    page.wait_for_function("(k) => document.getElementById('message').dataset.key === k", arg=key)
    return page.text_content("#message") or ""


def in_every_language(page: Page, key: str, words: dict[str, str]) -> None:
    for lang, text in words.items():
        page.select_option("#language", lang)
        assert text in said(page, key), lang
    page.select_option("#language", "en")


def test_a_tap_link_without_its_code_is_checked_online_by_credential_id(
    world: World, phone: BrowserContext, artefacts: Path
) -> None:
    # A card whose NFC file had no room for the QR, or a link that lost its #fragment.
    now = datetime.now(UTC)
    lao = world.site.service.credentials.issue("LA-MOHA-000103", actor="test-desk", now=now)
    Photos(world.site.service.infra.db).store(lao.employee_id, portrait_bytes(), actor="t", now=now)
    page = open_page(phone, f"{world.site.base_url}/v/{lao.id}")
    assert result(page, source="server") == "VALID"
    assert page.get_attribute("#result", "data-checked") == "id"
    assert page.text_content("#holder-name") == "ສຸວັນນີ ລັດຕະນະວົງ"
    assert page.text_content("#holder-latin") == "Souvanny Lattanavong"
    assert page.text_content("#holder-position")
    # An id read off a link proves nobody holds the card: no photo to compare a face with.
    assert page.locator("#holder-photo").is_hidden()
    assert "card's number" in (page.text_content("#phone-verdict") or "")
    assert "VALID" in (page.text_content("#server-verdict") or "")
    page.screenshot(path=str(artefacts / "by-id-valid.png"))
    # The same reasons as a scanned card: a revoked card is red.
    world.site.service.credentials.revoke(lao.id, reason="lost", by=None, now=now)
    page.reload()
    assert result(page, source="server") == "REVOKED"
    assert page.get_attribute("#result", "class") == "red"
    # An id the service never issued: said plainly, in each language, and nothing is shown.
    page.goto(f"{world.site.base_url}/v/{uuid.uuid4()}")
    page.wait_for_function(READY)
    in_every_language(page, "unknown_credential", UNKNOWN_CREDENTIAL)
    assert page.locator("#result").is_hidden()


def test_a_tap_link_without_its_code_offline_says_connect_or_scan(
    world: World, installed_phone: BrowserContext, phone: BrowserContext
) -> None:
    tap = f"{world.site.base_url}/v/{world.lao.id}"
    # The service out of reach while the phone believes it is online.
    phone.route("**/v1/credentials/**", lambda route: route.abort())
    page = open_page(phone, tap)
    in_every_language(page, "by_id_offline", BY_ID_OFFLINE)
    assert page.locator("#result").is_hidden()
    # Installed, then offline: the worker serves the page, which asks the official to connect.
    page = open_page(installed_phone, f"{world.site.base_url}/verify/")
    go_offline_and_reload(installed_phone, page)
    page.goto(tap)
    page.wait_for_function(READY)
    in_every_language(page, "by_id_offline", BY_ID_OFFLINE)
    assert page.locator("#result").is_hidden()
    # Back online, the waiting check goes through by itself.
    installed_phone.set_offline(False)
    assert result(page, source="server") == "VALID"
    assert page.text_content("#holder-name") == LAO_NAME


TOFU_CHECK = """
async ([family, text]) => {
  await document.fonts.ready;
  const faces = [...document.fonts].filter((f) => f.family.replace(/"/g, "") === family);
  const loaded = faces.some((f) => f.status === "loaded");
  const context = document.createElement("canvas").getContext("2d");
  context.font = `40px "${family}"`;
  const notdef = context.measureText("\\u{10FFFD}").width;
  const widths = [...text].filter((c) => c.trim()).map((c) => context.measureText(c).width);
  return { loaded, tofu: widths.every((w) => Math.abs(w - notdef) < 0.01) };
}
"""

SMALLEST_TEXT = """
() => [...document.querySelectorAll("#result *, #home *, header *")]
  .filter((e) => e.offsetParent !== null && e.textContent.trim() && !e.children.length)
  .map((e) => parseFloat(getComputedStyle(e).fontSize))
  .reduce((a, b) => Math.min(a, b), 99)
"""


LANGUAGES = [
    ("en", None, "VALID"),
    ("lo", "Noto Sans Lao", "ຖືກຕ້ອງ"),
    ("km", "Noto Sans Khmer", "មានសុពលភាព"),
]


def test_every_language_renders_with_its_fonts(
    world: World, phone: BrowserContext, artefacts: Path
) -> None:
    page = open_page(phone, f"{world.site.base_url}/verify/")
    for lang, family, verdict_word in LANGUAGES:
        if page.is_visible("#again"):
            page.click("#again")
        page.select_option("#language", lang)
        assert page.get_attribute("html", "lang") == lang
        # Only what this phone can do is offered (Chromium on Linux has no Web NFC).
        assert page.locator("#stop").is_hidden() and page.locator("#tap").is_hidden()
        assert page.locator("#scan").is_visible() and page.locator("#photo-label").is_visible()
        page.screenshot(path=str(artefacts / f"home-{lang}.png"))
        paste(page, world.lao.token if lang == "lo" else world.khmer.token)
        assert result(page, source="server") == "VALID"
        assert page.text_content("#verdict") == verdict_word
        assert page.evaluate(SMALLEST_TEXT) >= 16, "no text under 16 px on a phone"
        page.screenshot(path=str(artefacts / f"valid-{lang}.png"))
        for script_family, sample in (
            ("Noto Sans Lao", LAO_NAME + (verdict_word if lang == "lo" else "")),
            ("Noto Sans Khmer", KHMER_NAME + (verdict_word if lang == "km" else "")),
        ):
            check = page.evaluate(TOFU_CHECK, [script_family, sample])
            assert check == {"loaded": True, "tofu": False}, (lang, script_family, check)
        if family is not None:
            font = page.evaluate(
                "() => getComputedStyle(document.getElementById('verdict')).fontFamily"
            )
            assert family in font
