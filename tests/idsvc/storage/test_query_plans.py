"""Issue 10, "scale": the hot paths never scan a large table. A few thousand rows on
PostgreSQL, ``ANALYZE``, then every SELECT the real use cases send (verify, payroll by employee
id and by card serial, the change feed, who checked this person, the webhook outbox) is
explained, the payroll check's ghost-worker flags included; a ``Seq Scan`` over a table that
grows with the country fails the test. The full
size run, with timings and ``EXPLAIN (ANALYZE, BUFFERS)``, is ``bench/scale_report.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from idsvc.services import Services
from tests.support.query_plans import (
    Seeded,
    Statement,
    hot_path_statements,
    hr_csv,
    large_seq_scans,
    plan,
    seed_rest,
)
from tests.support.settings import NOW, make_service, make_settings

PEOPLE = 3000


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: str
) -> Iterator[tuple[Services, Seeded]]:
    import secrets

    import sqlalchemy

    schema = f"t_{secrets.token_hex(6)}"
    engine = sqlalchemy.create_engine(postgres_server)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_server else "?"
    url = f"{postgres_server}{sep}options=-csearch_path%3D{schema}"
    home: Path = tmp_path_factory.mktemp("plans")
    svc = make_service(make_settings(home, url))
    try:
        svc.credentials.init(now=NOW, actor="test-admin")
        svc.register.import_hr(hr_csv(PEOPLE), source_name="scale.csv", actor="test-hr", now=NOW)
        data = seed_rest(svc, people=PEOPLE, checks=6000, events=3000, deliveries=3000, now=NOW)
        yield svc, data
    finally:
        svc.infra.db.dispose()
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(scope="module")
def statements(seeded: tuple[Services, Seeded]) -> list[Statement]:
    svc, data = seeded
    return hot_path_statements(svc, data, NOW)


def test_every_hot_path_sent_its_queries(statements: list[Statement]) -> None:
    paths = {s.path for s in statements}
    assert len(paths) == 10, paths
    tables = " ".join(s.sql for s in statements)
    for table in (
        "client_people",
        "credentials",
        "civil_servants",
        "holder_checks",
        "change_events",
        "webhook_deliveries",
        "status_lists",
        "payroll_accounts.client_id",
        "photos",
        "national_id = civil_servants_2.national_id",
        "name_key = civil_servants_2.name_key",
    ):
        assert table in tables


def test_no_hot_path_scans_a_large_table(
    seeded: tuple[Services, Seeded], statements: list[Statement]
) -> None:
    svc, _ = seeded
    scanned = {}
    with svc.infra.db.engine.connect() as conn:
        for stmt in statements:
            tables = large_seq_scans(plan(conn, stmt))
            if tables:
                scanned[f"{stmt.path}: {stmt.sql[:160]}"] = tables
        conn.rollback()
    assert not scanned, scanned


def test_the_check_would_see_a_sequential_scan(seeded: tuple[Services, Seeded]) -> None:
    # The detector itself: a lookup on a column without an index is reported.
    svc, _ = seeded
    stmt = Statement("probe", "SELECT * FROM holder_checks WHERE address = %(a)s", {"a": "x"})
    with svc.infra.db.engine.connect() as conn:
        assert large_seq_scans(plan(conn, stmt)) == ["holder_checks"]
