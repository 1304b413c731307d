"""How fast the command line answers: whole-process wall time, CPU time and peak RSS of
``idsvc --help`` and ``idsvc verify TOKEN``, each against a bare ``python -c pass`` from the
same run.

    .venv/bin/python bench/bench_cli_startup.py [--runs 15] [--root DIR]

Setup (not timed): a temp ``IDSVC_HOME`` with a SQLite database, ``init``, an import of
``idsvc/data/hr_sample.csv`` and one credential issued to its first person. Every command runs
as ``python -c 'from idsvc.cli.main import app; app()'`` (what the ``idsvc`` script does) with
``PYTHONPATH=--root``, so an older copy of the tree (``git archive HEAD | tar -x -C DIR``) is
measured by the same entry point and interpreter as the working tree. Goals (issue 20):
``--help`` ≤ 0.2 s, ``verify`` ≤ 0.3 s, each ≤ 60 MiB. The CPU column (user + system, median)
is the steadier figure on a shared machine: other processes stretch the wall time, not it.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRY = "import sys; sys.argv[0] = 'idsvc'; from idsvc.cli.main import app; app()"


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak RSS in MiB and the exit code of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, proc.returncode


def measure(
    argv: list[str], env: dict[str, str], cwd: str, runs: int
) -> tuple[float, float, float]:
    walls, cpus, peaks = [], [], []
    run_once(argv, env, cwd)  # warm the page cache and the .pyc files
    for _ in range(runs):
        wall, cpu, peak, code = run_once(argv, env, cwd)
        if code != 0:
            sys.exit(f"{argv[2:]} exited {code}")
        walls.append(wall)
        cpus.append(cpu)
        peaks.append(peak)
    return statistics.median(walls), statistics.median(cpus), max(peaks)


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--root", type=Path, default=here, help="tree whose idsvc is measured")
    args = parser.parse_args()
    root = args.root.resolve()
    python = sys.executable
    # Every process runs in the temp dir: `python -c` puts its working directory first on
    # sys.path, and run from a checkout it would import that tree instead of --root.
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")} | {
            "PYTHONPATH": str(root),
            "IDSVC_HOME": str(Path(tmp) / "home"),
            "IDSVC_KEY_PASSPHRASE": "bench-passphrase",
        }
        cli = [python, "-c", ENTRY]
        sample = root / "idsvc" / "data" / "hr_sample.csv"
        with sample.open(encoding="utf-8") as handle:
            employee = next(csv.DictReader(handle))["employee_id"]
        for step in (["init"], ["import-hr", str(sample)]):
            subprocess.run([*cli, *step], env=env, cwd=tmp, check=True, capture_output=True)
        token = subprocess.run(
            [*cli, "issue", employee], env=env, cwd=tmp, check=True, capture_output=True, text=True
        ).stdout.strip()
        cases = {
            "python -c pass": [python, "-c", "pass"],
            "idsvc --help": [*cli, "--help"],
            "idsvc verify TOKEN": [*cli, "verify", token],
        }
        results = {name: measure(argv, env, tmp, args.runs) for name, argv in cases.items()}
    bare = results["python -c pass"][0]
    print(f"tree: {root}  runs: {args.runs} (median wall and CPU, max peak RSS)")
    print(f"{'command':<20} {'wall s':>8} {'× bare':>8} {'cpu s':>8} {'peak MiB':>9}")
    for name, (wall, cpu, peak) in results.items():
        print(f"{name:<20} {wall:>8.3f} {wall / bare:>8.1f} {cpu:>8.3f} {peak:>9.1f}")


if __name__ == "__main__":
    main()
