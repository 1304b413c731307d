"""The web verifier under test: a live site whose ``IDSVC_PUBLIC_URL`` is its own loopback
address (status-list URIs inside credentials must point at it), and Debian's Chromium driven by
Playwright (never a downloaded browser).

The site's clock is the real one, like the browser's: the page judges data age by the wall
clock, and tests that need another time move the page's clock (Playwright's clock API).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, ViewportSize

from idsvc.services import Services
from mobile_api.app import create_app
from tests.support.http import live_server
from tests.support.settings import SAMPLE_CSV, make_service, make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: ViewportSize = {"width": 360, "height": 640}


@dataclass
class Site:
    base_url: str
    service: Services


@contextmanager
def site(tmp: Path, **settings: object) -> Iterator[Site]:
    """The API and the web verifier over a fresh SQLite register holding the sample HR file."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    svc = make_service(make_settings(tmp / "home", f"sqlite:///{tmp / 'web.sqlite3'}", **settings))
    svc.settings.public_url = base_url
    now = datetime.now(UTC)
    svc.credentials.init(now=now, actor="test-admin")
    svc.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test", now=now
    )
    try:
        with live_server(create_app(svc, clock=lambda: datetime.now(UTC)), sock=sock):
            yield Site(base_url, svc)
    finally:
        sock.close()
        svc.infra.db.dispose()


def launch(playwright: Playwright, *extra_args: str) -> Browser:
    """Debian's Chromium, headless; fails (never skips) when it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/system-packages)")
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], headless=True
    )


def phone_context(browser: Browser, *, workers: bool) -> BrowserContext:
    """A phone-sized context with a touch screen, in English; ``workers=False`` blocks the
    service worker (a first visit that does not install the app: faster, same verifier)."""
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        service_workers="allow" if workers else "block",
    )
    context.set_default_timeout(15_000)
    return context
