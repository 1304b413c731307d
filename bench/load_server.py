"""The servers of the load and fault drills (``load_rig``): ``idsvc serve`` as an operator
starts it, and the bare-FastAPI floor through the same ``run_server``; each a real process in
its own session on a free loopback port, its output in a log file. ``Served`` also tells which
worker process holds a connection (from ``/proc``), for the worker-kill drill.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
IDSVC = str(Path(sys.executable).with_name("idsvc"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


LAUNCH_BARE = """
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


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """PIDs of the supervisor's worker processes (read each time: they may be replaced)."""
        found: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
        # Not multiprocessing's resource tracker, the supervisor's other child.
        return sorted(p for p in found if b"spawn_main" in _cmdline(p))

    def peak_rss(self) -> dict[int, int]:
        """Peak resident memory so far (``VmHWM``, KiB) of each live worker, by PID: read
        before ``stop``, while the workers still exist."""
        peaks: dict[int, int] = {}
        for pid in self.workers():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks[pid] = int(line.split()[1])  # "VmHWM:   123456 kB"
        return peaks

    def holder(self, client_port: int) -> int | None:
        """The worker holding the server side of our connection from ``client_port``."""
        inode = _server_inode(self.port, client_port)
        if inode is None:
            return None
        target = f"socket:[{inode}]"
        for pid in self.workers():
            try:
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) == target:
                            return pid
            except OSError:
                continue
        return None

    def connections_of(self, pid: int) -> int:
        """Established client connections that worker ``pid`` holds."""
        mine = set()
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        mine.add(int(link[8:-1]))
        except OSError:
            return 0
        return sum(1 for inode in _established(self.port) if inode in mine)

    def stop(self) -> str:
        """SIGINT (a clean shutdown), then the server's log."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.log.read_text(errors="replace")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _tcp_rows() -> list[list[str]]:
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            rows += [line.split() for line in Path(table).read_text().splitlines()[1:]]
    return rows


def _established(server_port: int) -> list[int]:
    """Socket inodes of established connections accepted on ``server_port``."""
    return [
        int(f[9])
        for f in _tcp_rows()
        if int(f[1].rsplit(":", 1)[1], 16) == server_port and f[3] == "01"
    ]


def _server_inode(server_port: int, client_port: int) -> int | None:
    for f in _tcp_rows():
        local, remote = f[1].rsplit(":", 1)[1], f[2].rsplit(":", 1)[1]
        if int(local, 16) == server_port and int(remote, 16) == client_port:
            return int(f[9])
    return None


def _start(cmd: list[str], env: dict[str, str], port: int, log: Path, probe: str) -> Served:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    served = Served(proc, port, log)
    deadline = time.monotonic() + 180  # workers import slowly on a loaded machine
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(served.base + probe, timeout=2.0).status_code < 500:
                return served
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    served.stop()
    raise RuntimeError(f"no answer from {served.base} within 180 s")


def serve_idsvc(env: dict[str, str], log: Path, workers: int = 2) -> Served:
    """``idsvc serve`` (the console script) on a free loopback port, configured by ``env``."""
    port = free_port()
    cmd = [IDSVC, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    served = _start(cmd, env, port, log, "/healthz")
    if workers > 1:  # both workers up, so the kernel can spread connections from the start
        deadline = time.monotonic() + 120
        while len(served.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.2)
    return served


def serve_bare(env: dict[str, str], jwks: dict[str, Any], tmp: Path, workers: int = 2) -> Served:
    """``bench/api_baseline_app.py`` through the same ``run_server`` (uvicorn settings, socket,
    worker count): the floor that framework, server and kernel cost on this machine today."""
    path = tmp / "jwks.json"
    path.write_text(json.dumps(jwks))
    port = free_port()
    launcher = LAUNCH_BARE.format(bench=str(ROOT / "bench"), port=port, workers=workers)
    env = env | {"BENCH_JWKS": str(path), "PYTHONPATH": str(ROOT)}
    return _start([sys.executable, "-c", launcher], env, port, tmp / "bare.log", "/docs")


def problems_in_log(log: str) -> list[str]:
    """Lines of a server log that say a request failed inside idsvc (500s, tracebacks)."""
    return [
        line
        for line in log.splitlines()
        if "Traceback" in line or "internal error" in line or re.search(r'"status": ?500', line)
    ]
