"""The web verifier under test: a live uvicorn server whose ``IDSVC_PUBLIC_URL`` is its own
loopback address (status-list URIs inside credentials must point at it), and Debian's
Chromium driven by Playwright (never a downloaded browser).

The server's clock is the real one, like the browser's: the page judges data age by the wall
clock, and tests that need another time move the page's clock (Playwright's clock API).
One browser for the whole run; each test gets a fresh context (its own service worker and
caches).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Playwright,
    ViewportSize,
)

from idsvc.service import IdService
from mobile_api.app import create_app
from tests.conftest import SAMPLE_CSV, make_service, make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: ViewportSize = {"width": 360, "height": 640}
ACTIVE_KHMER = "KH-MCS-010002"
ACTIVE_LAO = "LA-MOHA-000101"


@contextmanager
def serve(service: IdService, sock: socket.socket) -> Iterator[None]:
    """Serve the app for ``service`` on an already bound socket until the block ends."""
    app = create_app(service, clock=lambda: datetime.now(UTC))
    config = uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive(), "uvicorn did not shut down"


@dataclass
class Site:
    base_url: str
    service: IdService


@contextmanager
def site(tmp: Path, **settings: object) -> Iterator[Site]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    svc = make_service(make_settings(tmp / "home", f"sqlite:///{tmp / 'web.sqlite3'}", **settings))
    svc.settings.public_url = base_url
    now = datetime.now(UTC)
    svc.init(now=now, actor="test-admin")
    svc.import_hr(SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test", now=now)
    try:
        with serve(svc, sock):
            yield Site(base_url, svc)
    finally:
        sock.close()
        svc.db.dispose()


def launch(playwright: Playwright, *extra_args: str) -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/system-packages)")
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], headless=True
    )


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    b = launch(playwright_session)
    yield b
    b.close()


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


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    context = phone_context(browser, workers=False)
    yield context
    context.close()


@pytest.fixture
def installed_phone(browser: Browser) -> Iterator[BrowserContext]:
    """A phone whose visit installs the service worker (offline use)."""
    context = phone_context(browser, workers=True)
    yield context
    context.close()


@pytest.fixture
def artefacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """Where screenshots go: the test's tmp dir; CI sets ``IDSVC_TEST_ARTEFACTS`` to keep them."""
    folder = tmp_path / "artefacts"
    folder.mkdir()
    yield folder
    keep = os.environ.get("IDSVC_TEST_ARTEFACTS")
    if keep:
        target = Path(keep) / "web" / request.node.name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(folder, target)
