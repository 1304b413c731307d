"""Scale on PostgreSQL (issue 10): a country-sized register and check log, timed, measured, and
the query plans of the hot paths.

    .venv/bin/python bench/scale_report.py [--people 300000] [--checks 1000000]
                                           [--events 300000] [--deliveries 300000] [--json]

On a fresh schema of `IDSVC_BENCH_POSTGRES_URL` (else `IDSVC_TEST_POSTGRES_URL`, else
`postgresql+psycopg://postgres@127.0.0.1:5432/test`), dropped at the end:

1. **HR import**: `--people` rows through the real use case (`Services.import_hr`: parse,
   validate, upsert, audit, change feed). Baseline in the same run: parsing the same file alone
   (`parse_hr_csv`), the floor for any import.
2. **Seed** (set-based, `INSERT ... SELECT`): a live credential per person (copies of one real
   issuance), `--checks` rows of the access/check log, `--events` change-feed events,
   `--deliveries` webhook outbox rows, one bank account per person; then `ANALYZE`.
3. **Payroll**: the whole register checked by employee id through the real use case
   (`PayrollChecks.check`, batches of 10,000, each also written to the check log). Baseline:
   the same statuses read with bare `SELECT ... WHERE employee_id = ANY(...)` per batch.
4. **Size**: `pg_total_relation_size` per table (heap + indexes + TOAST).
5. **Plans**: every SELECT the hot paths send (recorded from the real use cases, see
   `tests/support/query_plans.py`) under `EXPLAIN (ANALYZE, BUFFERS)`; the script fails (exit 1) if
   any reads a large table with a sequential scan.

The short version in the suite is `tests/idsvc/storage/test_query_plans.py`. Numbers:
docs/operations.md
("Scale").
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import sqlalchemy
from pydantic import SecretStr
from sqlalchemy import text

# The plan recorder and the dataset are shared with the test suite.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from idsvc.audit.who_checked import CheckedBy
from idsvc.bank.payroll import MAX_ITEMS, PayrollChecks, PayrollItem
from idsvc.bank.server_secret import ServerKeys
from idsvc.config import Settings
from idsvc.formats.hr_csv import parse_hr_csv
from idsvc.services import Services
from tests.support.query_plans import (
    employee_id,
    hot_path_statements,
    hr_csv,
    large_seq_scans,
    nodes,
    plan,
    seed_rest,
)

T = TypeVar("T")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PASSPHRASE = "scale report passphrase"


def _postgres_url() -> str:
    return os.environ.get(
        "IDSVC_BENCH_POSTGRES_URL",
        os.environ.get(
            "IDSVC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )


def _timed(what: str, run: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    print(f"  {what}: {seconds:.2f} s", flush=True)
    return seconds, result


def _mb(n: int) -> str:
    return f"{n / 1_048_576:,.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=300_000)
    parser.add_argument("--checks", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--deliveries", type=int, default=300_000)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    base = _postgres_url()
    schema = f"scale_{secrets.token_hex(5)}"
    admin = sqlalchemy.create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    figures: dict[str, object] = {"people": args.people, "checks": args.checks}
    failed = False
    try:
        with tempfile.TemporaryDirectory() as home:
            settings = Settings(
                home=Path(home),
                database_url=url,
                key_passphrase=SecretStr(PASSPHRASE),
                issuer="https://id.mcs.gov.kh/issuers/default",
                public_url="https://id.mcs.gov.kh",
                status_list_size=1 << 20,
            )
            service = Services.from_settings(settings, lambda: PASSPHRASE.encode())
            service.credentials.init(now=NOW, actor="scale")
            data = hr_csv(args.people)
            print(f"HR import, {args.people:,} people ({_mb(len(data))} CSV)")
            parse_s, _ = _timed(
                "baseline: parse only", lambda: parse_hr_csv(data, today=date(2026, 11, 23))
            )
            import_s, report = _timed(
                "import_hr (real use case)",
                lambda: service.register.import_hr(
                    data, source_name="scale.csv", actor="scale", now=NOW
                ),
            )
            print(f"  {report}")
            print(f"  ratio import / parse: {import_s / parse_s:.1f}x")
            figures |= {"import_s": import_s, "parse_s": parse_s}

            print(
                f"Seed: credentials, {args.checks:,} checks, {args.events:,} events, "
                f"{args.deliveries:,} deliveries (set-based), ANALYZE"
            )
            seed_s, seeded = _timed(
                "seed",
                lambda: seed_rest(
                    service,
                    people=args.people,
                    checks=args.checks,
                    events=args.events,
                    deliveries=args.deliveries,
                    now=NOW,
                ),
            )
            figures["seed_s"] = seed_s

            keys = ServerKeys.from_secret(bytes(32))
            payroll = PayrollChecks(
                service.infra.db,
                account_key=keys.account_key,
                account_window=timedelta(days=90),
                verify_credential=lambda t, n: service.verification.verify(t, now=n),
            )
            bank = CheckedBy(seeded.client_id, "scale-bank", "127.0.0.1")
            ids = [employee_id(n) for n in range(args.people)]
            batches = [ids[i : i + MAX_ITEMS] for i in range(0, len(ids), MAX_ITEMS)]

            def bare() -> int:
                found = 0
                with service.infra.db.engine.connect() as conn:
                    for batch in batches:
                        found += len(
                            conn.execute(
                                text(
                                    "SELECT employee_id, status FROM civil_servants "
                                    "WHERE employee_id = ANY(:ids)"
                                ),
                                {"ids": batch},
                            ).all()
                        )
                return found

            def checked() -> int:
                active = 0
                for batch in batches:
                    results = payroll.check(
                        [PayrollItem(employee_id=e) for e in batch], by=bank, now=NOW
                    )
                    active += sum(1 for r in results if r.active_for_payroll)
                return active

            print(f"Payroll check of the whole register ({len(batches)} batches of {MAX_ITEMS:,})")
            bare_s, found = _timed("baseline: bare SELECT per batch", bare)
            payroll_s, active = _timed("PayrollChecks.check (real use case, logged)", checked)
            print(
                f"  {found:,} found, {active:,} active; "
                f"ratio check / bare: {payroll_s / bare_s:.1f}x"
            )
            figures |= {"payroll_s": payroll_s, "payroll_bare_s": bare_s, "active": active}

            print("Database size (pg_total_relation_size)")
            with service.infra.db.engine.connect() as conn:
                sizes = conn.execute(
                    text(
                        "SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint "
                        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = current_schema() AND c.relkind = 'r' "
                        "ORDER BY 2 DESC"
                    )
                ).all()
                total = conn.execute(
                    text(
                        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = current_schema() "
                        "AND c.relkind = 'r'"
                    )
                ).scalar()
            for name, size, rows in sizes:
                if size >= 65536:
                    print(f"  {name:24} {_mb(size):>12}  ~{max(rows, 0):>10,} rows")
            print(f"  {'total':24} {_mb(int(total or 0)):>12}")
            figures["sizes"] = {name: size for name, size, _ in sizes}

            print("Hot paths: EXPLAIN (ANALYZE, BUFFERS)")
            statements = hot_path_statements(service, seeded, NOW)
            seen: set[tuple[str, str]] = set()
            with service.infra.db.engine.connect() as conn:
                for stmt in statements:
                    if (stmt.path, stmt.sql) in seen:
                        continue  # the outbox re-reads each claimed row: one plan is enough
                    seen.add((stmt.path, stmt.sql))
                    explained = plan(conn, stmt, analyze=True)
                    top = explained[0]
                    scans = [
                        " ".join(
                            str(n[k])
                            for k in ("Node Type", "Relation Name", "Index Name")
                            if n.get(k)
                        )
                        for n in nodes(top["Plan"])
                        if "Scan" in n["Node Type"]
                    ]
                    bad = large_seq_scans(explained)
                    failed |= bool(bad)
                    print(f"  [{stmt.path}] {' '.join(stmt.sql.split())[:110]}")
                    print(
                        f"      {top['Execution Time']:.3f} ms, shared hit "
                        f"{top['Plan'].get('Shared Hit Blocks', 0)} read "
                        f"{top['Plan'].get('Shared Read Blocks', 0)}; {'; '.join(scans)}"
                        + (f"  SEQ SCAN ON {bad}" if bad else "")
                    )
                conn.rollback()
            service.infra.db.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    print(
        "no sequential scan of a large table on any hot path"
        if not failed
        else "FAILED: a hot path scans a large table"
    )
    if args.json:
        print(json.dumps(figures, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
