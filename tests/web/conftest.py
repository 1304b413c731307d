"""Fixtures of the web verifier tests: one Chromium for the whole run, and a fresh context per
test (its own service worker and caches). The site and the browser set-up are in
``tests.support.browser``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright

from tests.support.browser import launch, phone_context


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    b = launch(playwright_session)
    yield b
    b.close()


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
