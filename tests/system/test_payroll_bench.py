"""The short version of ``bench/bench_payroll.py`` (SQLite, 20,000 people, 2 workers): the bench
runs end to end and every answer it checks is right. No timing is asserted (a bench prints)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_payroll.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_payroll", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_short_payroll_bench_runs_and_checks_its_answers() -> None:
    bench = load_bench()
    args = ["--db", "sqlite", "--people", "20000", "--events", "12000", "--page", "5000"]
    (figures,) = bench.main(args)
    assert figures.people == 20_000 and figures.events == 12_000
    assert figures.payroll_s > 0 and figures.feed_s > 0 and figures.lookup_s > 0
    # The server's CPU is found (its session's processes) and is part of the wall time.
    assert 0 < figures.server_cpu_s < figures.payroll_s * 2 * 2  # 2 workers, some slack
