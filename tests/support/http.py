"""The API over real HTTP, in process: a uvicorn server on a free loopback port in a background
thread, a client bound to it, and the problem-document check. (``idsvc serve`` as a process:
``tests.support.serve``.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from idsvc.services import Services
from mobile_api.app import create_app
from tests.support.settings import NOW

PROBLEM = "application/problem+json"


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def live_server(
    app: FastAPI, *, sock: socket.socket | None = None, timeout: float = 10.0
) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 until the block ends; yield its base URL.

    ``sock``: a socket the caller bound already, for an app that must know its own URL before
    it is built (the web verifier's public URL); by default a free port is taken."""
    sock = sock or _bound_socket()
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
        services = getattr(app.state, "services", None)
        if services is not None:
            services.verification.check_log.flush()


@dataclass
class Api:
    base_url: str
    http: httpx.Client
    service: Services


@contextmanager
def api_for(service: Services) -> Iterator[Api]:
    """The API over ``service`` with its clock fixed at ``NOW``, and a client for it."""
    with (
        live_server(create_app(service, clock=lambda: NOW)) as base_url,
        httpx.Client(base_url=base_url, timeout=10.0) as http,
    ):
        yield Api(base_url, http, service)


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """``r`` is a problem document (``PROBLEM``) with this status and code, and leaks nothing."""
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
