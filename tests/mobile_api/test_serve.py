"""`idsvc serve` as an operator starts it: a real process, configured from the environment."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx

from tests.support.cli_runner import IDSVC, Cli
from tests.support.serve import free_port, wait_healthy


def test_idsvc_serve_answers_health_and_jwks(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'idsvc.sqlite3'}")
    r = cli("init")
    assert r.returncode == 0, r.stderr
    expected_jwks = json.loads(cli("keys", "jwks").stdout)
    port = free_port()
    proc = subprocess.Popen(
        [IDSVC, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}/health", proc)
        jwks = httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json", timeout=5.0)
        verify = httpx.post(
            f"http://127.0.0.1:{port}/v1/verifications", json={"credential": "x.y.z"}, timeout=5.0
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert health.status_code == 200, health.text
    assert health.json() == {"status": "ok"}
    assert health.headers["x-content-type-options"] == "nosniff"
    assert jwks.status_code == 200 and jwks.json() == expected_jwks
    assert verify.status_code == 200 and verify.json()["reasons"] == ["MALFORMED"]
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"127.0.0.1:{port}" in stderr  # uvicorn's startup line: it served on that port
