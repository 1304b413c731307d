"""The `idsvc` console script as an operator runs it: real processes, exit codes, no tracebacks."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli_runner import Cli
from tests.support.settings import SAMPLE_CSV


def _init_and_import(c: Cli) -> None:
    r = c("init")
    assert r.returncode == 0, r.stderr
    assert "signing key" in r.stdout
    r = c("import-hr", str(SAMPLE_CSV))
    assert r.returncode == 0, r.stderr + r.stdout


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home and SQLite database after the real `idsvc init` and `idsvc import-hr`, made once:
    each test gets a copy (two `idsvc` processes fewer per test). Key paths are relative to
    the home and the copy keeps file modes, so a copy is what the commands would have made."""
    root = tmp_path_factory.mktemp("cli-template")
    _init_and_import(Cli(root / "home", f"sqlite:///{root / 'idsvc.sqlite3'}"))
    return root


def _copy_template(template: Path, to: Path) -> Cli:
    shutil.copytree(template / "home", to / "home")
    for db_file in template.glob("idsvc.sqlite3*"):
        shutil.copy2(db_file, to / db_file.name)
    return Cli(to / "home", f"sqlite:///{to / 'idsvc.sqlite3'}")


@pytest.fixture
def cli(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> Cli:
    if db_url.startswith("sqlite"):
        template: Path = request.getfixturevalue("sqlite_template")
        return _copy_template(template, tmp_path)
    c = Cli(tmp_path / "home", db_url)
    _init_and_import(c)
    return c


def test_walkthrough_import_issue_verify_revoke(cli: Cli) -> None:
    r = cli("import-hr", str(SAMPLE_CSV), "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["unchanged"] == 12
    r = cli("issue", "KH-MCS-010002")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.count(".") == 2
    r = cli("verify", token, "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["valid"] is True and out["status"] == "valid"
    assert set(out) >= {"valid", "status", "reasons", "holder"}
    assert out["holder"]["name"] == "សុខ ចាន់ថា"
    r = cli("issue", "KH-MCS-010002", "--json")
    cred = json.loads(r.stdout)
    r = cli("revoke", cred["credential_id"], "--reason", "card lost")
    assert r.returncode == 0, r.stderr
    r = cli("verify", cred["token"], "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["reasons"] == ["REVOKED"]
    r = cli("verify", token, "--json")  # the first one was superseded
    assert r.returncode == 1
    r = cli("audit", "verify")
    assert r.returncode == 0 and "intact" in r.stdout


def test_bad_rows_are_listed_and_good_rows_land(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    # The 13 columns every export has (the sample has the optional `office` too).
    header = SAMPLE_CSV.read_text(encoding="utf-8").splitlines()[0].removesuffix(",office")
    tail = ",F,1990-01-01,MoHA,Unit,Officer,K3,civil_servant,active,2020-01-01,2020-01-01"
    bad.write_text(
        header + "\r\n"
        f"LA-MOHA-000201,ນາງ ທົດສອບ,Test Person{tail}\r\n"
        'LA-MOHA-000202,ທ,=HYPERLINK("http://x"),F,1990-01-01,MoHA,Unit,Officer,K3,civil_servant,active,2020-01-01,2020-01-01\r\n'
        "LA-MOHA-000203,ທ,T,F,1990-13-01,MoHA,Unit,Officer,K3,civil_servant,active,2020-01-01,2020-01-01\r\n"
        "LA-MOHA-000204,ທ,T,F,1990-01-01,MoHA,Unit,Officer,K3,civil_servant,on_leave,2020-01-01,2020-01-01\r\n",
        encoding="utf-8-sig",
    )
    r = cli("import-hr", str(bad))
    assert r.returncode == 8
    assert "line 3" in r.stdout and "line 4" in r.stdout and "line 5" in r.stdout
    r = cli("issue", "LA-MOHA-000201")
    assert r.returncode == 0, r.stderr


def test_distinct_exit_codes(cli: Cli, tmp_path: Path) -> None:
    assert cli("issue", "KH-NOPE-000001").returncode == 4
    assert cli("issue", "KH-MCS-010003").returncode == 5  # deceased
    assert cli("revoke", "no-such-id", "--reason", "x").returncode == 6
    r = cli("issue", "KH-MCS-010002", env={"IDSVC_KEY_PASSPHRASE": "wrong"})
    assert r.returncode == 12 and "passphrase" in r.stderr
    r = cli("verify", "not-a-token", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["reasons"] == ["MALFORMED"]
    missing = tmp_path / "missing.csv"
    assert cli("import-hr", str(missing)).returncode == 9
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(
        SAMPLE_CSV.read_text(encoding="utf-8").splitlines()[0].encode() + b"\nKH-X-0001,Jos\xe9\n"
    )
    r = cli("import-hr", str(latin1))
    assert r.returncode == 9 and "UTF-8" in r.stderr


def test_world_readable_key_is_refused(cli: Cli) -> None:
    keyfiles = list((cli.home / "keys").rglob("*.pem"))
    private = [p for p in keyfiles if "private" in p.parts]
    assert private, keyfiles
    for p in private:
        assert p.stat().st_mode & 0o077 == 0
    for p in private:
        p.chmod(0o644)
    r = cli("issue", "KH-MCS-010002")
    assert r.returncode == 13 and "chmod 600" in r.stderr


def test_dead_database(tmp_path: Path) -> None:
    c = Cli(tmp_path / "home", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    r = c("init")
    assert r.returncode == 10
    assert "cannot reach the database" in r.stderr
    assert "nobody@" in r.stderr or "127.0.0.1" in r.stderr


def test_not_initialised(tmp_path: Path) -> None:
    c = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    r = c("issue", "KH-MCS-010002")
    assert r.returncode == 3 and "idsvc init" in r.stderr


def test_audit_tamper_is_reported(tmp_path: Path, sqlite_template: Path) -> None:
    c = _copy_template(sqlite_template, tmp_path)
    db = tmp_path / "idsvc.sqlite3"
    assert c("issue", "KH-MCS-010002").returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    r = c("audit", "verify")
    assert r.returncode == 16
    assert "event 3" in r.stderr


def test_keys_rotate_list_jwks(cli: Cli) -> None:
    token = cli("issue", "KH-MCS-010002").stdout.strip()
    r = cli("keys", "rotate")
    assert r.returncode == 0, r.stderr
    jwks = json.loads(cli("keys", "jwks").stdout)
    assert len([k for k in jwks["keys"]]) == 2
    assert cli("verify", token).returncode == 0
    listing = cli("keys", "list").stdout
    assert listing.count("ES256") >= 2


def test_data_files_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    c = Cli(home, f"sqlite:///{home / 'idsvc.sqlite3'}")
    assert c("init").returncode == 0
    assert c("import-hr", str(SAMPLE_CSV)).returncode == 0
    assert home.stat().st_mode & 0o077 == 0
    for path in home.rglob("*"):
        # Certificates are public: the CA's, and those of the credential keys (certs/<kid>.pem).
        public = path.name == "ca.pem" or path.parent.name == "certs"
        if path.is_file() and not public:
            assert path.stat().st_mode & 0o077 == 0, path


def test_missing_or_tampered_key_file(cli: Cli) -> None:
    private = sorted((cli.home / "keys").rglob("private/*.pem"))
    saved = {p: p.read_bytes() for p in private}
    for p in private:
        p.write_bytes(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
    r = cli("issue", "KH-MCS-010002")
    assert r.returncode == 13, r.stderr
    for p in private:
        p.unlink()
    r = cli("issue", "KH-MCS-010002")
    assert r.returncode == 13 and "issuer key" in r.stderr
    for p, data in saved.items():
        p.write_bytes(data)
        p.chmod(0o600)
    assert cli("issue", "KH-MCS-010002").returncode == 0


def test_unusable_database_settings_are_clear_and_harmless(tmp_path: Path) -> None:
    r = Cli(tmp_path / "h1", "nonsense://x")("init")
    assert r.returncode == 3 and "IDSVC_DATABASE_URL" in r.stderr
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_bytes(b"a spreadsheet someone saved here\n")
    r = Cli(tmp_path / "h2", f"sqlite:///{not_a_db}")("init")
    assert r.returncode == 10 and "not a usable database" in r.stderr
    assert not_a_db.read_bytes() == b"a spreadsheet someone saved here\n"
    blocked = tmp_path / "file"
    blocked.write_text("x")
    r = Cli(tmp_path / "h3", f"sqlite:///{blocked}/sub/idsvc.sqlite3")("init")
    assert r.returncode == 10 and "cannot create the database folder" in r.stderr
