"""A real uvicorn server on a free loopback port, in a background thread, for each API test.

The app is ``create_app(service, clock=...)`` over the ``service`` fixture (SQLite and
PostgreSQL: ``api``) or over SQLite alone (``web``); the clock is fixed at ``NOW`` so results
do not depend on the wall clock.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from idsvc.service import CredentialView, IdService
from mobile_api.app import create_app
from tests.conftest import NOW, SAMPLE_CSV, make_service, make_settings

ACTIVE_EMPLOYEE = "LA-MOHA-000101"
OTHER_ACTIVE_EMPLOYEE = "LA-MOHA-000102"
PROBLEM = "application/problem+json"


@contextmanager
def live_server(app: FastAPI, *, timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1:<free port> until the block ends; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # log_config=None: uvicorn leaves logging alone, so its records reach pytest's caplog.
    config = uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"
        # The check log writes behind (up to IDSVC_CHECK_LOG_FLUSH s); its exit-time flush
        # would run after the test's schema is dropped and log "rows lost at exit". Write
        # what this server buffered now, while its database still exists.
        check_log = getattr(app.state, "check_log", None)
        if check_log is not None:
            check_log.flush()


@dataclass
class Api:
    base_url: str
    http: httpx.Client
    service: IdService


@contextmanager
def api_for(service: IdService) -> Iterator[Api]:
    with (
        live_server(create_app(service, clock=lambda: NOW)) as base_url,
        httpx.Client(base_url=base_url, timeout=10.0) as http,
    ):
        yield Api(base_url, http, service)


@pytest.fixture
def api(service: IdService) -> Iterator[Api]:
    with api_for(service) as a:
        yield a


@pytest.fixture
def credential(service: IdService) -> CredentialView:
    return service.issue(ACTIVE_EMPLOYEE, actor="test-desk", now=NOW)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Api]:
    """The API over SQLite only, for HTTP-level behaviour that does not depend on the database
    (request validation, limits, content types, routing, OpenAPI)."""
    svc = make_service(make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'web.sqlite3'}"))
    svc.init(now=NOW, actor="test-admin")
    svc.import_hr(SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test", now=NOW)
    with api_for(svc) as a:
        yield a
    svc.db.dispose()


@pytest.fixture
def web_credential(web: Api) -> CredentialView:
    return web.service.issue(ACTIVE_EMPLOYEE, actor="test-desk", now=NOW)


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["x-content-type-options"] == "nosniff"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:idsvc:problem:{code.lower()}"
    assert isinstance(body["title"], str) and body["title"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body
