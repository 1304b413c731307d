"""Shared fixtures: a database on SQLite and on PostgreSQL, settings in a temp home, a service,
and ``idsvc serve --workers 2`` processes over it. The helpers they use live in
``tests/support/``.

PostgreSQL comes from ``IDSVC_TEST_POSTGRES_URL`` (``scripts/test`` sets it after making sure
the server is up). If it cannot be reached the PostgreSQL tests FAIL, naming the URL: a run
without PostgreSQL must never look green.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy
from playwright.sync_api import Playwright, sync_playwright

from idsvc.config import Settings
from idsvc.services import Services
from tests.support.serve import Launch, Served, launching, serving_workers
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

pytest_plugins = ["tests.support.pcsc", "tests.support.softhsm", "tests.support.private_postgres"]

_POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

if TYPE_CHECKING:
    from tests.support.desk_world import World


@pytest.fixture(scope="session")
def postgres_server() -> str:
    url = os.environ.get("IDSVC_TEST_POSTGRES_URL", _POSTGRES_DEFAULT)
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
        engine.connect().close()
        engine.dispose()
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is NOT reachable at {url} ({type(exc).__name__}); the PostgreSQL "
            "storage tests cannot run. Run scripts/test (it starts PostgreSQL) or set "
            "IDSVC_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    return url


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A fresh schema per test, selected through ``search_path``; dropped afterwards."""
    schema = f"t_{secrets.token_hex(6)}"
    engine = sqlalchemy.create_engine(postgres_server)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_server else "?"
    yield f"{postgres_server}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'idsvc.sqlite3'}"
    url: str = request.getfixturevalue("postgres_db")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'idsvc.sqlite3'}"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path / "home", db_url)


@pytest.fixture
def service(settings: Settings) -> Iterator[Services]:
    svc = make_service(settings)
    svc.credentials.init(now=NOW, actor="test-admin")
    svc.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test-hr", now=NOW
    )
    yield svc
    svc.infra.db.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the card bench is a ``pcsc`` test even if its module forgot the marker:
    ``scripts/test`` runs ``-m "not pcsc"`` in two pytest-xdist workers and the ``pcsc`` tests
    afterwards in one process (one pcscd and one set of virtual readers per machine)."""
    for item in items:
        if "pcscd" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("pcsc"):
            item.add_marker(pytest.mark.pcsc)


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    """One Playwright per test process, for every test that drives Chromium: a second
    ``sync_playwright()`` while one is open fails ("Sync API inside the asyncio loop"), and
    under pytest-xdist one worker may run both the web tests and the API's docs test."""
    with sync_playwright() as p:
        yield p


@pytest.fixture
def served(service: Services) -> Iterator[Served]:
    """``idsvc serve --workers 2`` over ``service``'s database (``tests.support.serve``)."""
    with serving_workers(service) as s:
        yield s


@pytest.fixture
def start(service: Services) -> Iterator[Launch]:
    """``start(**env)`` launches ``idsvc serve --workers 2`` over ``service``'s database; every
    server started is stopped after the test."""
    with launching(service) as run:
        yield run


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    """A centre (operators somphone, khamla, dara) serving one desk to enrol, vte-01: the desk
    tests of tests/idsvc and tests/mobile_api share it. Imported here, not at the top: the root
    conftest must not load the API app for every test module."""
    from tests.support.desk_world import make_world

    with make_world(tmp_path, db_url) as w:
        yield w
