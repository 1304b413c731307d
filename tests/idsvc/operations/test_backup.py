"""Restore drill: ``idsvc backup`` of a used database, ``idsvc restore`` into an empty one on
another "machine" (home folder), then the audit chain, every table and a revoked credential
are checked there. On SQLite and on PostgreSQL (pg_dump/pg_restore)."""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import stat
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

from idsvc.errors import BackupInvalid, ToolMissing
from idsvc.services import Services
from tests.support.cli_runner import Cli
from tests.support.settings import NOW, make_service, make_settings

ACTIVE = "KH-MCS-010002"


def _counts(url: str) -> dict[str, int]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sqlalchemy.inspect(conn).get_table_names()
            return {
                n: conn.execute(
                    sqlalchemy.select(sqlalchemy.func.count()).select_from(sqlalchemy.table(n))
                ).scalar_one()
                for n in names
            }
    finally:
        engine.dispose()


@pytest.fixture
def target_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of the same kind: a new SQLite file, or a new PostgreSQL database
    holding an empty schema of the source's name (pg_dump names its schema)."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'idsvc.sqlite3'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    schema = unquote(db_url.split("search_path%3D", 1)[1])
    name = f"restore_{secrets.token_hex(5)}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    url += f"?options=-csearch_path%3D{schema}"
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def _used(service: Services) -> str:
    """Issue, supersede, revoke and leave one issuance pending; return the revoked token."""
    service.credentials.issue(ACTIVE, actor="desk", now=NOW)
    view = service.credentials.issue(ACTIVE, actor="desk", now=NOW + timedelta(minutes=1))
    service.credentials.revoke(view.id, reason="card lost", by=None, now=NOW + timedelta(minutes=2))
    return view.token


def test_restore_drill(service: Services, db_url: str, target_url: str, tmp_path: Path) -> None:
    token = _used(service)
    source = Cli(service.settings.home, db_url)
    backup = tmp_path / "backups" / "idsvc.tar.gz"
    made = source("backup", str(backup), "--json")
    assert made.returncode == 0, made.stderr
    head = json.loads(made.stdout)["audit_head"]
    assert head == service.audit.verify_chain().head_hash
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # personal data inside
    with tarfile.open(backup) as tar:
        names = tar.getnames()
    assert not any("private" in n for n in names), names

    target = Cli(tmp_path / "restored-home", target_url)
    restored = target("restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "audit chain intact: " in restored.stdout and head in restored.stdout
    assert "private key file missing" in restored.stdout  # the operator is told what to bring

    # Every table, whoever added it, came back with every row.
    assert _counts(target_url) == _counts(db_url)
    # Public keys and status came back: the revoked credential verifies as REVOKED there.
    verdict = target("verify", token, "--json")
    assert verdict.returncode == 1 and '"REVOKED"' in verdict.stdout, verdict.stdout
    assert not (tmp_path / "restored-home" / "keys" / "default" / "private").exists()

    # A second restore over the now non-empty database is refused and changes nothing.
    again = target("restore", str(backup))
    assert again.returncode == 23 and "not empty" in again.stderr
    target_service = make_service(make_settings(tmp_path / "restored-home", target_url))
    forced = target_service.operations.restore(backup, force=True, pg_bindir=None)
    assert forced.audit.head_hash == head
    assert _counts(target_url) == _counts(db_url)
    target_service.infra.db.dispose()


def test_damaged_or_foreign_backup_is_refused(
    service: Services, db_url: str, target_url: str, tmp_path: Path
) -> None:
    backup = tmp_path / "b.tar.gz"
    service.operations.backup(backup, now=NOW, pg_bindir=None)
    target = make_service(make_settings(tmp_path / "restored-home", target_url)).operations

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])
    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        tar.add(__file__, arcname="idsvc-backup.json")
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(backup) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name.endswith("ca.pem"):
                data = data.replace(b"A", b"B", 1)
            dst.addfile(member, io.BytesIO(data))
    for bad, words in (
        (truncated, "damaged or truncated"),
        (foreign, "not valid JSON"),
        (tampered, "ca.pem is damaged (SHA-256 mismatch)"),
        (tmp_path / "nope.tar.gz", "no backup file"),
    ):
        with pytest.raises(BackupInvalid, match=re.escape(words)):
            target.restore(bad, force=False, pg_bindir=None)
    # Nothing was loaded, and no key file was written.
    assert all(v == 0 for v in _counts(target_url).values())
    assert not (tmp_path / "restored-home" / "keys").exists()
    if not db_url.startswith("sqlite"):
        with pytest.raises(ToolMissing, match=r"pg_dump for PostgreSQL 1[0-9]"):
            service.operations.backup(tmp_path / "c.tar.gz", now=NOW, pg_bindir=tmp_path)
        assert not (tmp_path / "c.tar.gz").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".idsvc-backup-")]


def test_backup_never_follows_a_link_at_the_file(tmp_path: Path) -> None:
    # A link at FILE (planted, or left by a careless script) would have the backup overwrite
    # whatever it points to, with the register's personal data: refused, like a linked key file.
    cli = Cli(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'idsvc.sqlite3'}")
    assert cli("init").returncode == 0
    victim = tmp_path / "other" / "precious.txt"
    victim.parent.mkdir()
    victim.write_text("someone else's file\n")
    victim.chmod(0o644)
    link = tmp_path / "backups" / "idsvc.tar.gz"
    link.parent.mkdir()
    link.symlink_to(victim)
    dangling = tmp_path / "backups" / "new.tar.gz"
    dangling.symlink_to(tmp_path / "other" / "created-through-the-link")
    for path in (link, dangling):
        r = cli("backup", str(path))
        assert r.returncode == 23, (r.returncode, r.stderr)
        assert "is a symbolic link" in r.stderr and str(path) in r.stderr, r.stderr
        assert path.is_symlink()
    assert victim.read_text() == "someone else's file\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["precious.txt"]
    assert sorted(p.name for p in link.parent.iterdir()) == ["idsvc.tar.gz", "new.tar.gz"]
    # The real file next to it is written as before.
    r = cli("backup", str(tmp_path / "backups" / "real.tar.gz"))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "backups" / "real.tar.gz").stat().st_mode) == 0o600
