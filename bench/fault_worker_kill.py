"""Fault: one of ``idsvc serve --workers 2``'s workers killed with ``kill -9`` under mixed load.

    .venv/bin/python bench/fault_worker_kill.py [--seconds 60] [--kill-at 20] [--connections 8]

uvicorn's supervisor (``uvicorn.supervisors.multiprocess``, uvicorn 0.54 as pinned) checks its
workers every half second and starts a new one in place of a dead one; the workers share one
listening socket, so connections not yet accepted wait in the kernel's queue for any live
worker. uvicorn alone noticed a worker killed while its health ping was out only when the
ping timed out (``WORKER_HEALTHCHECK``, 20 s); ``idsvc serve``'s supervisor
(``idsvc.cli.server._Supervisor``) notices it at once. ``--hang-first S`` stops the worker S
seconds before the kill (a hung worker), which makes that case certain.

What must hold: the other worker keeps answering (a prober opens fresh connections
from the kill until the replacement is up, each must get its answer), the supervisor replaces
the worker (a new PID, which then serves a connection of its own), and the only requests that
fail are those in flight on the killed worker's connections (wrk's socket errors and
unanswered requests at most the number of connections it held). HR updates are checked as in
``load_mixed.py``: wrk's HR client sends an update that lost its answer again with the same
``Idempotency-Key``, so each one is stored exactly once, with one audit event, and the audit
chain verifies. PostgreSQL as in ``load_mixed.py``. PASS/FAIL; the suite runs the same
code for ~10 s (``tests/system/test_fault_worker_kill.py``).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_mixed
import load_rig


@dataclass
class KillDrill:
    load: load_rig.LoadResult
    kept: load_rig.Stored
    victim: int
    victim_connections: int
    workers_before: list[int]
    workers_after: list[int]
    replaced_after: float | None  # seconds from the kill to a new worker process
    replacement_answered: bool  # a connection held by the new worker got its 200
    serving_after: float | None  # seconds from the kill to that answer
    gap_probes: list[int | None]  # statuses of the prober's requests during the gap
    server_problems: list[str]
    supervisor_log: list[str]  # what uvicorn's supervisor and the new worker said

    @property
    def failures(self) -> list[str]:
        found = []
        if self.replaced_after is None:
            found.append("the killed worker was never replaced")
        elif not self.replacement_answered:
            found.append("the new worker never answered a connection of its own")
        if len(self.workers_after) != len(self.workers_before):
            found.append(f"workers {self.workers_before} -> {self.workers_after}")
        if not self.gap_probes or any(s != 200 for s in self.gap_probes):
            found.append(f"requests while a worker was down: {self.gap_probes}")
        failed = self.load.lost() + sum(self.load.socket_errors.values())
        # Each connection the dead worker held loses at most its request in flight; wrk
        # counts that once as a read error and once more as our "lost" (no answer).
        if failed > 2 * max(self.victim_connections, 1):
            found.append(
                f"{failed} failed requests for {self.victim_connections} connections on the "
                f"killed worker ({self.load.socket_errors}, lost {self.load.lost()})"
            )
        fives = self.load.statuses(lambda s: s >= 500)
        if fives:
            found.append(f"{fives} answers were 5xx")
        unexpected = self.load.unexpected()
        if unexpected:
            found.append(f"unexpected answers: {unexpected}")
        found += load_rig.hr_failures(self.load, self.kept)
        # uvicorn logs nothing for a worker killed by the operator; any 500 or traceback
        # in the server log is a failure of ours.
        if self.server_problems:
            found.append(f"server log: {self.server_problems[:3]}")
        return found

    def lines(self) -> list[str]:
        failures = self.failures
        return [
            f"killed worker {self.victim} holding {self.victim_connections} of wrk's "
            f"connections; workers {self.workers_before} -> {self.workers_after}, replaced "
            f"after {'never' if self.replaced_after is None else f'{self.replaced_after:.1f} s'}"
            f", new worker serving after "
            f"{'never' if self.serving_after is None else f'{self.serving_after:.1f} s'}",
            f"prober during the gap: {len(self.gap_probes)} fresh connections, statuses "
            f"{sorted(set(self.gap_probes), key=str)}",
            *(f"  log: {line[:160]}" for line in self.supervisor_log),
            f"wrk socket errors {self.load.socket_errors}, requests without an answer "
            f"{self.load.lost()}",
            load_rig.latency_line("load (whole run)", self.load.all_latencies(), self.load.rps),
            *load_rig.per_kind_lines(self.load),
            f"HR updates: sent {len(self.load.hr_sent)}, answered 2xx {len(self.load.hr_ok)}, "
            f"sent again {self.load.hr_retried}, stored {len(self.kept.people)}, pending at "
            f"the end {len(self.load.hr_pending)}; {self.kept.audit_line}",
            "PASS" if not failures else "FAIL: " + "; ".join(failures),
        ]


def _get(port: int, path: str) -> tuple[int | None, int | None]:
    """GET on a fresh connection: (status, client port) or (None, None) when it failed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        status = conn.getresponse()
        status.read()
        assert conn.sock is not None
        return status.status, conn.sock.getsockname()[1]
    except OSError:
        return None, None
    finally:
        conn.close()


def _answered_by(served: load_rig.Served, pid: int, tries: int = 200) -> bool:
    """Whether worker ``pid`` answers a connection it accepted (kept open to look it up)."""
    for _ in range(tries):
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            first = conn.getresponse()
            first.read()
            assert conn.sock is not None
            if served.holder(conn.sock.getsockname()[1]) == pid:
                conn.request("GET", "/.well-known/jwks.json")
                again = conn.getresponse()
                again.read()
                return first.status == again.status == 200
        except OSError:
            pass
        finally:
            conn.close()
    return False


def drill(
    db_url: str,
    tmp: Path,
    *,
    seconds: float,
    kill_at: float,
    connections: int,
    people: int = 200,
    hang_first: float = 0.0,
) -> KillDrill:
    """``hang_first`` > 0: the worker is stopped (SIGSTOP) that long before the kill, as a hung
    worker that an operator or the OOM killer ends; the supervisor is then waiting for that
    worker's answer to its health ping when it dies."""
    prep = load_rig.prepare(tmp / "home", db_url, people=people)
    served = load_rig.serve_idsvc(prep, tmp / "serve.log", 2)
    wrk = load_rig.BackgroundWrk(
        served.base, prep, tmp, seconds=seconds, connections=connections, phase="K"
    )

    gap: list[int | None] = []
    replaced = None
    answered = False
    serving = None
    try:
        before = served.workers()
        wrk.start()
        time.sleep(kill_at)
        # The worker holding more of wrk's connections: the harder case.
        victim = max(before, key=served.connections_of)
        held = served.connections_of(victim)
        if hang_first > 0:
            os.kill(victim, signal.SIGSTOP)
            time.sleep(hang_first)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        while time.monotonic() - killed < 120:
            status, _ = _get(served.port, "/healthz")
            gap.append(status)
            now = served.workers()
            if len(now) == len(before) and victim not in now:
                replaced = time.monotonic() - killed
                break
            time.sleep(0.1)
        if replaced is not None:
            (new,) = set(served.workers()) - set(before)
            answered = _answered_by(served, new)
            if answered:
                serving = time.monotonic() - killed
        load = wrk.join()
        after = served.workers()
    finally:
        log = served.stop()
    return KillDrill(
        load=load,
        kept=load_rig.stored(prep, "K"),
        victim=victim,
        victim_connections=held,
        workers_before=before,
        workers_after=after,
        replaced_after=replaced,
        replacement_answered=answered,
        serving_after=serving,
        gap_probes=gap,
        server_problems=load_rig.problems_in_log(log),
        supervisor_log=[
            line
            for line in log.splitlines()
            if any(w in line for w in ("Child process", "died", "Started server", "startup"))
        ][-6:],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--kill-at", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--hang-first", type=float, default=0.0, help="SIGSTOP the worker this long before"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="fault-kill-") as tmp,
        load_mixed.postgres_schema(load_mixed.postgres_url()) as db,
    ):
        result = drill(
            db,
            Path(tmp),
            seconds=args.seconds,
            kill_at=args.kill_at,
            connections=args.connections,
            hang_first=args.hang_first,
        )
    print(
        f"kill -9 of one of 2 workers at {args.kill_at:.0f} s of {args.seconds:.0f} s mixed load "
        f"(PostgreSQL, wrk {args.connections} connections)"
    )
    for line in result.lines():
        print(line)
    sys.exit(0 if not result.failures else 1)


if __name__ == "__main__":
    main()
