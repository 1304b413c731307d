"""The verifier page over HTTP (no browser): its Content-Security-Policy, what it serves and
refuses, the config it hands to phones (SQLite and PostgreSQL), the vendored files and the
byte budget, and a static check that no decoded value can reach the page as HTML."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from idsvc.services import Services
from mobile_api.routes.verifier_page import ASSETS, STATIC
from tests.support.http import Api, api_for
from tests.support.settings import NOW

# The whole app as a phone downloads it on its first visit, decoder and fonts included:
# 480,000 bytes uncompressed (jsQR ~257 KB, Lao + Khmer WOFF2 ~22 KB, lean-qr ~7 KB, our code
# the rest: the phone-credential wallet and its words in three languages took ~80 KB).
BYTE_BUDGET = 480_000
OUR_JS = sorted(p for p in STATIC.glob("*.js"))


@pytest.fixture
def api(service: Services) -> Iterator[Api]:
    with api_for(service) as a:
        yield a


def policy(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize(
    "path", ["/verify/", "/v/0b6b3a52-2b7e-4d5e-9d4c-7f1e2a3b4c5d", "/verify/app.js"]
)
def test_pages_carry_a_strict_policy_of_their_own(api: Api, path: str) -> None:
    r = api.http.get(path)
    assert r.status_code == 200
    csp = policy(r.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"], "no inline script, no eval, no other origin"
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    every_source = [s for values in csp.values() for s in values]
    assert not [s for s in every_source if "unsafe" in s]
    origins = [s for s in every_source if s.startswith("http")]
    assert origins == ["https://id.mcs.gov.kh"], "only the service's own public origin"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_page_and_its_tap_url_are_the_same_html(api: Api) -> None:
    page = api.http.get("/verify/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert api.http.get("/v/anything").text == page.text
    redirect = api.http.get("/verify?x=1", follow_redirects=False)
    assert redirect.status_code == 308
    assert redirect.headers["location"] == "/verify/?x=1"


def test_assets_revalidate_with_etags_and_unknown_paths_are_404(api: Api) -> None:
    r = api.http.get("/verify/verifier.js")
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    again = api.http.get("/verify/verifier.js", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    worker = api.http.get("/verify/sw.js")
    assert worker.headers["service-worker-allowed"] == "/"
    for path in (
        "/verify/nope.js",
        "/verify/../app.py",
        "/verify/VENDOR.md",
        "/verify/icons/make_icons.py",
    ):
        assert api.http.get(path).status_code == 404, path


def test_config_names_every_issuer_and_status_list_and_the_hard_limit(
    service: Services,
) -> None:
    credential = service.credentials.issue("LA-MOHA-000101", actor="test-desk", now=NOW)
    service.settings.verifier_hard_limit_days = 3
    with api_for(service) as a:
        config = a.http.get("/verify/config.json").json()
        assert config["hard_limit_seconds"] == 3 * 86_400
        (issuer,) = config["issuers"]
        assert issuer["iss"] == "https://id.mcs.gov.kh/issuers/default"
        uri = service.verification.verify(credential.token, now=NOW).claims["status"][
            "status_list"
        ]["uri"]
        assert issuer["status_lists"] == [uri]
        jwks = a.http.get(issuer["jwks_uri"]).json()
        assert credential.kid in {k["kid"] for k in jwks["keys"]}
        assert config["verify_api"][0] == "/v1/verifications"


def test_hard_limit_setting_is_validated() -> None:
    from pydantic import ValidationError

    from idsvc.config import Settings

    with pytest.raises(ValidationError, match="verifier_hard_limit_days"):
        Settings(verifier_hard_limit_days=0)
    with pytest.raises(ValidationError, match="verifier_hard_limit_days"):
        Settings(verifier_hard_limit_days=365)


def test_the_whole_app_fits_the_byte_budget() -> None:
    total = sum(len(asset.body) for asset in ASSETS.values())
    assert total <= BYTE_BUDGET, f"{total} bytes > budget {BYTE_BUDGET}"
    worker = (STATIC / "sw.js").read_text(encoding="utf-8")
    shell = set(re.findall(r'"/verify/([^"]*)"', worker))
    assert shell - {"", "config.json"} <= set(ASSETS), "the worker precaches files that exist"
    missing = {name for name in ASSETS if name.endswith(".js") and name != "sw.js"} - shell
    assert not missing, f"not kept for offline use: {missing}"


def test_vendored_files_match_vendor_md() -> None:
    table = (STATIC / "VENDOR.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", table, re.MULTILINE)
    assert {name for name, _ in rows} == {
        "vendor/jsQR.js",
        "vendor/lean-qr.js",
        "fonts/NotoSansLao-Regular.woff2",
        "fonts/NotoSansKhmer-Regular.woff2",
    }
    for name, digest in rows:
        # As served: the fonts come from idsvc/data/fonts (shared with the HTML report).
        assert hashlib.sha256(ASSETS[name].body).hexdigest() == digest, name
    third_party = {n for n in ASSETS if n.startswith(("vendor/", "fonts/"))}
    assert third_party == {name for name, _ in rows}, "every third-party file is listed"


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        self.problems += [f"{tag} {n}=" for n in names if n.startswith("on")]
        for name, value in attrs:
            if name in ("src", "href") and value and re.match(r"(https?:)?//", value):
                self.problems.append(f"third-party {value}")

    def handle_data(self, data: str) -> None:
        if self.lasttag == "script" and data.strip():
            self.problems.append("inline script text")


def test_the_page_has_no_inline_script_and_no_other_origin() -> None:
    parser = _Scripts()
    parser.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    assert parser.problems == []


@pytest.mark.parametrize("path", OUR_JS, ids=lambda p: p.name)
def test_our_javascript_never_builds_html_or_evaluates_text(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    for forbidden in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setAttribute("on',
    ):
        assert forbidden not in source, f"{path.name} uses {forbidden}"
    assert not re.search(r"https?://(?!\\/)[a-z]", source.replace("https?:\\/\\/", "")), (
        f"{path.name} names another origin"
    )
