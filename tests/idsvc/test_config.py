"""Issue 6, defects 4, 5, 6, 7 and the passphrase/symlink weaknesses: every setting is checked
when any command starts (exit 3 naming the variable, never 70), rotation honours
IDSVC_KEY_ALG, and key files are handled safely. Real processes, real keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from idsvc.cli.errors import exit_code_for
from idsvc.config import PassphraseMissing, Settings, key_passphrase, load_settings
from idsvc.errors import ConfigurationInvalid
from keys.errors import InsecureKeyFile
from tests.support.cli_runner import Cli
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

BAD_VALUES = [
    ("IDSVC_CREDENTIAL_DAYS", "abc"),
    ("IDSVC_CREDENTIAL_DAYS", "3000000"),
    ("IDSVC_CREDENTIAL_DAYS", "0"),
    ("IDSVC_CREDENTIAL_DAYS", "-5"),
    ("IDSVC_STATUS_LIST_SIZE", "0"),
    ("IDSVC_STATUS_LIST_SIZE", "-1"),
    ("IDSVC_STATUS_LIST_TTL", "0"),
    ("IDSVC_STATUS_LIST_TTL", "-1"),
    ("IDSVC_STATUS_LIST_TTL", str(10**12)),
    ("IDSVC_PUBLIC_URL", "javascript:alert(1)"),
    ("IDSVC_PUBLIC_URL", "ftp://id.example.gov"),
    ("IDSVC_PUBLIC_URL", "https://id.example.gov:99999"),
    ("IDSVC_VERIFY_URL", "id.example.gov/v"),
    ("IDSVC_ISSUER", "https://user:pw@id.example.gov/x"),
    ("IDSVC_KEY_ALG", "bogus"),
    ("IDSVC_MANAGEMENT_KEY_TYPE", "DES"),
    ("IDSVC_HR_MAX_FILE_MB", "0"),
]


def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("IDSVC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IDSVC_HOME", str(tmp_path / "home"))


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_bad_setting_is_named_and_its_value_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationInvalid) as info:
        load_settings()
    assert exit_code_for(info.value)[0] == 3
    assert name in str(info.value)
    if len(value) > 4:  # short numbers occur in the limits themselves
        assert value not in str(info.value)


def test_defaults_and_sensible_values_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clean_env(monkeypatch, tmp_path)
    for name, value in [
        ("IDSVC_CREDENTIAL_DAYS", "1"),
        ("IDSVC_STATUS_LIST_TTL", "86400"),
        ("IDSVC_PUBLIC_URL", "https://id.mcs.gov.kh:8443/base"),
        ("IDSVC_KEY_ALG", "EdDSA"),
        ("IDSVC_MANAGEMENT_KEY_TYPE", "AES128"),
        ("IDSVC_MANAGEMENT_KEY", "00112233445566778899aabbccddeeff"),
    ]:
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.credential_days == 1 and settings.key_alg == "EdDSA"


def test_management_key_must_fit_its_type_and_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("IDSVC_MANAGEMENT_KEY_TYPE", "AES256")
    monkeypatch.setenv("IDSVC_MANAGEMENT_KEY", "0011223344556677zz")
    with pytest.raises(ConfigurationInvalid, match="64 hex digits") as info:
        load_settings()
    assert "0011223344556677zz" not in str(info.value)


def test_every_command_checks_every_setting_before_it_runs(tmp_path: Path, sqlite_url: str) -> None:
    cli = Cli(tmp_path / "home", sqlite_url)
    # `keys jwks` uses neither of these settings; it must still refuse to start with them,
    # and must not have created anything (the check comes first).
    r = cli("keys", "jwks", env={"IDSVC_CREDENTIAL_DAYS": "abc"})
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "IDSVC_CREDENTIAL_DAYS" in r.stderr
    r = cli("init", env={"IDSVC_PUBLIC_URL": "javascript:alert(1)"})
    assert r.returncode == 3 and "IDSVC_PUBLIC_URL" in r.stderr
    assert not (tmp_path / "home").exists()


def test_empty_passphrase_is_exit_3_no_key_passphrase(tmp_path: Path, sqlite_url: str) -> None:
    cli = Cli(tmp_path / "home", sqlite_url)
    r = cli("init", env={"IDSVC_KEY_PASSPHRASE": ""})
    assert r.returncode == 3, r.stderr
    assert "no key passphrase" in r.stderr
    secret = tmp_path / "empty-passphrase"
    secret.write_bytes(b"\n")
    secret.chmod(0o600)
    settings = make_settings(tmp_path / "home", sqlite_url).model_copy(
        update={"key_passphrase": None, "key_passphrase_file": secret}
    )
    with pytest.raises(PassphraseMissing, match="no key passphrase"):
        key_passphrase(settings)
    with pytest.raises(PassphraseMissing, match="no key passphrase"):
        key_passphrase(settings.model_copy(update={"key_passphrase_file": None}), lambda: "")


def test_rotate_uses_the_configured_algorithm_or_keeps_the_current_one(
    tmp_path: Path, sqlite_url: str
) -> None:
    svc = make_service(make_settings(tmp_path / "home", sqlite_url))
    svc.credentials.init(now=NOW, actor="admin")
    svc.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="s.csv", actor="hr", now=NOW)
    assert [e.alg for e in svc.credentials.key_entries() if e.purpose == "credential"] == ["ES256"]
    svc.infra.db.dispose()
    eddsa = make_service(make_settings(tmp_path / "home", sqlite_url, key_alg="EdDSA"))
    eddsa.credentials.rotate_key(by=None, now=NOW)
    unset = make_service(make_settings(tmp_path / "home", sqlite_url))
    unset.credentials.rotate_key(by=None, now=NOW)  # IDSVC_KEY_ALG unset: keep EdDSA
    algs = [e.alg for e in unset.credentials.key_entries() if e.purpose == "credential"]
    assert algs == ["ES256", "EdDSA", "EdDSA"]
    view = unset.credentials.issue("LA-MOHA-000101", actor="desk", now=NOW)
    assert unset.verification.verify(view.token, now=NOW).valid
    for svc_ in (eddsa, unset):
        svc_.infra.db.dispose()


def test_cli_rotate_with_eddsa(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path / "home", sqlite_url)
    svc = make_service(settings)
    svc.credentials.init(now=NOW, actor="admin")
    cli = Cli(tmp_path / "home", sqlite_url)
    r = cli("keys", "rotate", env={"IDSVC_KEY_ALG": "EdDSA", "IDSVC_ISSUER": settings.issuer})
    assert r.returncode == 0, r.stderr
    assert svc.credentials.key_entries()[-1].alg == "EdDSA"
    assert cli("keys", "rotate", env={"IDSVC_KEY_ALG": "bogus"}).returncode == 3
    svc.infra.db.dispose()


def test_symlinked_key_file_is_refused_with_advice_that_leaves_the_target_alone(
    tmp_path: Path, sqlite_url: str
) -> None:
    svc = make_service(make_settings(tmp_path / "home", sqlite_url))
    svc.credentials.init(now=NOW, actor="admin")
    svc.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="s.csv", actor="hr", now=NOW)
    svc.infra.db.dispose()
    links = sorted((tmp_path / "home" / "keys").rglob("private/*.pem"))
    assert links
    for i, key in enumerate(links):
        target = tmp_path / f"elsewhere-{i}.pem"
        key.rename(target)
        key.symlink_to(target)
        target.chmod(0o644)
    fresh = make_service(make_settings(tmp_path / "home", sqlite_url))
    with pytest.raises(InsecureKeyFile) as info:
        fresh.credentials.issue("LA-MOHA-000101", actor="desk", now=NOW)
    fresh.infra.db.dispose()
    message = str(info.value)
    assert "symbolic link" in message
    assert "chmod 600" not in message.split("then")[0]
    assert exit_code_for(info.value)[0] == 13
    for i in range(len(links)):
        assert (tmp_path / f"elsewhere-{i}.pem").stat().st_mode & 0o777 == 0o644


def test_settings_defaults_are_valid() -> None:
    # The defaults themselves pass every rule (a newcomer's first run must start).
    Settings()


def test_the_environment_is_read_as_pydantic_settings_read_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Names in any case; other variables, and IDSVC_ names no setting has, are ignored; a
    keyword argument wins over the environment; text becomes the setting's type."""
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("idsvc_key_alg", "EdDSA")
    monkeypatch.setenv("IDSVC_HR_MAX_FILE_MB", "7")
    monkeypatch.setenv("IDSVC_NO_SUCH_SETTING", "whatever")
    monkeypatch.setenv("KEY_ALG", "bogus")
    settings = load_settings()
    assert settings.key_alg == "EdDSA"
    assert settings.hr_max_file_mb == 7
    assert settings.home == tmp_path / "home"
    assert Settings(home=tmp_path / "other").home == tmp_path / "other"
