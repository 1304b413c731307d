"""Fault: ``kill -9`` of ``idsvc import-hr`` halfway through a large HR file, then a re-run.

What must hold: while the import is killed nothing of it is visible (one transaction), the
re-run lands every row exactly once (no duplicate people, one status-history row per person
and status change), and ``idsvc audit verify`` passes with exactly one ``hr.import`` event
for the completed run.

The file (``--rows``, default 300,000) starts with the people a first, committed import
already loaded (``--preloaded``), some of them with a changed status, so the killed run is a
mix of updates and new people. The kill is aimed by reading the real progress bar of the real
command through a pseudo-terminal.

    .venv/bin/python bench/fault_import_kill.py --rows 300000            # SQLite in a temp dir
    .venv/bin/python bench/fault_import_kill.py --rows 300000 --postgres URL

It also prints the re-run's peak RSS (``ru_maxrss`` of the finished child, as
bench/bench_cli_startup.py reads it): issue 20 asks that a 300,000-row import not need more
memory than before.

The suite runs the same code with 20,000 rows (tests/system/test_fault_import_kill.py).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

IDSVC = str(Path(sys.executable).with_name("idsvc"))
COLUMNS = [
    "employee_id",
    "name_local",
    "name_latin",
    "sex",
    "date_of_birth",
    "ministry",
    "unit",
    "position",
    "grade",
    "category",
    "status",
    "status_date",
    "hire_date",
]
_PROGRESS = re.compile(rb"(\d+)/(\d+)")
LAO = ("ສົມພອນ ແກ້ວມະນີ", "Somphone Keomany")
KHMER = ("សុខ ចន្ថា", "Sok Chantha")


def hr_file(rows: int, *, retired_every: int = 0) -> bytes:
    """``rows`` people; with ``retired_every`` = k, every k-th one is retired instead of active."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for n in range(rows):
        local, latin = LAO if n % 2 else KHMER
        retired = retired_every and n % retired_every == 0
        writer.writerow(
            [
                f"KH-MCS-{n:07d}",
                local,
                f"{latin} {n}",
                "FM"[n % 2],
                f"{1960 + n % 35}-{1 + n % 12:02d}-{1 + n % 28:02d}",
                "Ministry of Civil Service",
                "General Department of Civil Service",
                "Officer",
                "B2",
                "civil_servant",
                "retired" if retired else "active",
                "2021-01-01",
                "2020-01-01",
            ]
        )
    return out.getvalue().encode()


def run(env: dict[str, str], *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IDSVC, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def run_measured(
    env: dict[str, str], *args: str, timeout: float = 1800
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``run``, plus the command's peak resident set in MiB (``os.wait4``'s ``ru_maxrss``).

    Its output goes to temporary files, not pipes: the child is reaped with ``wait4`` (for its
    resource usage), so nothing would be left to read a pipe until it exits.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([IDSVC, *args], env=env, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise subprocess.TimeoutExpired([IDSVC, *args], timeout)
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(
            proc.args, proc.returncode, out.read().decode(), err.read().decode()
        )
    return done, usage.ru_maxrss / 1024  # Linux reports KiB


def kill_import_midway(
    env: dict[str, str], file: Path, *, fraction: float = 0.5, timeout: float = 600
) -> tuple[int, int]:
    """Start ``idsvc import-hr FILE`` on a pseudo-terminal (so it draws its progress bar) and
    ``kill -9`` it once the bar shows ``fraction`` of the rows done. Returns (done, total)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [IDSVC, "import-hr", str(file)],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env | {"COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal (it finished)
                break
            if not chunk:
                break
            seen = (seen + chunk)[-4096:]
            found = _PROGRESS.findall(seen)
            if found:
                done, total = (int(x) for x in found[-1])
                if total and done >= fraction * total and done < total:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return done, total
        raise RuntimeError(f"import ended or stalled before {fraction:.0%}: {seen[-300:]!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@dataclass(frozen=True)
class Snapshot:
    people: int
    distinct_people: int
    history: int
    imports: int
    audit_ok: bool
    audit_line: str


def snapshot(url: str) -> Snapshot:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from idsvc.audit.chain import AuditChainBroken, verify_chain

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            people, distinct = conn.execute(
                text("SELECT count(*), count(DISTINCT employee_id) FROM civil_servants")
            ).one()
            history = conn.execute(text("SELECT count(*) FROM status_history")).scalar_one()
            imports = conn.execute(
                text("SELECT count(*) FROM audit_events WHERE action = 'hr.import'")
            ).scalar_one()
        with Session(engine) as session:
            try:
                check = verify_chain(session)
                audit_ok, line = True, f"{check.events} events, head {check.head_hash}"
            except AuditChainBroken as exc:
                audit_ok, line = False, str(exc)
    finally:
        engine.dispose()
    return Snapshot(people, distinct, history, imports, audit_ok, line)


@dataclass(frozen=True)
class DrillResult:
    killed_at: tuple[int, int]
    before: Snapshot
    after_kill: Snapshot
    after_rerun: Snapshot
    rerun_seconds: float
    rerun_peak_mib: float
    expected_history: int


def drill(env: dict[str, str], url: str, work: Path, *, rows: int, preloaded: int) -> DrillResult:
    """init, a committed first import, a killed big import, a re-run; snapshots between."""
    first, big = work / "hr-first.csv", work / "hr-big.csv"
    first.write_bytes(hr_file(preloaded))
    retired_every = 7
    big.write_bytes(hr_file(rows, retired_every=retired_every))
    for args in (("init",), ("import-hr", str(first))):
        proc = run(env, *args)
        if proc.returncode != 0:
            raise RuntimeError(f"idsvc {args[0]} failed: {proc.stderr}")
    before = snapshot(url)
    killed_at = kill_import_midway(env, big)
    after_kill = snapshot(url)
    start = time.perf_counter()
    rerun, peak_mib = run_measured(env, "import-hr", str(big))
    rerun_seconds = time.perf_counter() - start
    if rerun.returncode != 0:
        raise RuntimeError(f"re-run failed: {rerun.stderr}")
    # One history row per person when first seen, plus one per preloaded person now retired.
    changed = len(range(0, preloaded, retired_every))
    return DrillResult(
        killed_at, before, after_kill, snapshot(url), rerun_seconds, peak_mib, rows + changed
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--preloaded", type=int, default=0, help="default: rows / 4")
    parser.add_argument("--postgres", help="PostgreSQL URL of an EMPTY database (else SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = args.postgres or f"sqlite:///{work / 'idsvc.sqlite3'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")} | {
            "IDSVC_HOME": str(work / "home"),
            "IDSVC_DATABASE_URL": url,
            "IDSVC_KEY_PASSPHRASE": "fault drill passphrase",
        }
        result = drill(env, url, work, rows=args.rows, preloaded=args.preloaded or args.rows // 4)
    done, total = result.killed_at
    print(f"killed at {done}/{total} rows; after the kill: {result.after_kill}")
    print(f"re-run: {result.rerun_seconds:.1f} s; after it: {result.after_rerun}")
    print(f"re-run peak RSS: {result.rerun_peak_mib:.0f} MiB (idsvc import-hr, {total} rows)")
    ok = (
        result.after_kill == result.before
        and result.after_rerun.people == result.after_rerun.distinct_people == total
        and result.after_rerun.history == result.expected_history
        and result.after_rerun.imports == result.before.imports + 1
        and result.after_rerun.audit_ok
    )
    print("PASS: nothing lost, nothing doubled, audit chain intact" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
