"""Issue 6, API weaknesses, over real HTTP on loopback: duplicate JSON members are refused,
every answer carries CSP / X-Frame-Options, and /docs works with no internet (Swagger UI from
the package, rendered by headless Chromium with every non-loopback request blocked). The
``server`` banner is uvicorn's, so ``test_hardening_serve.py`` checks it on ``idsvc serve``."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Playwright, Route

from idsvc.credentials.views import CredentialView
from mobile_api import limits
from mobile_api.middleware import CONTENT_SECURITY_POLICY
from tests.support.http import Api, assert_problem

CHROMIUM = "/usr/bin/chromium"
STATIC = Path(__file__).resolve().parents[2] / "mobile_api" / "static" / "docs"


@pytest.mark.parametrize("path", ["/v1/verify", "/v1/verifications"])
def test_duplicate_member_names_are_refused(
    web: Api, web_credential: CredentialView, path: str
) -> None:
    good, bad = web_credential.token, "x.y.z"
    for body in (
        f'{{"credential": "{bad}", "credential": "{good}"}}',
        f'{{"credential": "{good}", "credential": "{bad}"}}',
    ):
        r = web.http.post(path, content=body, headers={"content-type": "application/json"})
        problem = assert_problem(r, 422, "INVALID_REQUEST")
        assert "duplicate member name 'credential'" in problem["detail"]
        assert good not in r.text  # the refusal never echoes a token
    # A single member still works.
    r = web.http.post(path, json={"credential": good})
    assert r.status_code == 200 and r.json()["valid"] is True


def test_nested_duplicates_and_nan_are_refused(web: Api) -> None:
    for body in ('{"credential": "a", "x": {"k": 1, "k": 2}}', '{"credential": NaN}'):
        r = web.http.post("/v1/verify", content=body, headers={"content-type": "application/json"})
        assert_problem(r, 422, "INVALID_REQUEST")


def test_every_answer_carries_csp_and_no_framing(web: Api) -> None:
    for r in (
        web.http.get("/health"),
        web.http.get("/.well-known/jwks.json"),
        web.http.get("/no-such-page"),
        web.http.post("/v1/verify", json={"credential": "x.y.z"}),
        web.http.get("/docs"),
    ):
        assert r.headers["x-frame-options"] == "DENY", r.url
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, r.url
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["referrer-policy"] == "no-referrer"


def test_docs_page_loads_nothing_from_a_cdn(web: Api) -> None:
    page = web.http.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text
    assert "<script>" not in page.text  # no inline script: the CSP allows none
    for name, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        r = web.http.get(f"/static/docs/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert r.content == (STATIC / name).read_bytes()
        assert r.headers["cache-control"] == "public, max-age=86400"
    assert "Apache License" in (STATIC / "LICENSE").read_text()


def test_docs_render_offline_in_chromium_under_the_csp(
    web: Api, playwright_session: Playwright
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/system-packages)")
    ours = urlsplit(web.base_url).netloc
    outside: list[str] = []
    violations: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).netloc == ours:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    browser = playwright_session.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
    )
    try:
        page = browser.new_page()
        page.route("**/*", only_loopback)
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(f"{web.base_url}/docs")
        page.wait_for_selector(
            '.opblock-summary-path[data-path="/v1/verifications"]', timeout=20_000
        )
        assert page.locator(".opblock").count() >= 3
        assert page.title() == "idsvc API"
    finally:
        browser.close()
    assert outside == []
    assert violations == []


def test_a_trickled_body_gets_408(web: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "BODY_TIMEOUT", 0.5)
    host, port = urlsplit(web.base_url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b'content-length: 40\r\n\r\n{"credential":'
        )
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert time.monotonic() - started < 4


def test_a_slow_client_body_within_the_limit_is_fine(web: Api) -> None:
    r = httpx.post(
        f"{web.base_url}/v1/verify",
        content=iter([b'{"credential":', b' "x.y.z"}']),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["reasons"] == ["MALFORMED"]
