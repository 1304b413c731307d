"""Requests per second of ``POST /v1/verifications`` against a bare FastAPI endpoint that only
decodes the same token with PyJWT, on the same server settings, as a ratio (goal ≥ 1.0).

    .venv/bin/python bench/bench_api_verify.py [--seconds 10] [--rounds 3] [--connections 16]
                                               [--workers 2] [--db sqlite|postgres]

Both servers run through ``idsvc.cli.server.run_server`` (uvicorn, the same protocol class,
timeouts, TCP_NODELAY socket and worker count); only the app differs. ``wrk`` (Debian
package ``wrk``) makes the load over keep-alive connections on loopback; the two servers take
turns, round after round, so drifting machine speed hits both alike. The idsvc server is the
real ``idsvc serve`` over a fresh home (``idsvc init``, the sample HR import, one issued
credential), with its caches and write-behind at their defaults and the anonymous rate limit
raised out of the way (the counter still runs on every request). Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
IDSVC = str(Path(sys.executable).with_name("idsvc"))
SAMPLE_CSV = ROOT / "idsvc" / "data" / "hr_sample.csv"
EMPLOYEE = "LA-MOHA-000101"
POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GOAL = 1.0

LAUNCH_BASELINE = """
import sys
sys.path.insert(0, {bench!r})
from idsvc.cli import server
make = server.server_config
def patched(*args, **kwargs):
    config = make(*args, **kwargs)
    config.app = "api_baseline_app:create_app"
    return config
server.server_config = patched
server.run_server("127.0.0.1", {port}, {workers})
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([IDSVC, *args], env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"idsvc {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout


def start(cmd: list[str], env: dict[str, str], base: str, probe: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 180  # workers import slowly on a loaded machine
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[0]} exited with {proc.returncode}")
        try:
            httpx.get(base + probe, timeout=1.0)
            return proc
        except httpx.TransportError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"no answer from {base}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def server_cpu_seconds(session: int) -> float:
    """CPU time (user + system) so far of every process in the server's session (supervisor
    and workers): what the requests cost, whatever else the shared machine runs meanwhile."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[3]) == session:  # fields after "(comm)": state ppid pgrp session ...
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str, body: str, seconds: float, connections: int, script: Path
) -> tuple[float, int, int]:
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    proc = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    out = proc.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise SystemExit(f"wrk said: {out.strip()} {proc.stderr.strip()}")
    rps = float(found.group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    return rps, int(bad.group(1)) if bad else 0, int(total.group(1)) if total else 0


def asgi_child(rounds: int, requests: int) -> None:
    """Run in a child process: both apps driven straight through ASGI (no socket, no server,
    no wrk), alternating, in one process; prints the CPU µs per request of each, per round.
    What the apps cost, apart from the server both share and from the machine's load."""
    import asyncio
    import logging.config

    from api_baseline_app import create_app as create_bare

    from idsvc.cli.observability import log_config
    from mobile_api.app import create_app

    logging.config.dictConfig(log_config("json"))
    quiet = logging.getLogger().handlers[0]
    assert isinstance(quiet, logging.StreamHandler)
    quiet.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)
    body = json.dumps({"credential": os.environ["BENCH_TOKEN"]}).encode()
    apps = {"bare": (create_bare(), "/bare"), "ours": (create_app(), "/v1/verifications")}
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]

    async def call(app: Any, path: str) -> None:
        sent: list[dict[str, Any]] = []
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"{path}: status {sent[0]['status']}")

    async def drive() -> dict[str, list[float]]:
        costs: dict[str, list[float]] = {"bare": [], "ours": []}
        for app, path in apps.values():
            for _ in range(200):  # warm caches, imports, the thread pool
                await call(app, path)
        for _ in range(rounds):
            for name, (app, path) in apps.items():
                started = time.process_time()
                for _ in range(requests):
                    await call(app, path)
                costs[name].append((time.process_time() - started) / requests)
        return costs

    print(json.dumps(asyncio.run(drive())))


def in_process_costs(env: dict[str, str], rounds: int) -> dict[str, list[float]]:
    child = subprocess.run(
        [sys.executable, __file__, "--asgi-child", str(rounds)],
        env=env | {"PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if child.returncode != 0:
        raise SystemExit(f"in-process run failed: {child.stderr.strip()[-500:]}")
    costs: dict[str, list[float]] = json.loads(child.stdout.strip().splitlines()[-1])
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--asgi-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.asgi_child:
        asgi_child(args.asgi_child, requests=1000)
        return

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        home = Path(tmp) / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")} | {
            "IDSVC_HOME": str(home),
            "IDSVC_KEY_PASSPHRASE": secrets.token_urlsafe(16),
            "IDSVC_RATE_LIMIT_ANONYMOUS": str(10**9),
        }
        schema = None
        if args.db == "postgres":
            import sqlalchemy

            url = os.environ.get(
                "IDSVC_BENCH_POSTGRES_URL",
                os.environ.get("IDSVC_TEST_POSTGRES_URL", POSTGRES_DEFAULT),
            )
            schema = f"bench_{secrets.token_hex(4)}"
            engine = sqlalchemy.create_engine(url)
            with engine.begin() as conn:
                conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
            env["IDSVC_DATABASE_URL"] = f"{url}?options=-csearch_path%3D{schema}"
        try:
            run(env, "init")
            run(env, "import-hr", str(SAMPLE_CSV))
            token = run(env, "issue", EMPLOYEE).strip()
            jwks = Path(tmp) / "jwks.json"
            jwks.write_text(run(env, "keys", "jwks"))
            body = json.dumps({"credential": token})
            script = Path(tmp) / "post.lua"

            ours_port, base_port = free_port(), free_port()
            ours = f"http://127.0.0.1:{ours_port}"
            bare = f"http://127.0.0.1:{base_port}"
            cmd_ours = [IDSVC, "serve", "--port", str(ours_port), "--workers", str(args.workers)]
            launcher = LAUNCH_BASELINE.format(
                bench=str(ROOT / "bench"), port=base_port, workers=args.workers
            )
            cmd_bare = [sys.executable, "-c", launcher]
            env_bare = env | {"BENCH_JWKS": str(jwks), "PYTHONPATH": str(ROOT)}

            results: dict[str, list[float]] = {"ours": [], "bare": []}
            errors = {"ours": 0, "bare": 0}
            cpu_per_request: dict[str, list[float]] = {"ours": [], "bare": []}
            for _ in range(args.rounds):
                for name, cmd, cmd_env, base, path in (
                    ("bare", cmd_bare, env_bare, bare, "/bare"),
                    ("ours", cmd_ours, env, ours, "/v1/verifications"),
                ):
                    proc = start(cmd, cmd_env, base, "/docs" if name == "bare" else "/health")
                    try:
                        first = httpx.post(base + path, json={"credential": token}, timeout=10)
                        if first.status_code != 200 or first.json().get("valid") is not True:
                            raise SystemExit(f"{name}: not a valid answer: {first.text[:200]}")
                        wrk(base + path, body, 1.0, args.connections, script)  # warm-up
                        cpu = server_cpu_seconds(proc.pid)
                        rps, bad, done = wrk(
                            base + path, body, args.seconds, args.connections, script
                        )
                        cpu = server_cpu_seconds(proc.pid) - cpu
                    finally:
                        stop(proc)
                    results[name].append(rps)
                    cpu_per_request[name].append(cpu / max(done, 1))
                    errors[name] += bad
            env_child = env_bare | {"BENCH_TOKEN": token}
            in_process = in_process_costs(env_child, max(args.rounds, 5))
        finally:
            if schema is not None:
                with engine.begin() as conn:
                    conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
                engine.dispose()

    ratios = [o / b for o, b in zip(results["ours"], results["bare"], strict=True)]
    print(
        f"db: {args.db}, workers: {args.workers}, wrk -t2 -c{args.connections}, "
        f"{args.rounds} rounds of {args.seconds:.0f} s each"
    )
    for name, label in (
        ("bare", "bare FastAPI + PyJWT decode"),
        ("ours", "POST /v1/verifications"),
    ):
        rates = " ".join(f"{r:.0f}" for r in results[name])
        print(
            f"{label:32} median {statistics.median(results[name]):7.0f} req/s  "
            f"(rounds: {rates}; non-2xx: {errors[name]})"
        )
    ratio = statistics.median(ratios)
    verdict = "PASS" if ratio >= GOAL else "MISS"
    print(
        f"ratio ours/bare: median {ratio:.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f}); "
        f"goal ≥ {GOAL}: {verdict}"
    )
    # Server CPU per request: on a shared machine the wall-clock rate moves with other
    # people's load; the CPU a request costs the server moves much less.
    for name in ("bare", "ours"):
        costs = " ".join(f"{c * 1e6:.0f}" for c in cpu_per_request[name])
        print(
            f"server CPU per request, {name}: median "
            f"{statistics.median(cpu_per_request[name]) * 1e6:.0f} µs (rounds: {costs})"
        )
    cpu_ratios = [
        b / o for b, o in zip(cpu_per_request["bare"], cpu_per_request["ours"], strict=True) if o
    ]
    cpu_ratio = statistics.median(cpu_ratios)
    print(
        f"CPU-cost ratio bare/ours (= req/s ratio on CPU-bound servers): median "
        f"{cpu_ratio:.2f} (rounds {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}); goal ≥ {GOAL}: "
        f"{'PASS' if cpu_ratio >= GOAL else 'MISS'}"
    )

    # The apps alone, in one process, no socket: the load-independent part of the answer.
    app_ratios = [b / o for b, o in zip(in_process["bare"], in_process["ours"], strict=True) if o]
    for name in ("bare", "ours"):
        costs = " ".join(f"{c * 1e6:.0f}" for c in in_process[name])
        print(f"app alone (ASGI, in-process) CPU per request, {name}: {costs} µs")
    print(
        f"app-alone CPU ratio bare/ours: median {statistics.median(app_ratios):.2f} "
        f"(rounds {min(app_ratios):.2f}-{max(app_ratios):.2f})"
    )


if __name__ == "__main__":
    main()
