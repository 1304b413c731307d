"""``idsvc serve --workers 2`` on loopback, SQLite and PostgreSQL: nothing that must be shared
lives in one worker's memory.

Which worker answers a connection is found from ``/proc`` (the server-side socket of our
connection and the worker process holding it), so each check provably crosses workers.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from idsvc.clients.api_clients import ApiClients
from idsvc.service import IdService
from tests.conftest import PASSPHRASE
from tests.mobile_api.conftest import ACTIVE_EMPLOYEE
from tests.mobile_api.test_card_challenges import issue_card
from tests.mobile_api.test_serve import free_port, wait_healthy
from tests.support.cli_runner import IDSVC

ANONYMOUS_LIMIT = 12
SYNC = 0.2  # seconds a worker counts alone; the test waits longer between requests


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


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
        return _children(self.proc.pid)

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


@pytest.fixture
def served(service: IdService) -> Iterator[Served]:
    s = service.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")} | {
        "IDSVC_HOME": str(s.home),
        "IDSVC_DATABASE_URL": s.resolved_database_url,
        "IDSVC_KEY_PASSPHRASE": PASSPHRASE,
        "IDSVC_ISSUER": s.issuer,
        "IDSVC_PUBLIC_URL": s.public_url,
        "IDSVC_STATUS_LIST_SIZE": str(s.status_list_size),
        "IDSVC_RATE_LIMIT_ANONYMOUS": str(ANONYMOUS_LIMIT),
        "IDSVC_RATE_LIMIT_SYNC": str(SYNC),
    }
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


def _start_of_a_window() -> bool:
    """Rate limits count per wall-clock minute: start the counting part well inside one.
    Return whether it waited."""
    if time.time() % 60 > 40:
        time.sleep(60 - time.time() % 60 + 0.5)
        return True
    return False


def test_state_is_shared_across_workers(service: IdService, served: Served) -> None:
    a, b = served.two_workers()
    assert a.worker != b.worker

    # A challenge made on one worker verifies on the other, once; replays fail on both.
    card = issue_card(service, ACTIVE_EMPLOYEE, 20000001)
    status, ch = a.call("POST", "/v1/card-challenges")
    assert status == 201
    answer = {
        "challenge_id": ch["challenge_id"],
        "certificate": base64.b64encode(card.certificate).decode(),
        "credential": card.credential,
        "signature": base64.b64encode(card.sign(base64.b64decode(ch["nonce"]))).decode(),
    }
    status, result = b.call("POST", "/v1/card-verifications", answer)
    assert (status, result["valid"], result["reasons"]) == (200, True, [])
    for conn in (a, b):
        status, result = conn.call("POST", "/v1/card-verifications", answer)
        assert (status, result["reasons"]) == (200, ["CHALLENGE_INVALID"])

    # A disabled client is refused on its next request, whichever worker gets it.
    clients = ApiClients(service.db)
    _, secret = clients.add("Ministry Admin", ["admin"], service_now())
    auth = {"authorization": f"Bearer {secret}"}
    path = f"/v1/holders/{ACTIVE_EMPLOYEE}/checks"
    assert a.call("GET", path, headers=auth)[0] == 200
    assert b.call("GET", path, headers=auth)[0] == 200
    clients.disable("Ministry Admin", service_now())
    assert b.call("GET", path, headers=auth)[0] == 401
    assert a.call("GET", path, headers=auth)[0] == 401
    # The card check was logged by the worker that served it (write-behind: ≤ 1 s), and is
    # read on the other. (The refused replays name no one: their credential was not checked.)
    clients.enable("Ministry Admin", service_now())
    time.sleep(1.5)
    status, log = a.call("GET", path, headers=auth)
    assert [(c["kind"], c["result"]) for c in log["checks"]] == [("card", "valid")]

    # The anonymous rate limit is one budget for the address across both workers.
    if _start_of_a_window():
        # The server closes keep-alive connections idle for 5 s: connect to both again.
        for conn in (a, b):
            conn.http.close()
        a, b = served.two_workers()
    answers = []
    for i in range(ANONYMOUS_LIMIT + 2):
        conn = a if i % 2 else b
        answers.append(conn.call("POST", "/v1/verifications", {"credential": card.credential})[0])
        time.sleep(SYNC * 1.5)
    allowed = answers.index(429)
    assert answers == [200] * allowed + [429] * (len(answers) - allowed)
    # The card checks above spent 4 of the budget, unless a new minute began since.
    assert allowed in (ANONYMOUS_LIMIT - 4, ANONYMOUS_LIMIT)


def service_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
