"""Issue 6, defect 8 and the slow-client weakness: `idsvc serve` validates its port (usage
error 2, no traceback), sends no `server` banner, and closes connections whose headers do not
arrive in time (uvicorn has no such timeout of its own)."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from idsvc.cli import server
from idsvc.services import Services
from mobile_api.app import create_app
from tests.support.cli_runner import IDSVC, Cli
from tests.support.serve import free_port, wait_healthy
from tests.support.settings import NOW, make_service, make_settings


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_bad_port_is_a_usage_error(tmp_path: Path, port: str) -> None:
    r = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'x.sqlite3'}")("serve", "--port", port)
    assert r.returncode == 2, r.stderr
    assert "--port" in r.stderr and "Traceback" not in r.stderr


def test_serve_sends_no_banner_and_the_security_headers(tmp_path: Path) -> None:
    svc = make_service(make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    svc.credentials.init(now=NOW, actor="admin")
    svc.infra.db.dispose()
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    port = free_port()
    proc = subprocess.Popen(
        [IDSVC, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=cli.env | {"IDSVC_ISSUER": "https://id.mcs.gov.kh/issuers/default"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}/health", proc, timeout=60)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert health.status_code == 200, health.text
    assert "server" not in health.headers
    assert health.headers["x-frame-options"] == "DENY"
    assert "Traceback" not in stderr


@contextmanager
def guarded_server(service: Services) -> Iterator[tuple[str, int]]:
    """The app behind uvicorn with the protocol `idsvc serve` uses."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        create_app(service, clock=lambda: NOW),
        http=server.GUARDED_PROTOCOL,
        server_header=False,
        log_config=None,
        lifespan="off",
        timeout_keep_alive=server.KEEP_ALIVE,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.01)
    try:
        yield sock.getsockname()
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()


def _closed_within(conn: socket.socket, seconds: float) -> bool:
    conn.settimeout(seconds)
    try:
        return conn.recv(1024) == b""
    except TimeoutError:
        return False


def test_headers_must_arrive_in_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "HEADER_TIMEOUT", 0.5)
    svc = make_service(make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    svc.credentials.init(now=NOW, actor="admin")
    with guarded_server(svc) as (host, port):
        silent = socket.create_connection((host, port))
        trickle = socket.create_connection((host, port))
        trickle.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n")  # never finishes its headers
        assert _closed_within(silent, 3)
        assert _closed_within(trickle, 3)
        silent.close()
        trickle.close()
        # A keep-alive client that sends its next request's headers slowly is cut off too,
        # while a prompt one is served as usual.
        with socket.create_connection((host, port)) as conn:
            conn.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b'{"status":"ok"}'):  # the whole response, body included
                answer += conn.recv(4096)
            assert b"200 OK" in answer
            conn.sendall(b"GET /health HTTP/1.1\r\n")
            assert _closed_within(conn, 3)
        with httpx.Client(base_url=f"http://{host}:{port}") as http:
            assert http.get("/health").status_code == 200
            time.sleep(0.8)  # idle longer than the header timeout, less than keep-alive
            assert http.get("/health").status_code == 200
    svc.infra.db.dispose()
