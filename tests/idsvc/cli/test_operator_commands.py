"""The operator and approval commands as an operator types them (real `idsvc` processes)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from tests.support.cli_runner import Cli
from tests.support.operator_people import PASSWORD, code, make_centre, secret_of

EMPLOYEE = "LA-MOHA-000101"


def test_operators_and_maker_checker_from_the_console(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db_url = f"sqlite:///{home / 'idsvc.sqlite3'}"
    # init, HR import and issue have their own CLI tests: prepared here through the use cases.
    centre = make_centre(home, db_url)
    cli = Cli(home, db_url)
    cli.env |= {"IDSVC_OPERATOR_PASSWORD_COST": "14"}

    secrets: dict[str, bytes] = {}
    for name, role in (("somphone", "issuer"), ("khamla", "supervisor")):
        r = cli(
            "operators", "add", name, "--role", role, "--office", "Vientiane",
            "--password-stdin", input=PASSWORD + "\n",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        uri = re.search(r"otpauth://totp/\S+", r.stdout)
        assert uri is not None, r.stdout
        secrets[name] = secret_of(uri.group(0))
    # Close this process's connections first: opening and closing the file here would drop the
    # POSIX locks SQLite holds on it in this process (sqlite.org/howtocorrupt.html, 2.2), and
    # the other processes' later commits could then be lost at this process's next checkpoint.
    centre.infra.db.dispose()
    assert PASSWORD not in (home / "idsvc.sqlite3").read_bytes().decode("latin-1")
    key_file = home / "secrets" / "operator-key"
    assert os.stat(key_file).st_mode & 0o777 == 0o600

    credential_id = centre.credentials.issue(EMPLOYEE, actor="test", now=datetime.now(UTC)).id
    held = {"IDSVC_APPROVAL_REQUIRED": "revoke"}

    plain = cli("revoke", credential_id, "--reason", "lost", env=held)
    assert plain.returncode == 24 and "second person" in plain.stderr

    def otp(name: str) -> str:
        return code(secrets[name], datetime.now(UTC))

    asked = cli(
        "revoke", credential_id, "--reason", "lost", "--operator", "somphone",
        "--otp", otp("somphone"), "--password-stdin", env=held, input=PASSWORD + "\n",
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    approval = re.search(r"waiting for approval (\S+)", asked.stdout)
    assert approval is not None, asked.stdout

    approved = cli(
        "approvals", "approve", approval.group(1), "--operator", "khamla",
        "--otp", otp("khamla"), "--password-stdin", input=PASSWORD + "\n",
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    assert "approved and done" in approved.stdout
    centre.infra.db.dispose()  # a fresh connection reads what the other process wrote
    assert centre.credentials.credential(credential_id).state == "revoked"
    centre.infra.db.dispose()
