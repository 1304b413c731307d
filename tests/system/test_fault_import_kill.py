"""``kill -9`` of ``idsvc import-hr`` halfway through 20,000 rows, then a re-run (the short
version of ``bench/fault_import_kill.py``, which runs the same code with 300,000 rows)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.cli_runner import Cli

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fault_import_kill.py"


def _drill_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fault_import_kill", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("rows", [20_000])
def test_killed_import_loses_nothing_and_rerun_lands_each_row_once(
    tmp_path: Path, postgres_db: str, rows: int
) -> None:
    drill = _drill_module()
    cli = Cli(tmp_path / "home", postgres_db)
    result = drill.drill(cli.env, postgres_db, tmp_path, rows=rows, preloaded=5_000)

    done, total = result.killed_at
    assert total == rows and rows // 2 <= done < rows  # it really died halfway
    # The killed run left no trace: same people, same history, same audit chain.
    assert result.after_kill == result.before
    assert result.before.people == 5_000 and result.before.audit_ok
    after = result.after_rerun
    assert after.people == after.distinct_people == rows
    assert after.history == result.expected_history  # no doubled status-history rows
    assert after.imports == result.before.imports + 1
    assert after.audit_ok, after.audit_line
