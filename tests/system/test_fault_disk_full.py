"""Disk full while importing: the write is refused with a clear message (exit 10), nothing of
it lands, the audit chain stays intact, and the same import succeeds once there is room.

As root the database lives on a 2 MiB tmpfs that really fills up; elsewhere SQLite's
``max_page_count`` gives the same SQLITE_FULL without privileges.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from idsvc.cli.errors import exit_code_for
from idsvc.services import Services
from idsvc.storage.db import StorageFull
from idsvc.storage.tables import CivilServantRow
from tests.support.cli_runner import Cli
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fault_import_kill.py"


def _hr_file(rows: int) -> bytes:
    spec = importlib.util.spec_from_file_location("fault_import_kill", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    data: bytes = module.hr_file(rows)
    return data


def _can_mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir()
    ok = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return ok.returncode == 0


@dataclass
class SmallDisk:
    kind: str
    url: str
    grow: Callable[[Services], None]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    mount = tmp_path / "small"
    if _can_mount_tmpfs(mount):

        def remount(_svc: Services) -> None:
            subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)

        try:
            yield SmallDisk("tmpfs", f"sqlite:///{mount / 'idsvc.sqlite3'}", remount)
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)
        return
    limit: dict[str, int] = {}

    def cap(dbapi_conn: Any, _record: Any) -> None:
        if "pages" in limit:
            dbapi_conn.execute(f"PRAGMA max_page_count = {limit['pages']}")

    def lift(svc: Services) -> None:
        limit.clear()
        svc.infra.db.engine.dispose()

    disk = SmallDisk("max_page_count", f"sqlite:///{tmp_path / 'idsvc.sqlite3'}", lift)
    disk.cap = (cap, limit)  # type: ignore[attr-defined]
    yield disk


def _people(svc: Services) -> int:
    with svc.infra.db.transaction() as session:
        return int(session.execute(select(func.count()).select_from(CivilServantRow)).scalar_one())


def test_disk_full_refuses_the_write_and_keeps_the_chain(
    small_disk: SmallDisk, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home", small_disk.url)
    svc = make_service(settings)
    svc.credentials.init(now=NOW, actor="admin")
    svc.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="hr", now=NOW
    )
    before_chain = svc.audit.verify_chain()
    big = tmp_path / "hr-big.csv"
    big.write_bytes(_hr_file(20_000))  # ~10 MiB of database pages

    if small_disk.kind == "tmpfs":
        proc = Cli(settings.home, small_disk.url)("import-hr", str(big))
        assert proc.returncode == 10, proc.stderr
        assert "is full (no space left): nothing was written" in proc.stderr
    else:
        cap, limit = small_disk.cap  # type: ignore[attr-defined]
        with svc.infra.db.engine.connect() as conn:
            limit["pages"] = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one()) + 64
        event.listen(svc.infra.db.engine, "connect", cap)
        svc.infra.db.engine.dispose()
        with pytest.raises(StorageFull, match="nothing was written") as caught:
            svc.register.import_hr(big.read_bytes(), source_name="hr-big.csv", actor="hr", now=NOW)
        assert exit_code_for(caught.value)[0] == 10

    assert _people(svc) == 12  # the sample only: none of the refused import landed
    assert svc.audit.verify_chain() == before_chain

    small_disk.grow(svc)
    report = svc.register.import_hr(big.read_bytes(), source_name="hr-big.csv", actor="hr", now=NOW)
    assert report.created == 20_000 and _people(svc) == 20_012
    assert svc.audit.verify_chain().events == before_chain.events + 1
    svc.infra.db.dispose()
