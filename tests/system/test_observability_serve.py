"""Observability of a real ``idsvc serve --workers 2`` on loopback, SQLite and PostgreSQL:
/healthz, /readyz, /metrics summed over both workers, JSON logs with request ids that reach
the audit chain, and no secret or personal data anywhere in a whole session's logs. Which
format when nothing is configured: readable text on a terminal, JSON anywhere else."""

from __future__ import annotations

import csv
import json
import os
import pty
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from idsvc.clients.api_clients import ApiClients
from idsvc.services import Services
from idsvc.storage.tables import AuditEventRow
from tests.support.cli_runner import IDSVC
from tests.support.payroll import sample_records
from tests.support.serve import Launch, free_port, serve_env, stop, wait_healthy
from tests.support.settings import NOW, PASSPHRASE, SAMPLE_CSV

ACTIVE = "LA-MOHA-000101"
OTHER = "LA-MOHA-000102"
VERIFICATIONS = 24
JWKS = "/.well-known/jwks.json"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found[tuple(sorted(s.labels.items()))] = s.value
    return found


def total(text: str, name: str, **labels: str) -> float:
    return sum(
        v
        for key, v in samples(text, name).items()
        if all((k, val) in key for k, val in labels.items())
    )


def personal_data() -> list[str]:
    """Names and dates of birth of everyone in the sample register."""
    values: list[str] = []
    with SAMPLE_CSV.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            values += [row["name_local"], row["name_latin"], row["date_of_birth"]]
    return values


# PostgreSQL only (the production set-up): ~50 s of two servers' start-up under load; SQLite
# under `serve --workers 2` is covered by test_observability_ready.py.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_whole_session_is_observable_and_logs_nothing_secret(
    service: Services, start: Launch
) -> None:
    credential = service.credentials.issue(ACTIVE, actor="test-desk", now=NOW)
    revoked = service.credentials.issue(OTHER, actor="test-desk", now=NOW)
    service.credentials.revoke(revoked.id, reason="lost card", by=None, now=NOW)
    clients = ApiClients(service.infra.db)
    _, admin = clients.add("Observability Admin", ["admin"], NOW)
    _, bank = clients.add("Bank of Laos", ["payroll"], NOW)
    _, hr = clients.add("MoHA HR", ["hr:write"], NOW)
    server = start()

    # Alive, and ready with every check named.
    assert server.get("/healthz").json() == {"status": "alive"}
    ready = server.get("/readyz")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert set(checks) == {"database", "migrations", "signing_key", "status_lists"}
    assert all(c["ok"] for c in checks.values()), checks
    assert server.get("/health").json() == {"status": "ok"}  # the old name still answers

    # Verifications, each on a new connection (so both workers serve some).
    for i in range(VERIFICATIONS):
        token = credential.token if i % 2 == 0 else revoked.token
        r = server.post("/v1/verifications", json={"credential": token})
        assert r.status_code == 200
    assert server.post("/v1/verifications", json={"credential": "x.y.z"}).json()["reasons"] == [
        "MALFORMED"
    ]

    # A payroll check carrying bank accounts; an HR sync with our correlation id.
    items = [{"employee_id": ACTIVE, "account": "000123456789"}, {"employee_id": OTHER}]
    r = server.post(
        "/v1/payroll/checks", json={"items": items}, headers={"authorization": f"Bearer {bank}"}
    )
    assert r.status_code == 200, r.text
    records = sample_records()
    records[0] = records[0] | {"position": "Director"}
    r = server.post(
        "/v1/hr/records",
        json={"records": records},
        headers={"authorization": f"Bearer {hr}", "x-request-id": "moha-sync-0001"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "moha-sync-0001"
    # A malformed id is replaced, not echoed.
    r = server.get("/healthz", headers={"x-request-id": "has spaces\tand tabs"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])

    # Failing authentication; a path with an employee id in it; an unknown path.
    wrong = "idsvc_wrong_secret_7f3a9c"
    bad = server.post(
        "/v1/payroll/checks", json={"items": items}, headers={"authorization": f"Bearer {wrong}"}
    )
    assert bad.status_code == 401
    server.get(f"/v1/holders/{ACTIVE}/checks", headers={"authorization": f"Bearer {admin}"})
    server.get(f"/no/such/{OTHER}")

    # /metrics: admin only by default.
    assert server.get("/metrics").status_code == 401
    time.sleep(0.5)  # the who-checked log's write-behind (the counters do not wait for it)
    scrapes = [
        server.get("/metrics", headers={"authorization": f"Bearer {admin}"}) for _ in range(6)
    ]
    for m in scrapes:
        assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
        text = m.text
        # Both workers' counters add up to what we sent, whichever worker answered.
        assert total(text, "idsvc_checks_total", kind="verification") == VERIFICATIONS + 1
        assert total(text, "idsvc_checks_total", reason="REVOKED") == VERIFICATIONS / 2
        assert total(text, "idsvc_checks_total", reason="MALFORMED") == 1
        assert (
            total(text, "idsvc_http_requests_total", route="/v1/verifications", status="200")
            == VERIFICATIONS + 1
        )
        assert (
            total(text, "idsvc_http_request_duration_seconds_count", route="/v1/verifications")
            == VERIFICATIONS + 1
        )
        assert total(text, "idsvc_payroll_items_total") == 2
        assert (
            total(text, "idsvc_http_requests_total", route="/v1/payroll/checks", status="401") == 1
        )
        assert total(text, "idsvc_http_requests_total", route="unmatched", status="404") == 1
        assert (
            total(text, "idsvc_http_requests_total", route="/v1/holders/{employee_id}/checks") == 1
        )
        assert total(text, "idsvc_credential_events_total", action="issue") == 2
        assert total(text, "idsvc_credential_events_total", action="revoke") == 1
        assert total(text, "idsvc_database_totals_up") == 1
        assert total(text, "idsvc_db_pool_capacity") > 0
        assert total(text, "idsvc_db_pool_connections_in_use") >= 0
        assert ACTIVE not in text and OTHER not in text  # no ids in labels
    # The counts above came from two processes' files, summed.
    pids = {
        int(p) for p in re.findall(r"counter_(\d+)\.db", " ".join(os.listdir(server.metrics_dir)))
    }
    assert len(pids & server.workers) == 2

    # The HR sync's audit events carry its request id.
    with service.infra.db.transaction() as session:
        events = session.execute(select(AuditEventRow).order_by(AuditEventRow.seq)).scalars().all()
        tagged = {e.action: e.details.get("request_id") for e in events if e.seq > 3}
    # The sync (its hr.import event) has our id; events written in-process (issue, revoke)
    # have none.
    assert tagged.get("hr.import") == "moha-sync-0001", tagged
    assert tagged.get("credential.revoke") is None
    assert (
        subprocess.run(
            [IDSVC, "audit", "verify"], env=serve_env(service), capture_output=True, timeout=60
        ).returncode
        == 0
    )

    stop(server)
    lines = server.log.read_text(encoding="utf-8").splitlines()
    assert lines
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    for e in entries:
        assert {"time", "level", "logger", "message"} <= set(e), e
    access = [e for e in entries if e["logger"] == "idsvc.access"]
    hr_line = [e for e in access if e.get("request_id") == "moha-sync-0001"]
    assert len(hr_line) == 1 and hr_line[0]["route"] == "/v1/hr/records"
    assert hr_line[0]["status"] == 200 and hr_line[0]["duration_ms"] > 0
    assert any(e["status"] == 401 for e in access)
    whole = "\n".join(lines)
    forbidden = [admin, bank, hr, wrong, PASSPHRASE, credential.token, revoked.token]
    forbidden += ["000123456789", ACTIVE, OTHER, *personal_data()]
    leaked = [value for value in forbidden if value in whole]
    assert not leaked, leaked
    assert "Traceback" not in whole


def _serve_once(
    service: Services, tmp_path: Path, *, terminal: bool, **extra: str
) -> tuple[int | None, list[str]]:
    """``idsvc serve`` (one worker) with its stderr on a terminal (a pty, as when someone runs it
    by hand) or in a file (as under systemd or with ``2>log``); one request; its exit status
    when it stopped by itself, and every line it wrote."""
    env = serve_env(service, **extra)
    if "IDSVC_LOG_FORMAT" not in extra:
        del env["IDSVC_LOG_FORMAT"]  # nothing configured
    port = free_port()
    cmd = [IDSVC, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    chunks: list[bytes] = []
    if terminal:
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            cmd, env=env, stdin=slave, stdout=slave, stderr=slave, text=True, start_new_session=True
        )
        os.close(slave)

        def read_terminal() -> None:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    return
                if not data:
                    return
                chunks.append(data)

        reader = threading.Thread(target=read_terminal, daemon=True)
        reader.start()
    else:
        log = tmp_path / "serve.log"
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
        )
    try:
        try:
            wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
        except AssertionError:
            if proc.poll() is None:
                raise
            stopped: int | None = proc.returncode  # refused to start: the caller looks why
        else:
            stopped = None
            # /healthz is logged at DEBUG (a probe); the JWKS gets an access line
            assert httpx.get(f"http://127.0.0.1:{port}{JWKS}", timeout=10).status_code == 200
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if terminal:
        reader.join(timeout=10)
        os.close(master)
        text = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    else:
        text = log.read_text(encoding="utf-8")
    return stopped, [line for line in text.splitlines() if line.strip()]


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


TEXT_ACCESS_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 INFO {4}idsvc\.access: .*"
    r"\[request_id=[0-9a-f]{32} method=GET route=/\.well-known/jwks\.json status=200 "
    r"duration_ms=[\d.]+\]$"
)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_logs_readable_text_on_a_terminal_and_json_elsewhere(
    service: Services, tmp_path: Path
) -> None:
    # By hand in a terminal, nothing configured: readable lines, not JSON.
    stopped, lines = _serve_once(service, tmp_path, terminal=True)
    assert stopped is None, lines
    assert lines and not any(_is_json_object(line) for line in lines), lines
    assert any(TEXT_ACCESS_LINE.match(line) for line in lines), lines
    assert any(re.search(r" INFO {4}uvicorn\.error: Uvicorn running on", line) for line in lines)

    # To a file (systemd, journald, `2>log`), nothing configured: JSON, as before.
    stopped, lines = _serve_once(service, tmp_path, terminal=False)
    assert stopped is None, lines
    assert lines and all(_is_json_object(line) for line in lines), lines
    assert any(json.loads(line).get("route") == JWKS for line in lines), lines

    # Production says json: JSON even on a terminal; and text when asked, even to a file.
    stopped, lines = _serve_once(service, tmp_path, terminal=True, IDSVC_LOG_FORMAT="json")
    assert stopped is None, lines
    assert lines and all(_is_json_object(line) for line in lines), lines
    stopped, lines = _serve_once(service, tmp_path, terminal=False, IDSVC_LOG_FORMAT="text")
    assert stopped is None, lines
    assert any(TEXT_ACCESS_LINE.match(line) for line in lines), lines


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_bad_log_format_is_refused_naming_the_variable(service: Services, tmp_path: Path) -> None:
    stopped, lines = _serve_once(service, tmp_path, terminal=False, IDSVC_LOG_FORMAT="yaml")
    assert stopped == 3, lines
    whole = " ".join(lines)
    assert "IDSVC_LOG_FORMAT" in whole and "auto" in whole and "json" in whole, whole
    assert "Traceback" not in whole
