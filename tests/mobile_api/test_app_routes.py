"""``create_app`` serves ``api_router``'s routes flattened (``mobile_api.app.flat_routes``): the
same operations, in the same order, as FastAPI's own ``include_router`` would serve."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from fastapi import APIRouter
from fastapi.routing import APIRoute

from mobile_api import docs
from mobile_api.api import api_router
from mobile_api.app import IdsvcApi, create_app, flat_routes
from tests.support.settings import make_service, make_settings


def included_app() -> IdsvcApi:
    """The app as FastAPI builds it with ``include_router`` (routes only: no services)."""
    app = IdsvcApi(title="idsvc", version="0.1.0", docs_url=None, redoc_url=None)
    app.include_router(api_router)
    docs.install(app)
    return app


def test_the_openapi_document_is_the_one_include_router_gives(tmp_path: Path) -> None:
    svc = make_service(make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    try:
        app = create_app(svc)
        assert app.openapi() == included_app().openapi()
        assert all(getattr(r, "original_router", None) is None for r in app.router.routes)
    finally:
        svc.infra.db.dispose()


def test_nested_routers_are_flattened_in_order() -> None:
    inner, outer = APIRouter(), APIRouter()

    @inner.get("/b")
    def b() -> None: ...

    @outer.get("/a")
    def a() -> None: ...

    outer.include_router(inner)

    @outer.get("/c")
    def c() -> None: ...

    top = APIRouter()
    top.include_router(outer)
    paths = [r.path for r in flat_routes(top.routes) if isinstance(r, APIRoute)]
    assert paths == ["/a", "/b", "/c"]


FROZEN_AFTER_FACTORY = (
    "import gc; from mobile_api.app import create_app; before = gc.get_freeze_count(); "
    "create_app(); print(before, gc.get_freeze_count())"
)


def test_a_worker_freezes_what_it_built_and_an_in_process_app_does_not(
    tmp_path: Path, sqlite_url: str
) -> None:
    from tests.support.cli_runner import Cli

    cli = Cli(tmp_path / "home", sqlite_url)
    assert cli("init").returncode == 0
    # As uvicorn's worker calls it (--factory, no arguments), in a process of its own.
    worker = subprocess.run(
        [sys.executable, "-c", FROZEN_AFTER_FACTORY],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    before, after = map(int, worker.stdout.split())
    assert before == 0 and after > 10_000  # the modules, tables and routes it built
    # A test's app, built around its own services, leaves the collector as it was.
    svc = make_service(make_settings(tmp_path / "home2", f"sqlite:///{tmp_path / 'b.sqlite3'}"))
    try:
        frozen = gc.get_freeze_count()
        create_app(svc)
        assert gc.get_freeze_count() == frozen
    finally:
        svc.infra.db.dispose()
