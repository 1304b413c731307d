"""Issue 15: what a request may cost before any route runs, against `idsvc serve --workers 2`
(the real console script, the protocol and socket it sets up).

- JSON bodies nest at most ``MAX_DEPTH`` levels, on every route that takes one, for anonymous
  and authenticated callers alike: deeper is a 422 ``JSON_TOO_DEEP``, never a 500.
- A request's line and headers take at most ``HEAD_LIMIT`` bytes: more is a 431, the worker
  stops reading them (its memory stays flat) and goes on serving.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
from pathlib import Path

import pytest

from idsvc.cli.server import HEAD_LIMIT
from idsvc.config import Settings
from idsvc.services import Services
from mobile_api.json_body import MAX_DEPTH
from tests.support.payroll import add_client
from tests.support.serve import Served
from tests.support.settings import make_settings

PROBLEM = "application/problem+json"


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """SQLite alone: these limits act before any route reaches the database."""
    return make_settings(tmp_path / "home", sqlite_url)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _send(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str, dict[str, object]]:
    conn.request(method, path, body=body, headers={"content-type": "application/json", **headers})
    r = conn.getresponse()
    payload = r.read()
    return r.status, r.getheader("content-type") or "", json.loads(payload) if payload else {}


def test_deep_json_is_refused_on_every_route_and_worker(service: Services, served: Served) -> None:
    a, b = served.two_workers()
    payroll = _bearer(service, "payroll")
    # Every operation that takes a body, read from the running server's own schema (a route
    # added later is covered too), with and without credentials.
    a.http.request("GET", "/openapi.json")
    schema = json.loads(a.http.getresponse().read())
    routes: list[tuple[str, str, dict[str, str], bytes]] = [
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path), {}, b'{"a": ' + _nested(3000) + b"}")
        for path, item in schema["paths"].items()
        for method in item
        if method in ("post", "put", "patch", "delete")
    ]
    assert len(routes) > 20
    routes += [
        ("POST", "/v1/verifications", {}, b'{"credential": ' + _nested(5000) + b"}"),
        ("POST", "/v1/verify", {}, _nested(MAX_DEPTH + 1)),
        ("POST", "/v1/card-challenges", {}, _nested(MAX_DEPTH + 1)),
        ("POST", "/v1/payroll/checks", payroll, b'{"items": [' + _nested(100_000) + b"]}"),
        ("POST", "/v1/hr/records", _bearer(service, "hr:write"), b'{"records": ' + _nested(999)
         + b"}"),
        ("POST", "/v1/desk/sessions", {"Desk-Proof": "x"}, b"[" * 65 + b"]" * 65),
    ]  # fmt: skip
    for conn in (a, b):
        for method, path, headers, body in routes:
            status, media, problem = _send(conn.http, method, path, body, headers)
            assert (status, media, problem.get("code")) == (422, PROBLEM, "JSON_TOO_DEEP"), path
            assert f"{MAX_DEPTH} levels" in str(problem["detail"])
    # Exactly the cap is JSON like any other (here refused by the route's schema, not depth).
    status, _, problem = _send(a.http, "POST", "/v1/verifications", _nested(MAX_DEPTH), {})
    assert (status, problem["code"]) == (422, "INVALID_REQUEST")
    # Brackets inside strings are text, not nesting.
    text = json.dumps({"credential": "[{" * 5000 + '\\"[' * 100}).encode()
    status, _, answer = _send(b.http, "POST", "/v1/verifications", text, {})
    assert (status, answer["valid"]) == (200, False)


def _bearer(service: Services, scope: str) -> dict[str, str]:
    _, secret = add_client(service, f"client {scope.replace(':', ' ')}", scope)
    return {"authorization": f"Bearer {secret}"}


def _rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _raw(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send a request as bytes (in one write when small); the status and the answer's body."""
    head = head.replace(b"Host: t\r\n", b"Host: t\r\nConnection: close\r\n", 1)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_oversized_request_heads_get_431_and_cost_no_memory(served: Served) -> None:
    port = served.port
    a, b = served.two_workers()  # both workers up and counted
    before = _rss_kib(served.workers)
    big = b"x" * (16 * 1024 * 1024)
    for _ in range(4):
        status, body = _raw(port, b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + big + b"\r\n\r\n")
        problem = json.loads(body)
        assert (status, problem["code"]) == (431, "HEADERS_TOO_LARGE")
        assert str(HEAD_LIMIT) in problem["detail"]
    grown = _rss_kib(served.workers) - before
    assert grown < 32 * 1024, f"workers grew by {grown} KiB"
    # One header of 1 MB, many small headers, a long URL: each is over the limit.
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(400))
    for head in (
        b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"y" * 1024 * 1024 + b"\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: t\r\n" + many + b"\r\n",
        b"GET /health?" + b"q" * (HEAD_LIMIT + 1) + b" HTTP/1.1\r\nHost: t\r\n\r\n",
    ):
        assert _raw(port, head)[0] == 431
    # Under the limit, and a small head followed by a large body in the same write: served.
    fits = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Fit: " + b"f" * (HEAD_LIMIT - 200) + b"\r\n\r\n"
    assert _raw(port, fits)[0] == 200
    payload = json.dumps({"credential": "z" * 60_000}).encode()  # too long for the schema
    head = (
        b"POST /v1/verifications HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(payload)
    )
    status, body = _raw(port, head, payload)
    assert (status, json.loads(body)["code"]) == (422, "INVALID_REQUEST")
    # Both workers still serve on their keep-alive connections, and new ones.
    for conn in (a, b):
        conn.http.request("GET", "/health")
        assert conn.http.getresponse().status == 200
        conn.http.close()
    time.sleep(0.1)
    assert _raw(port, b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")[0] == 200
