"""``idsvc serve`` as a real process on loopback, over a test service's database: a free port,
waiting until it answers, and ``--workers 2`` set-ups.

Two shapes of it: ``serving_workers`` (``Served``: connections pinned to a known worker, found
from ``/proc``, so a check provably crosses workers) and ``launching`` (``Server``: JSON logs
and multi-process metrics, for the observability and readiness tests).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from idsvc.config import Settings
from idsvc.services import Services
from tests.support.cli_runner import IDSVC
from tests.support.settings import PASSPHRASE

ANONYMOUS_LIMIT = 12  # the anonymous rate limit ``serving_workers`` sets
SYNC = 0.2  # seconds a worker counts alone; the tests wait longer between requests


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 20.0) -> httpx.Response:
    """The first answer from ``url``; fails if ``proc`` exits or nothing answers in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"idsvc serve exited with {proc.returncode}")
        try:
            return httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url} within {timeout} s")


def service_now() -> datetime:
    """The clock of an ``idsvc serve`` process: the wall clock (not the tests' ``NOW``)."""
    return datetime.now(UTC)


def worker_pids(pid: int) -> list[int]:
    """The children of process ``pid`` (uvicorn's supervisor: its workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def idsvc_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that configures ``idsvc`` as ``settings`` (and nothing else inherited)."""
    return (
        {k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")}
        | {
            "IDSVC_HOME": str(settings.home),
            "IDSVC_DATABASE_URL": settings.resolved_database_url,
            "IDSVC_KEY_PASSPHRASE": PASSPHRASE,
            "IDSVC_ISSUER": settings.issuer,
            "IDSVC_PUBLIC_URL": settings.public_url,
            "IDSVC_STATUS_LIST_SIZE": str(settings.status_list_size),
        }
        | extra
    )


# -- Connections pinned to a worker --------------------------------------------------------


def _server_socket_inode(server_port: int, client_port: int) -> int | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if (
            int(local.split(":")[1], 16) == server_port
            and int(remote.split(":")[1], 16) == client_port
        ):
            return inode
    return None


def _holder_of(inode: int, pids: list[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:
                continue
    return None


@dataclass
class Conn:
    """One keep-alive connection, and the worker process that serves it."""

    http: http.client.HTTPConnection
    worker: int

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body)
        hdrs = {"content-type": "application/json", **(headers or {})}
        self.http.request(method, path, body=data, headers=hdrs)
        r = self.http.getresponse()
        payload = r.read()
        return r.status, (json.loads(payload) if payload else {})


@dataclass
class Served:
    port: int
    proc: subprocess.Popen[str]

    @property
    def workers(self) -> list[int]:
        # Read each time: uvicorn's supervisor replaces a worker that missed a health check.
        return worker_pids(self.proc.pid)

    def connect(self) -> Conn:
        for _ in range(50):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            conn.connect()
            # A request makes sure the worker has accepted the connection.
            conn.request("GET", "/health")
            conn.getresponse().read()
            assert conn.sock is not None
            inode = _server_socket_inode(self.port, conn.sock.getsockname()[1])
            worker = _holder_of(inode, self.workers) if inode is not None else None
            if worker is not None:
                return Conn(conn, worker)
            conn.close()
        raise AssertionError("could not tell which worker holds the connection")

    def two_workers(self) -> tuple[Conn, Conn]:
        """Connections to two different workers (kept open, so the kernel spreads new ones)."""
        first = self.connect()
        spare: list[Conn] = []
        for _ in range(60):
            if len(spare) > 8:  # a worker still starting: give it a moment
                time.sleep(0.5)
            # On a loaded machine the search can outlast the server's keep-alive limit: keep the
            # first connection busy, or the caller's next request meets a closed socket.
            first.call("GET", "/health")
            other = self.connect()
            if other.worker != first.worker:
                for c in spare:
                    c.http.close()
                return first, other
            spare.append(other)
        raise AssertionError("every connection went to one worker")


@contextmanager
def serving_workers(service: Services) -> Iterator[Served]:
    """``idsvc serve --workers 2`` over ``service``'s database until the block ends; its log
    must hold no traceback."""
    s = service.settings
    env = idsvc_env(
        s, IDSVC_RATE_LIMIT_ANONYMOUS=str(ANONYMOUS_LIMIT), IDSVC_RATE_LIMIT_SYNC=str(SYNC)
    )
    port = free_port()
    log_path = s.home.parent / "serve.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [IDSVC, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    try:
        # Generous: on a loaded CI machine a worker takes seconds to import the app.
        try:
            wait_healthy(f"http://127.0.0.1:{port}/health", proc, timeout=90)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; server log:\n{log_path.read_text()}") from None
        yield Served(port, proc)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        assert "Traceback" not in log_path.read_text()


# -- Servers with JSON logs and metrics ----------------------------------------------------


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[str]
    log: Path
    metrics_dir: Path

    @property
    def workers(self) -> set[int]:
        return set(worker_pids(self.proc.pid))

    def get(self, path: str, **kw: object) -> httpx.Response:
        # A new connection per request: the kernel spreads them over both workers.
        return httpx.get(self.base + path, timeout=10.0, **kw)  # type: ignore[arg-type]

    def post(self, path: str, **kw: object) -> httpx.Response:
        return httpx.post(self.base + path, timeout=10.0, **kw)  # type: ignore[arg-type]


def serve_env(service: Services, **extra: str) -> dict[str, str]:
    """``idsvc_env`` with JSON logs, a fast check-log flush and a multi-process metrics dir."""
    s = service.settings
    observed = {
        "IDSVC_LOG_FORMAT": "json",
        "IDSVC_CHECK_LOG_FLUSH": "0.2",
        "PROMETHEUS_MULTIPROC_DIR": str(s.home.parent / "prom"),
    }
    return idsvc_env(s, **(observed | extra))


Launch = Callable[..., Server]


@contextmanager
def launching(service: Services) -> Iterator[Launch]:
    """``run(**env)`` starts ``idsvc serve --workers 2`` on ``service``'s database; every
    server started is stopped at the end."""
    started: list[Server] = []

    def run(**extra: str) -> Server:
        env = serve_env(service, **extra)
        port = free_port()
        log = service.settings.home.parent / f"serve-{len(started)}.log"
        proc = subprocess.Popen(
            [IDSVC, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
        )
        server = Server(
            f"http://127.0.0.1:{port}", proc, log, Path(env["PROMETHEUS_MULTIPROC_DIR"])
        )
        started.append(server)
        try:
            wait_healthy(f"{server.base}/healthz", proc, timeout=90)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; log:\n{log.read_text()}") from None
        _wait_for_workers(server)
        return server

    try:
        yield run
    finally:
        for server in started:
            stop(server)


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def _wait_for_workers(server: Server) -> None:
    """Both workers answer (each has written its metric files once it served a request)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = {int(m) for m in re.findall(r"_(\d+)\.db", " ".join(os.listdir(server.metrics_dir)))}
        if len(server.workers & seen) == 2:  # (children also include multiprocessing's helper)
            return
        for _ in range(4):
            server.get("/healthz")
        time.sleep(0.1)
    raise AssertionError("both workers did not answer within 60 s")
