"""`POST /v1/hr/records` with 1 and 100 records against a large register, next to a bare
`SELECT 1` round trip measured in the same run.

    .venv/bin/python bench/bench_hr_sync.py [--db postgres|sqlite] [--people 20000,100000]
                                            [--requests 40]

Setup per register size (not timed): a temp home, `init`, `--people` synthetic civil servants
inserted straight into the register (as `bench_payroll.py` does), an API client with scope
`hr:write`, `idsvc serve --workers 1` on a free loopback port.

Timed, medians of `--requests` requests over one keep-alive connection, each answer checked
(200 and the expected counts): one new person per request, then batches of 100 (50 new people
and 50 updates of people already in the register). Baselines from the same run: `SELECT 1`
through the service's own engine (the floor of any request that touches the database) and the
scan every request did before the batch lookup (`SELECT employee_id, content_hash FROM
civil_servants`, read in-process). Ratios are per request against `SELECT 1`: a request whose
cost does not grow with the register keeps the same ratio at 20,000 and 100,000 people.
With `--db postgres` (default) the database is a fresh schema on `IDSVC_BENCH_POSTGRES_URL`
(else `IDSVC_TEST_POSTGRES_URL`), dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_payroll import database, employee_id, fill_register, served  # noqa: E402
from load_rig import hr_record  # noqa: E402

from idsvc.clients.api_clients import ApiClients  # noqa: E402
from idsvc.config import Settings  # noqa: E402
from idsvc.services import Services  # noqa: E402

PASSPHRASE = "bench passphrase for hr sync"


def median_ms(action: Callable[[int], None], times: int) -> float:
    samples = []
    for i in range(times):
        start = time.perf_counter()
        action(i)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def run(kind: str, people: int, requests: int) -> list[str]:
    home = Path(tempfile.mkdtemp(prefix="bench-hr-sync-"))
    try:
        with database(kind, home) as url:
            now = datetime.now(UTC)
            settings = Settings(home=home, database_url=url, key_passphrase=SecretStr(PASSPHRASE))
            service = Services.from_settings(settings, lambda: PASSPHRASE.encode())
            service.credentials.init(now=now, actor="bench")
            fill_register(service, people, now)
            _, secret = ApiClients(service.infra.db).add("Bench HR", ["hr:write"], now)
            env = {k: v for k, v in os.environ.items() if not k.startswith("IDSVC_")} | {
                "IDSVC_HOME": str(home),
                "IDSVC_DATABASE_URL": url,
                "IDSVC_KEY_PASSPHRASE": PASSPHRASE,
                "IDSVC_RATE_LIMIT_CLIENT": "0",
            }
            engine = service.infra.db.engine
            with engine.connect() as conn:

                def select_1(_: int) -> None:
                    conn.execute(sqlalchemy.text("SELECT 1")).scalar_one()

                def scan(_: int) -> None:
                    query = "SELECT employee_id, content_hash FROM civil_servants"
                    assert len(conn.execute(sqlalchemy.text(query)).all()) >= people

                select_1(0)
                floor = median_ms(select_1, requests * 5)
                scan_ms = median_ms(scan, max(requests // 4, 3))
            with served(env, 1, home) as (base, _), httpx.Client(base_url=base) as http:
                auth = {"authorization": f"Bearer {secret}"}

                def post(records: list[dict[str, str]], created: int) -> None:
                    r = http.post("/v1/hr/records", json={"records": records}, headers=auth)
                    assert r.status_code == 200, r.text
                    assert r.json()["created"] == created, r.text

                def one(i: int) -> None:
                    post([hr_record(f"LA-HRB1-{i:07d}")], 1)

                def hundred(i: int) -> None:
                    new = [hr_record(f"LA-HRB2-{i:04d}{j:03d}") for j in range(50)]
                    moved = [
                        hr_record(employee_id(people - 1 - (i * 50 + j) % people))
                        | {"unit": f"Unit {i}"}
                        for j in range(50)
                    ]
                    post(new + moved, 50)

                one(requests)  # warm-up: the worker's first request opens connections
                one_ms = median_ms(one, requests)
                hundred_ms = median_ms(hundred, requests)
            service.infra.db.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return [
        f"db={kind} people={people:,} requests={requests}",
        f"  SELECT 1 round trip      {floor:8.2f} ms  (baseline)",
        f"  whole-register scan      {scan_ms:8.2f} ms  x{scan_ms / floor:7.1f}  (old: every call)",
        f"  POST 1 record            {one_ms:8.2f} ms  x{one_ms / floor:7.1f}",
        f"  POST 100 records         {hundred_ms:8.2f} ms  x{hundred_ms / floor:7.1f}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--people", default="20000,100000")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args(argv)
    kind = "postgresql" if args.db == "postgres" else "sqlite"
    for people in (int(p) for p in args.people.split(",")):
        print("\n".join(run(kind, people, args.requests)), flush=True)


if __name__ == "__main__":
    main()
