"""``idsvc clients ...`` and ``idsvc audit who-checked|purge-checks``: the real console script."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from idsvc.audit.who_checked import CheckedBy, CheckLog, CheckRecord
from idsvc.clients.api_clients import ApiClients
from idsvc.storage.db import Database
from tests.support.cli_runner import Cli
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

EMPLOYEE = "LA-MOHA-000101"


def test_clients_lifecycle_and_who_checked(tmp_path: Path, sqlite_url: str) -> None:
    # Each command is a fresh interpreter (seconds on a busy machine): set up in-process, and
    # run the console script only for what is under test.
    cli = Cli(tmp_path / "home", sqlite_url)
    svc = make_service(make_settings(cli.home, sqlite_url))
    svc.credentials.init(now=NOW, actor="test")
    svc.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test", now=NOW
    )
    svc.infra.db.dispose()

    added = cli("clients", "add", "Bank of Laos", "--scope", "payroll", "--scope", "verify")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()  # stdout holds the secret alone: SECRET=$(idsvc clients add)
    assert secret.startswith("idsvc_") and "\n" not in secret
    assert secret not in added.stderr and "shown only this once" in added.stderr

    db = Database(sqlite_url)
    clients = ApiClients(db)
    now = datetime.now(UTC)
    assert clients.authenticate(secret, now).scopes == {"payroll", "verify"}

    dup = cli("clients", "add", "Bank of Laos", "--scope", "payroll")
    assert dup.returncode == 21 and "exists already" in dup.stderr

    listed = cli("clients", "list", "--json")
    assert [c["name"] for c in json.loads(listed.stdout)] == ["Bank of Laos"]
    assert secret not in listed.stdout

    assert cli("clients", "disable", "Bank of Laos").returncode == 0
    assert clients.get("Bank of Laos").enabled is False
    clients.enable("Bank of Laos", now)
    rotated = cli("clients", "rotate-secret", "Bank of Laos", "--json")
    new_secret = json.loads(rotated.stdout)["secret"]
    assert new_secret != secret
    assert clients.authenticate(new_secret, now).name == "Bank of Laos"

    # who-checked reads the check log; purge-checks applies the retention.
    log = CheckLog(db, flush_interval=0)
    by = CheckedBy("c1", "Bank of Laos", None)
    log.record([CheckRecord("payroll", EMPLOYEE, None, "active")], by=by, now=now)
    old = now - timedelta(days=400)
    log.record([CheckRecord("verification", EMPLOYEE, "x", "valid")], by=by, now=old)
    shown = json.loads(cli("audit", "who-checked", EMPLOYEE, "--json").stdout)
    assert [(c["kind"], c["client_name"]) for c in shown] == [
        ("payroll", "Bank of Laos"),
        ("verification", "Bank of Laos"),
    ]
    purged = cli("audit", "purge-checks")
    assert purged.returncode == 0 and "1 check(s)" in purged.stderr
    assert len(log.of_holder(EMPLOYEE)) == 1
    db.dispose()
