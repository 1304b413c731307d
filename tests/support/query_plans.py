"""A country-shaped PostgreSQL dataset and the query plans of the hot paths, shared by
``tests/idsvc/storage/test_query_plans.py`` (a few thousand rows) and ``bench/scale_report.py``
(300,000 people, 1,000,000 checks).

The statements are not written here: ``hot_path_statements`` runs the real use cases (verify,
payroll by employee id and by card serial, the change feed, "who checked this person", the
webhook outbox) and records the SQL they send, so a query changed in the code is the query
whose plan is checked.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy
from sqlalchemy import event, text

from idsvc.audit.who_checked import CheckedBy, CheckLog
from idsvc.bank.change_feed import ChangeFeed, encode_cursor
from idsvc.bank.payroll import PayrollChecks, PayrollItem
from idsvc.bank.server_secret import ServerKeys
from idsvc.bank.webhook_delivery import Outcome, WebhookDeliverer
from idsvc.clients.api_clients import ApiClients
from idsvc.services import Services
from idsvc.storage.payroll_tables import WebhookSubscriptionRow

# Tables that grow with the country (people, credentials, checks, events, deliveries, audit):
# a sequential scan of one of them on a hot path is a defect. Small tables (issuers, status
# lists, clients, subscriptions) may be scanned.
LARGE_TABLES = frozenset(
    {
        "civil_servants",
        "credentials",
        "holder_checks",
        "change_events",
        "webhook_deliveries",
        "audit_events",
        "status_history",
        "payroll_accounts",
        "photos",
        "client_people",
    }
)
HEADER = (
    "employee_id,name_local,name_latin,sex,date_of_birth,ministry,unit,position,grade,category,"
    "status,status_date,hire_date,national_id"
)
MINISTRIES = ("Ministry of Civil Service", "Ministry of Education", "Ministry of Health")


def employee_id(n: int) -> str:
    return f"KH-SCL-{n:06d}"


def hr_csv(people: int) -> bytes:
    """A register export: 98 % active, 1 % retired, 1 % suspended; names in Khmer and Latin."""
    out = io.StringIO(newline="")
    out.write(HEADER + "\n")
    writer = csv.writer(out, lineterminator="\n")
    for n in range(people):
        status = "retired" if n % 100 == 7 else "suspended" if n % 100 == 9 else "active"
        writer.writerow(
            [
                employee_id(n),
                "សុខ ចាន់ថា",
                f"Sok Chantha {n}",
                "MF"[n % 2],
                f"19{60 + n % 30}-0{1 + n % 9}-1{n % 10}",
                MINISTRIES[n % 3],
                "General Department",
                "Officer",
                "B2",
                "civil_servant",
                status,
                "2020-01-01",
                "2005-01-01",
                f"{100000000 + n}",
            ]
        )
    return out.getvalue().encode()


@dataclass(frozen=True)
class Seeded:
    people: int
    credentials: int
    checks: int
    events: int
    deliveries: int
    token: str  # a genuine credential, for the verify path
    credential_id: str
    card_serial: str
    employee_id: str
    client_id: str


def seed_rest(
    service: Services,
    *,
    people: int,
    checks: int,
    events: int,
    deliveries: int,
    now: datetime,
) -> Seeded:
    """After the register holds ``people`` (``hr_csv``): one real issuance, then credentials
    for everyone else, checks, change events and webhook deliveries, inserted set-based from
    the real rows (PostgreSQL only), then ``ANALYZE``."""
    genuine = service.credentials.issue(employee_id(1), actor="scale", now=now)
    client, _ = ApiClients(service.infra.db).add(
        f"scale-bank-{secrets.token_hex(3)}", ["payroll"], now
    )
    with service.infra.db.transaction() as session:
        session.add(
            WebhookSubscriptionRow(
                id=secrets.token_hex(16),
                client_id=client.id,
                url="http://127.0.0.1:9/hook",
                events=["*"],
                scheme="v1a",
                secret_box=None,
                enabled=True,
                created_at=now,
            )
        )
    with service.infra.db.engine.begin() as conn:
        g = conn.execute(
            text("SELECT status_list_id, status_idx FROM credentials WHERE id = :id"),
            {"id": genuine.id},
        ).one()
        # Every other person gets a live credential: a copy of the real row with its own id,
        # status slot (skipping the real one's) and card serial.
        conn.execute(
            text(
                """
                INSERT INTO credentials (id, issuer_id, employee_id, kid, state, status_list_id,
                    status_idx, card_serial, card_uuid, cnf_jwk, card_certificate, token, qr_text,
                    issued_at, expires_at, pending_until, state_changed_at, state_reason,
                    superseded_by, issued_by)
                SELECT md5('cred' || cs.n)::uuid::text, c.issuer_id, cs.employee_id, c.kid,
                    'live', c.status_list_id,
                    CASE WHEN cs.n >= :gidx THEN cs.n + 1 ELSE cs.n END,
                    'S' || lpad(cs.n::text, 11, '0'), NULL, c.cnf_jwk, NULL, c.token, NULL,
                    c.issued_at, c.expires_at, NULL, c.state_changed_at, NULL, NULL, 'scale'
                FROM (SELECT employee_id, row_number() OVER (ORDER BY employee_id) AS n
                      FROM civil_servants WHERE employee_id <> :emp) AS cs
                CROSS JOIN (SELECT * FROM credentials WHERE id = :id) AS c
                """
            ),
            {"gidx": g.status_idx, "emp": employee_id(1), "id": genuine.id},
        )
        conn.execute(
            text(
                """
                INSERT INTO holder_checks (checked_at, kind, employee_id, credential_id,
                    client_id, client_name, address, result, reasons)
                SELECT CAST(:now AS timestamp) - make_interval(secs => g),
                    CASE WHEN g % 3 = 0 THEN 'payroll' ELSE 'verification' END,
                    'KH-SCL-' || lpad((g % :people)::text, 6, '0'), NULL,
                    CASE WHEN g % 2 = 0 THEN :client ELSE NULL END, NULL,
                    '10.0.' || (g % 250) || '.1', 'valid', ''
                FROM generate_series(1, :n) AS g
                """
            ),
            {"now": now.replace(tzinfo=None), "people": people, "client": client.id, "n": checks},
        )
        # The bank has checked everyone: its feed is scoped to all of them (the costliest case).
        conn.execute(
            text(
                "INSERT INTO client_people (client_id, employee_id, first_seen_at) "
                "SELECT :client, employee_id, CAST(:now AS timestamp) FROM civil_servants"
            ),
            {"client": client.id, "now": now.replace(tzinfo=None)},
        )
        head = int(
            conn.execute(text("SELECT coalesce(max(position), 0) FROM change_events")).scalar_one()
        )
        conn.execute(
            text(
                """
                INSERT INTO change_events (position, event_id, type, employee_id, status,
                    effective_date, credential_id, card_serial, reason, recorded_at)
                SELECT :head + g, md5('event' || g)::uuid::text, 'employee.status_changed',
                    'KH-SCL-' || lpad((g % :people)::text, 6, '0'), 'active', DATE '2026-01-01',
                    NULL, NULL, NULL, CAST(:now AS timestamp)
                FROM generate_series(1, :n) AS g
                """
            ),
            {"head": head, "people": people, "now": now.replace(tzinfo=None), "n": events},
        )
        conn.execute(text("UPDATE change_feed_head SET position = :p"), {"p": head + events})
        # The outbox as it looks in steady state: almost everything delivered, a few due.
        conn.execute(
            text(
                """
                INSERT INTO webhook_deliveries (subscription_id, event_position, state, attempts,
                    next_attempt_at, lease_until, last_status, last_error, delivered_at,
                    created_at)
                SELECT (SELECT id FROM webhook_subscriptions LIMIT 1), :head + g,
                    CASE WHEN g % 500 = 0 THEN 'pending' ELSE 'delivered' END, 1,
                    CAST(:now AS timestamp) - make_interval(secs => g % 600), NULL, 204, NULL,
                    CAST(:now AS timestamp), CAST(:now AS timestamp)
                FROM generate_series(1, :n) AS g
                """
            ),
            {"head": head, "now": now.replace(tzinfo=None), "n": deliveries},
        )
        # A bank that checks with accounts: one account hash per person.
        conn.execute(
            text(
                """
                INSERT INTO payroll_accounts (account_hash, employee_id, first_seen_at,
                    last_seen_at, client_id)
                SELECT md5('account' || employee_id) || md5(employee_id), employee_id,
                    CAST(:now AS timestamp), CAST(:now AS timestamp), :client
                FROM civil_servants
                """
            ),
            {"now": now.replace(tzinfo=None), "client": client.id},
        )
        # Photos of the people enrolled at desks (NO_CARD): stand-in bytes, the lookups read
        # only the keys.
        conn.execute(
            text(
                """
                INSERT INTO photos (employee_id, face_jpeg, width, height, qr_image,
                    qr_media_type, sha256, updated_at, updated_by)
                SELECT employee_id, '\\xffd8'::bytea, 420, 540, '\\x00'::bytea, 'image/webp',
                    md5(employee_id) || md5(employee_id), CAST(:now AS timestamp), 'seed'
                FROM civil_servants WHERE employee_id NOT LIKE '%7'
                """
            ),
            {"now": now.replace(tzinfo=None)},
        )
        counts = conn.execute(text("SELECT count(*) FROM credentials")).scalar()
    analyze(service)
    return Seeded(
        people=people,
        credentials=int(counts or 0),
        checks=checks,
        events=events,
        deliveries=deliveries,
        token=genuine.token,
        credential_id=genuine.id,
        card_serial="S" + "5".rjust(11, "0"),
        employee_id=employee_id(5),
        client_id=client.id,
    )


def analyze(service: Services) -> None:
    with service.infra.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


@dataclass(frozen=True)
class Statement:
    path: str  # which hot path sent it
    sql: str
    params: Any


@contextmanager
def recorded(engine: sqlalchemy.Engine, path: Callable[[], str]) -> Iterator[list[Statement]]:
    """Every SELECT sent on ``engine`` while the block runs, labelled with ``path()``."""
    seen: list[Statement] = []

    def listener(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and not many:
            seen.append(Statement(path(), statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def hot_path_statements(service: Services, seeded: Seeded, now: datetime) -> list[Statement]:
    """Run each hot path once through its real use case; return the SELECTs each sent."""
    keys = ServerKeys.from_secret(bytes(32))
    payroll = PayrollChecks(
        service.infra.db,
        account_key=keys.account_key,
        account_window=timedelta(days=90),
        verify_credential=lambda t, n: service.verification.verify(t, now=n),
    )
    bank = CheckedBy(seeded.client_id, "scale-bank", "127.0.0.1")
    feed_cursor = encode_cursor(seeded.events // 2)
    deliverer = WebhookDeliverer(
        service.infra.db, keys, lambda url, body, headers: Outcome(None, "not sent"), max_attempts=3
    )
    paths: dict[str, Callable[[], object]] = {
        "verification (status by index, holder by employee id)": lambda: (
            service.verification.verify(seeded.token, now=now)
        ),
        "credential by id (jti)": lambda: service.credentials.credential(seeded.credential_id),
        "credentials of a holder": lambda: service.credentials.credentials_of(seeded.employee_id),
        "payroll by employee id": lambda: payroll.check(
            [PayrollItem(employee_id=seeded.employee_id, account="LA00-1234")], by=bank, now=now
        ),
        "payroll by card serial": lambda: payroll.check(
            [PayrollItem(card_serial=seeded.card_serial)], by=bank, now=now
        ),
        # Past the enrolment grace, with a national id and an account that changed: every
        # lookup of the ghost-worker flags runs (idsvc.bank.payroll_controls).
        "payroll controls": lambda: payroll.check(
            [PayrollItem(employee_id=seeded.employee_id, account="LA00-5678")],
            by=bank,
            now=now + timedelta(days=120),
        ),
        "change feed by cursor": lambda: ChangeFeed(service.infra.db).page(feed_cursor, limit=100),
        "change feed by cursor, a bank's people": lambda: ChangeFeed(service.infra.db).page(
            feed_cursor, limit=100, reader=seeded.client_id
        ),
        "who checked this person": lambda: CheckLog(service.infra.db, flush_interval=0).of_holder(
            seeded.employee_id, limit=100
        ),
        "webhook outbox due": lambda: deliverer.run_once(now),
    }
    current = [""]
    with recorded(service.infra.db.engine, lambda: current[0]) as seen:
        for name, run in paths.items():
            current[0] = name
            run()
    return seen


def plan(conn: sqlalchemy.Connection, stmt: Statement, *, analyze: bool = False) -> Any:
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    raw = conn.exec_driver_sql(f"EXPLAIN ({options}) {stmt.sql}", stmt.params).scalar()
    return raw if not isinstance(raw, str) else json.loads(raw)


def plan_text(conn: sqlalchemy.Connection, stmt: Statement) -> str:
    rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {stmt.sql}", stmt.params)
    return "\n".join(r[0] for r in rows)


def nodes(tree: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield tree
    for child in tree.get("Plans", []):
        yield from nodes(child)


def large_seq_scans(explained: Any) -> list[str]:
    """The large tables a plan (EXPLAIN FORMAT JSON) reads with a sequential scan."""
    return sorted(
        {
            str(node["Relation Name"])
            for top in explained
            for node in nodes(top["Plan"])
            if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in LARGE_TABLES
        }
    )
