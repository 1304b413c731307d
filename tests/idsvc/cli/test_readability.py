"""What a desk clerk reads: ids never cut in tables, plain help, no misleading card wording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from idsvc.cli.card_commands import _report
from idsvc.desk_client.cards import CardReport
from idsvc.verification.rules import VerificationResult
from tests.support.cli_runner import Cli
from tests.support.settings import SAMPLE_CSV


def test_credential_ids_are_whole_on_an_80_column_terminal(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'idsvc.sqlite3'}")
    assert cli("init").returncode == 0
    assert cli("import-hr", str(SAMPLE_CSV)).returncode == 0
    for _ in range(2):  # a superseded and a live one
        assert cli("issue", "KH-MCS-010002").returncode == 0
    ids = [
        c["credential_id"] for c in json.loads(cli("credentials", "KH-MCS-010002", "--json").stdout)
    ]
    r = cli("credentials", "KH-MCS-010002", env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    for cid in ids:  # what `idsvc revoke` needs, copied from the table
        assert cid in r.stdout
    assert "superseded" in r.stdout and "live" in r.stdout


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (("issue",), "--default-management-key"),
        (("desk", "issue"), "--default-management-key"),
        (("revoke",), "--password-stdin"),
        (("keys", "rotate"), "--password-stdin"),
    ],
)
def test_flags_have_no_confusing_negative_twin(
    tmp_path: Path, command: tuple[str, ...], flag: str
) -> None:
    r = Cli(tmp_path, "sqlite://")(*command, "--help")
    assert r.returncode == 0, r.stderr
    assert flag in r.stdout
    assert "--no-" + flag.removeprefix("--") not in r.stdout


def _card_report(challenge_checked: bool) -> CardReport:
    result = VerificationResult(
        valid=True, status="valid", reasons=(), holder={"name_latin": "Sok"}
    )
    return CardReport(result, "card-uuid", "CN=Sok", challenge_checked=challenge_checked)


def test_card_read_says_the_challenge_was_not_run(capsys: pytest.CaptureFixture[str]) -> None:
    _report(_card_report(False), False, challenged=False)
    out = capsys.readouterr().out
    assert "challenge: not run" in out and "card verify" in out
    assert "not passed" not in out and "failed" not in out


def test_card_verify_says_passed(capsys: pytest.CaptureFixture[str]) -> None:
    _report(_card_report(True), False, challenged=True)
    assert "challenge: passed" in capsys.readouterr().out
