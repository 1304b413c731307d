"""The phone credential in real headless Chromium: the page's "My card" takes an offer made by
``idsvc wallet offer --json``, keeps the credential across a reload (IndexedDB, a key that
cannot be exported), answers a request that an official's page (another browser context)
makes with "Ask for the phone credential", and the official sees VALID with the disclosed name
and photo; after the phone credential is revoked the next answer is REVOKED. The holder's own
page shows the record and the who-checked list, and a correction request reaches the
registrars' queue. Neither page asks anything of an origin but its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request

from idsvc.register.photos import Photos
from tests.support.browser import Site, phone_context, site
from tests.support.card_print import portrait_bytes
from tests.support.cli_runner import Cli

EMPLOYEE, NAME, LATIN = "LA-MOHA-000101", "ສົມພອນ ແກ້ວມະນີ", "Somphone Keomany"
READY = "() => document.documentElement.dataset.ready === '1'"
HELD = "() => !!document.getElementById('wallet').dataset.card"
STATUS = "(s) => document.getElementById('wallet').dataset.status === s"
TTL = 8 * 3600


@dataclass
class World:
    site: Site
    cli: Cli


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("wallet")
    with site(tmp, status_list_ttl=TTL, verify_cache_ttl=0) as s:
        svc = s.service
        Photos(svc.infra.db).store(EMPLOYEE, portrait_bytes(), actor="t", now=datetime.now(UTC))
        assert svc.settings.database_url is not None
        cli = Cli(svc.settings.home, svc.settings.database_url)
        cli.env |= {
            "IDSVC_ISSUER": svc.settings.issuer,
            "IDSVC_PUBLIC_URL": s.base_url,
            "IDSVC_STATUS_LIST_SIZE": str(svc.settings.status_list_size),
        }
        yield World(s, cli)


class Requests:
    """Every URL a browser context asked for (the page must stay on its own origin)."""

    def __init__(self, context: BrowserContext) -> None:
        self.urls: list[str] = []
        context.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        self.urls.append(request.url)

    def foreign(self, base_url: str) -> list[str]:
        own = (base_url + "/", "data:", "blob:")
        return [u for u in self.urls if not u.startswith(own)]


@pytest.fixture
def holder(browser: Browser) -> Iterator[BrowserContext]:
    context = phone_context(browser, workers=False)
    yield context
    context.close()


def offer(world: World, png: Path | None = None) -> dict[str, str]:
    """An offer by ``idsvc wallet offer --json`` (with ``png``, also its QR: ``-o FILE``)."""
    proc = world.cli("wallet", "offer", EMPLOYEE, "--json", *(["-o", str(png)] if png else []))
    assert proc.returncode == 0, proc.stderr
    answer: dict[str, str] = json.loads(proc.stdout)
    assert answer["offer_uri"].startswith("openid-credential-offer://?credential_offer=")
    return answer


def open_page(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(READY)
    return page


def open_wallet(context: BrowserContext, base_url: str) -> Page:
    page = open_page(context, f"{base_url}/verify/")
    page.click("#open-wallet")
    page.wait_for_selector("#wallet:not([hidden])")
    return page


def wallet_message(page: Page, key: str) -> None:
    page.wait_for_function(
        "(k) => document.getElementById('wallet-message').dataset.key === k", arg=key
    )


def take(page: Page, code: str) -> None:
    page.fill("#wallet-text", code)
    page.click("#wallet-go")


def receive(page: Page, answer: dict[str, str]) -> str:
    take(page, answer["offer_uri"])
    page.wait_for_selector("#tx-box:not([hidden])")
    page.fill("#tx-code", answer["tx_code"])
    page.click("#tx-ok")
    page.wait_for_function(HELD)
    card = page.get_attribute("#wallet", "data-card")
    assert card
    return card


def ask(official: Page) -> str:
    """Click "Ask for the phone credential" and return the openid4vp:// link it shows."""
    official.click("#ask")
    official.wait_for_function("() => !!document.getElementById('asking').dataset.link")
    link = official.get_attribute("#asking", "data-link")
    assert link and link.startswith("openid4vp://?client_id=x509_hash%3A")
    assert official.is_visible("#ask-qr")
    return link


def answer(
    holder_page: Page, link: str, screenshot: Path | None = None, untick: tuple[str, ...] = ()
) -> list[list[object]]:
    """Answer the official's request, sharing what is asked but the ``untick`` ones (optional
    claims the holder keeps to themselves); the claims offered, as [name, ticked, fixed]
    before any was unticked."""
    take(holder_page, link)
    holder_page.wait_for_selector("#consent:not([hidden])")
    asked: list[list[object]] = holder_page.eval_on_selector_all(
        "#consent-claims input", "(bs) => bs.map((b) => [b.value, b.checked, b.disabled])"
    )
    for name in untick:
        holder_page.uncheck(f"#consent-claims input[value='{name}']")
    if screenshot:
        holder_page.screenshot(path=str(screenshot))
    holder_page.click("#consent-send")
    wallet_message(holder_page, "w_sent")
    return asked


def verdict(official: Page) -> str:
    official.wait_for_selector("#result:not([hidden])")
    code = official.get_attribute("#result", "data-verdict")
    assert code is not None
    return code


def test_offer_hold_present_revoke_and_the_holders_own_page(
    world: World, holder: BrowserContext, browser: Browser, artefacts: Path
) -> None:
    base = world.site.base_url
    official_context = phone_context(browser, workers=False)
    seen = [Requests(holder), Requests(official_context)]
    try:
        page = open_wallet(holder, base)
        assert page.is_visible("#wallet-empty")
        credential_id = receive(page, offer(world))
        assert page.text_content("#card-name") == NAME
        assert page.text_content("#card-latin") == LATIN
        assert (page.get_attribute("#card-photo", "src") or "").startswith("data:image/")
        page.screenshot(path=str(artefacts / "my-card.png"))
        assert world.site.service.credentials.credential(credential_id).state == "live"
        page.wait_for_function(STATUS, arg="live")

        # The credential and its key survive a reload; the key cannot be read out.
        page.reload()
        page.wait_for_function(READY)
        page.click("#open-wallet")
        page.wait_for_function(HELD)
        assert page.text_content("#card-name") == NAME
        extractable = page.evaluate(
            """() => new Promise((resolve) => {
                 const open = indexedDB.open("idsvc-wallet");
                 open.onsuccess = () => {
                   const get = open.result.transaction("cards").objectStore("cards").get("phone");
                   get.onsuccess = () => resolve(get.result.keys.privateKey.extractable);
                 };
               })"""
        )
        assert extractable is False

        # The official asks; the holder sees what is asked, keeps the position to themselves
        # (asked as optional, with the ministry) and shares the rest.
        official = open_page(official_context, f"{base}/verify/")
        link = ask(official)
        official.screenshot(path=str(artefacts / "official-asking.png"))
        asked = answer(page, link, artefacts / "consent.png", untick=("position",))
        # Required claims are ticked for good; optional ones ticked, and the holder's to untick.
        assert asked == [
            ["name", True, True],
            ["name_latin", True, True],
            ["photo", True, True],
            ["ministry", True, False],
            ["position", True, False],
        ]
        assert verdict(official) == "VALID"
        assert official.text_content("#holder-name") == NAME
        assert official.text_content("#holder-latin") == LATIN
        assert official.text_content("#holder-ministry")
        assert official.text_content("#holder-position") == ""
        # What the holder kept is not an empty label; what they shared is shown.
        assert not official.is_visible("#holder-position-row")
        assert official.is_visible("#holder-ministry-row")
        assert "phone credential" in (official.text_content("#reason") or "")
        assert (official.get_attribute("#holder-photo", "src") or "").startswith("data:image/jpeg")
        assert official.get_attribute("#result", "data-checked") == "wallet"
        assert official.get_attribute("#result", "class") == "green"
        official.screenshot(path=str(artefacts / "official-valid.png"))

        # The holder's own page: the record, the credentials, the official's check (the check
        # log writes behind by up to a second: written now, so the page must list it).
        world.site.service.verification.check_log.flush()
        page.click("#own-open")
        page.wait_for_selector("#own-page:not([hidden])")
        record = page.text_content("#own-record") or ""
        assert NAME in record and LATIN in record
        credentials = page.text_content("#own-credentials") or ""
        assert "Phone" in credentials
        checks = page.eval_on_selector_all("#own-checks li", "(li) => li.map((l) => l.textContent)")
        assert len(checks) == 1 and checks[0].endswith("someone using the public verifier · valid")
        page.select_option("#fix-field", "position")
        page.fill("#fix-text", "I was promoted to deputy director in March.")
        page.click("#fix-send")
        wallet_message(page, "w_fix_sent")
        assert "waiting for HR" in (page.text_content("#own-corrections") or "")
        page.screenshot(path=str(artefacts / "own-page.png"), full_page=True)
        queue = world.cli("corrections", "list", "--json")
        assert queue.returncode == 0, queue.stderr
        (request,) = [r for r in json.loads(queue.stdout) if r["employee_id"] == EMPLOYEE]
        assert request["field"] == "position" and request["status"] == "open"
        assert "deputy director" in request["text"]

        # A lost phone: revoked on its own; the next answer is REVOKED, never VALID.
        world.site.service.credentials.revoke(
            credential_id, reason="phone lost", by=None, now=datetime.now(UTC)
        )
        official.click("#again")
        answer(page, ask(official))
        assert verdict(official) == "REVOKED"
        assert official.get_attribute("#result", "class") == "red"
        assert "phone credential has been cancelled" in (official.text_content("#reason") or "")
        # The holder learns it too, from the status list, on the next visit to "My card".
        page.click("#wallet-close")
        page.click("#open-wallet")
        page.wait_for_function(STATUS, arg="revoked")
        assert "cancelled" in (page.text_content("#card-state") or "")
    finally:
        official_context.close()
    for requests in seen:
        assert requests.foreign(base) == []
        assert requests.urls, "the recorder saw the pages' requests"


def test_bad_codes_are_refused_with_the_reason_and_nothing_kept(
    world: World, holder: BrowserContext
) -> None:
    base = world.site.base_url
    page = open_wallet(holder, base)
    take(page, "openid-credential-offer://?credential_offer=%7Bnot%20json")
    wallet_message(page, "w_offer_bad")
    foreign = {
        "credential_issuer": "https://elsewhere.example",
        "credential_configuration_ids": ["civil_servant_sd_jwt"],
        "grants": {
            "urn:ietf:params:oauth:grant-type:pre-authorized_code": {"pre-authorized_code": "x"}
        },
    }
    take(page, "openid-credential-offer://?credential_offer=" + quote(json.dumps(foreign)))
    wallet_message(page, "w_foreign")
    take(page, "hello")
    wallet_message(page, "w_unknown_code")
    # A wrong transaction code is refused; the right one still works (attempts are limited).
    made = offer(world)
    take(page, made["offer_uri"])
    page.fill("#tx-code", "000000" if made["tx_code"] != "000000" else "111111")
    page.click("#tx-ok")
    wallet_message(page, "w_tx_wrong")
    assert not page.get_attribute("#wallet", "data-card")
    page.fill("#tx-code", made["tx_code"])
    page.click("#tx-ok")
    page.wait_for_function(HELD)


def test_a_request_pointing_at_another_verifier_is_refused(
    world: World, holder: BrowserContext, browser: Browser
) -> None:
    base = world.site.base_url
    page = open_wallet(holder, base)
    receive(page, offer(world))
    official_context = phone_context(browser, workers=False)
    try:
        official = open_page(official_context, f"{base}/verify/")
        link = ask(official)
        # Another client id with this request: the x509_hash no longer names its certificate.
        forged = link.replace("client_id=x509_hash%3A", "client_id=x509_hash%3AA", 1)
        take(page, forged)
        wallet_message(page, "w_request_bad")
        assert page.is_hidden("#consent")
        # The page's own #request= link opens "My card" on the genuine request.
        page.goto(f"{base}/verify/#request={quote(link, safe='')}")
        page.wait_for_selector("#consent:not([hidden])")
        page.click("#consent-no")
        wallet_message(page, "w_declined")
        official.wait_for_function(
            "() => document.getElementById('ask-status').dataset.key === 'ask_declined'"
        )
    finally:
        official_context.close()


def test_the_card_opens_offline_once_the_page_is_installed(
    world: World, installed_phone: BrowserContext
) -> None:
    base = world.site.base_url
    page = open_wallet(installed_phone, base)
    receive(page, offer(world))
    page.wait_for_function("() => document.documentElement.dataset.installed === '1'")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    installed_phone.set_offline(True)
    try:
        page.reload()
        page.wait_for_function(READY)
        page.click("#open-wallet")
        page.wait_for_function(HELD)
        assert page.text_content("#card-name") == NAME
        assert (page.get_attribute("#card-photo", "src") or "").startswith("data:image/")
        # Answering needs the service: said plainly, nothing half-done.
        take(page, "openid4vp://?client_id=x509_hash%3Aabc&request_uri=" + quote(base + "/r"))
        wallet_message(page, "w_network")
    finally:
        installed_phone.set_offline(False)


@pytest.mark.parametrize(
    ("lang", "my_record", "share"),
    [("lo", "ຂໍ້ມູນຂອງຂ້ອຍ", "ສະແດງ"), ("km", "ព័ត៌មានរបស់ខ្ញុំ", "បង្ហាញ")],
)
def test_my_card_speaks_lao_and_khmer(
    world: World, holder: BrowserContext, lang: str, my_record: str, share: str, artefacts: Path
) -> None:
    base = world.site.base_url
    page = open_page(holder, f"{base}/verify/")
    page.select_option("#language", lang)
    # This time by the page's own offer link, as a desk could send it: /verify/#offer=<link>.
    made = offer(world)
    page.goto(f"{base}/verify/#offer={quote(made['offer_uri'], safe='')}")
    page.wait_for_selector("#tx-box:not([hidden])")
    assert page.evaluate("() => location.hash") == "", "the offer leaves the address bar"
    page.fill("#tx-code", made["tx_code"])
    page.click("#tx-ok")
    page.wait_for_function(HELD)
    assert page.text_content("#own-open") == my_record
    assert page.text_content("#consent-send") == share
    assert page.evaluate("() => document.documentElement.lang") == lang
    # Every option of "report an error" is a word of the language, never a key.
    options = page.eval_on_selector_all("#fix-field option", "(os) => os.map((o) => o.text)")
    assert len(options) == 16 and not [o for o in options if o.startswith("f_")]
    page.screenshot(path=str(artefacts / f"my-card-{lang}.png"), full_page=True)


# The page's own check of a credential before keeping it (wallet.js checkCredential): the
# genuine one passes; a disclosure the issuer did not sign, or a credential bound to another
# key, is refused.
CHECK_CREDENTIAL = """
async () => {
  const { checkCredential } = await import("/verify/wallet.js");
  const { loadCard } = await import("/verify/wallet-store.js");
  const card = await loadCard();
  const outcome = (credential, jwk) =>
    checkCredential(credential, jwk).then((claims) => claims.name_latin, (e) => e.code);
  const b64 = (text) => btoa(text).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const parts = card.credential.split("~");
  const at = parts.findIndex((p, i) => {
    if (i === 0 || !p) return false;
    try {
      return JSON.parse(atob(p.replace(/-/g, "+").replace(/_/g, "/")))[1] === "name_latin";
    } catch {
      return false;
    }
  });
  const [salt] = JSON.parse(atob(parts[at].replace(/-/g, "+").replace(/_/g, "/")));
  const forged = [...parts];
  forged[at] = b64(JSON.stringify([salt, "name_latin", "Someone Else"]));
  return [
    await outcome(card.credential, card.jwk),
    await outcome(forged.join("~"), card.jwk),
    await outcome(card.credential, { ...card.jwk, x: card.jwk.y }),
    await outcome(card.credential.replace(/~$/, "~" + parts[0]), card.jwk),
  ];
}
"""


def test_the_page_checks_a_credential_before_keeping_it(
    world: World, holder: BrowserContext, tmp_path: Path
) -> None:
    page = open_wallet(holder, world.site.base_url)
    # This time from a photo of the desk's offer QR (the CLI's -o offer.png).
    made = offer(world, tmp_path / "offer.png")
    page.set_input_files("#wallet-photo", str(tmp_path / "offer.png"))
    page.wait_for_selector("#tx-box:not([hidden])")
    page.fill("#tx-code", made["tx_code"])
    page.click("#tx-ok")
    page.wait_for_function(HELD)
    assert page.evaluate(CHECK_CREDENTIAL) == [
        LATIN,
        "credential_bad",
        "credential_bad",
        "credential_bad",
    ]


# A presentation bound to another nonce (a replay of an answer to an earlier request looks
# like this): built by the page's own modules with the nonce swapped.
ANSWER_WITH_ANOTHER_NONCE = """
async (link) => {
  const { answer, fetchRequest } = await import("/verify/presentation.js");
  const { loadCard } = await import("/verify/wallet-store.js");
  const request = await fetchRequest(link);
  const names = ["name", "name_latin", "photo"]; // the claims the request requires
  await answer({ ...request, nonce: "another-nonce" }, await loadCard(), names);
}
"""


def test_an_answer_bound_to_another_nonce_is_not_the_holders_phone(
    world: World, holder: BrowserContext, browser: Browser
) -> None:
    base = world.site.base_url
    page = open_wallet(holder, base)
    receive(page, offer(world))
    official_context = phone_context(browser, workers=False)
    try:
        official = open_page(official_context, f"{base}/verify/")
        page.evaluate(ANSWER_WITH_ANOTHER_NONCE, ask(official))
        assert verdict(official) == "HOLDER_BINDING_INVALID"
        assert official.get_attribute("#result", "class") == "red"
        assert official.text_content("#verdict") == "NOT THE HOLDER'S PHONE"
        # The issuer-signed name is shown, under the red verdict, as for a revoked card.
        assert official.text_content("#holder-name") == NAME
    finally:
        official_context.close()


ASKED_CLAIMS = """
async () => {
  const { askedClaims } = await import("/verify/presentation.js");
  const claims = [{ id: "n", path: ["name"] }, { id: "p", path: ["photo"] }];
  let refused = null;
  try {
    askedClaims({ claims: [{ path: [] }] });
  } catch (e) {
    refused = e.code;
  }
  const sets = [["n", "p"], ["n"]];
  return [askedClaims({ claims }), askedClaims({ claims, claim_sets: sets }), refused];
}
"""


def test_only_claims_a_claim_set_leaves_out_are_optional(
    world: World, holder: BrowserContext
) -> None:
    page = open_wallet(holder, world.site.base_url)
    every, with_sets, bad = page.evaluate(ASKED_CLAIMS)
    # DCQL without claim_sets asks for every claim listed: none may be left out.
    assert every == [{"name": "name", "required": True}, {"name": "photo", "required": True}]
    assert with_sets == [{"name": "name", "required": True}, {"name": "photo", "required": False}]
    assert bad == "request_bad"
