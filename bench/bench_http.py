"""Keep-alive load on `idsvc serve --workers 1` and `--workers 2`: req/s and latency, one run.

    .venv/bin/python bench/bench_http.py [--seconds 3] [--clients 2] [--rounds 1]

Each server is the real console script in a subprocess on a free 127.0.0.1 port, over a fresh
temporary IDSVC_HOME (SQLite, `idsvc init`, the sample HR import, one issued credential). The
load is ``--clients`` threads, each with its own keep-alive ``httpx.Client``, POSTing that
credential to /v1/verify for ``--seconds``. Seen before the socket fix: uvicorn with several
workers stalled ~44 ms per keep-alive request (TCP_NODELAY not set); a p50 near 40 ms shows it.

The cause, in uvicorn 0.54: with ``workers > 1`` it binds the listening socket itself with
``socket.socket(family=AF_INET)``, whose ``proto`` is 0, and asyncio only sets TCP_NODELAY on
accepted sockets whose ``proto == IPPROTO_TCP``. ``idsvc serve`` therefore binds the
multi-worker socket itself (``idsvc.cli.server.run_server``); this bench shows whether it holds.
Loopback only; every phase has a time limit. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
IDSVC = str(Path(sys.executable).with_name("idsvc"))
SAMPLE_CSV = ROOT / "idsvc" / "data" / "hr_sample.csv"
EMPLOYEE = "LA-MOHA-000101"
STALL_MS = 30.0  # a request slower than this on loopback is a Nagle/delayed-ACK stall


@dataclass
class Result:
    workers: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def stalled(self) -> float:
        slow = sum(1 for ms in self.latencies_ms if ms > STALL_MS)
        return slow / max(1, len(self.latencies_ms))


def run(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [IDSVC, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"idsvc {args[0]} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def prepare(home: Path) -> tuple[dict[str, str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")} | {
        "IDSVC_HOME": str(home),
        "IDSVC_DATABASE_URL": f"sqlite:///{home / 'idsvc.sqlite3'}",
        "IDSVC_KEY_PASSPHRASE": secrets.token_urlsafe(24),
    }
    run(env, "init")
    run(env, "import-hr", str(SAMPLE_CSV))
    token = run(env, "issue", EMPLOYEE).strip()
    if token.count(".") != 2:
        raise SystemExit(f"unexpected output of idsvc issue: {token[:60]!r}")
    return env, token


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"idsvc serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{base} not healthy within {timeout} s")


def load(base: str, token: str, clients: int, seconds: float) -> tuple[int, int, list[float]]:
    body = {"credential": token}
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        with httpx.Client(base_url=base, timeout=5.0) as http:  # one keep-alive connection
            http.post("/v1/verify", json=body)  # connect before the clock starts
            start.wait()
            end = time.perf_counter() + seconds
            while (t0 := time.perf_counter()) < end:
                r = http.post("/v1/verify", json=body)
                latencies[i].append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200 or r.json().get("valid") is not True:
                    errors[i] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join(seconds + 30)
    flat = [ms for per in latencies for ms in per]
    return len(flat), sum(errors), flat


def measure(env: dict[str, str], token: str, workers: int, args: argparse.Namespace) -> Result:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        IDSVC,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_healthy(base, proc)
        load(base, token, args.clients, min(1.0, args.seconds))  # warm up every worker
        total, errors, flat = 0, 0, list[float]()
        for _ in range(args.rounds):
            n, e, lat = load(base, token, args.clients, args.seconds)
            total, errors, flat = total + n, errors + e, flat + lat
        return Result(str(workers), total, errors, args.seconds * args.rounds, flat)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the server and its workers
            proc.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="load per round (max 30)")
    parser.add_argument("--clients", type=int, default=2, help="keep-alive client threads")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per server (max 5)")
    args = parser.parse_args()
    args.seconds = min(max(args.seconds, 0.5), 30.0)
    args.rounds = min(max(args.rounds, 1), 5)
    args.clients = min(max(args.clients, 1), 16)

    with tempfile.TemporaryDirectory(prefix="idsvc-bench-") as tmp:
        env, token = prepare(Path(tmp) / "home")
        results = [measure(env, token, workers, args) for workers in (1, 2)]

    print(f"POST /v1/verify, {args.clients} keep-alive clients, {args.seconds:g} s x {args.rounds}")
    print(f"{'workers':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'>30ms':>7} {'errors':>6}")
    for r in results:
        print(
            f"{r.workers:>7} {r.rps:>8.0f} {r.pct(0.50):>8.2f} {r.pct(0.99):>8.2f} "
            f"{r.stalled:>7.1%} {r.errors:>6}"
        )
    one, two = results[:2]
    print(f"ratio 2 workers / 1 worker: {two.rps / one.rps:.2f}x req/s")
    for r in results:
        if r.stalled > 0.5:
            print(
                f"STALL: --workers {r.workers}: {r.stalled:.0%} of requests over {STALL_MS:g} ms "
                f"(p50 {r.pct(0.5):.1f} ms) - the keep-alive stall (TCP_NODELAY)"
            )
    if statistics.median(one.latencies_ms or [0]) > STALL_MS:
        print("note: even one worker is slow; the machine may be overloaded")


if __name__ == "__main__":
    main()
