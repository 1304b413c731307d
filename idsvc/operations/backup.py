"""``idsvc backup FILE`` / ``idsvc restore FILE``: the whole database plus the key rings' public
part, in one file.

A backup is a gzip'd tar (0600: it holds the register's personal data) with::

    idsvc-backup.json          format, time, dialect, schema revision, row count per table,
                               audit head, SHA-256 of every other member
    database.sqlite3           SQLite: a copy made with SQLite's online backup API
    database.pgdump            PostgreSQL: ``pg_dump -Fc`` of the database's schema
    keys/<issuer>/keyring.json key ring manifest (public JWKs, no private key)
    keys/<issuer>/ca.pem       issuer CA certificate

Every table of the database is in it, whoever added the table: the copy is taken below the
ORM. The row counts are read in the same snapshot as the copy (SQLite: from the copy itself;
PostgreSQL: ``pg_dump --snapshot`` of a transaction that counted the rows), and a restore
checks them, and the audit chain, before it reports success.

Private keys are never in a backup: encrypted key files are backed up by the operator (they
are useless without the passphrase, which is kept elsewhere) and HSM keys stay in the HSM
(see docs/operations.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, inspect, select, table, text

from idsvc.errors import BackupInvalid, OperationRefused, RestoreRefused
from idsvc.operations import pg_tools
from idsvc.storage.db import allow_create, check_connection
from keys.errors import KeysError
from keys.manifest import parse_manifest

FORMAT = "idsvc-backup/1"
MANIFEST = "idsvc-backup.json"
SQLITE_MEMBER = "database.sqlite3"
PG_MEMBER = "database.pgdump"
KEY_FILES = ("keyring.json", "ca.pem")
_KEY_MEMBER = re.compile(r"^keys/([a-z0-9][a-z0-9-]{0,63})/(keyring\.json|ca\.pem)$")
_MAX_MANIFEST = 1 << 20


@dataclass(frozen=True)
class BackupReport:
    path: Path
    dialect: str
    revision: str | None
    tables: dict[str, int]
    audit_events: int
    audit_head: str | None
    key_files: list[str]
    size: int


@dataclass
class RestoreReport:
    dialect: str
    revision: str | None
    tables: dict[str, int]
    key_files_written: list[str] = field(default_factory=list)
    key_files_kept: list[str] = field(default_factory=list)
    missing_private_keys: list[str] = field(default_factory=list)


# -- reading the live database ----------------------------------------------------------------
def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def count_rows(conn: Connection) -> dict[str, int]:
    names = sorted(inspect(conn).get_table_names())
    return {
        n: int(conn.execute(select(func.count()).select_from(table(n))).scalar_one()) for n in names
    }


def _audit_head(conn: Connection, tables: dict[str, int]) -> str | None:
    if "audit_head" not in tables:
        return None
    value = conn.execute(text("SELECT hash FROM audit_head WHERE id = 1")).scalar()
    return str(value) if value is not None else None


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise OperationRefused("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def server_major(conn: Connection) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _workdir(near: Path) -> Iterator[Path]:
    # Beside the destination: the finished file is renamed into place on the same filesystem,
    # and the database copy never lands in a shared /tmp.
    near.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = Path(tempfile.mkdtemp(prefix=".idsvc-backup-", dir=near))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- backup -----------------------------------------------------------------------------------
def _copy_sqlite(engine: Engine, dest: Path) -> tuple[dict[str, int], str | None]:
    source = sqlite3.connect(f"file:{_sqlite_path(engine)}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)  # page by page; writers may continue meanwhile
    finally:
        source.close()
        target.close()
    from sqlalchemy import create_engine

    copy = create_engine(f"sqlite:///{dest}")
    try:
        with copy.connect() as conn:
            tables = count_rows(conn)
            return tables, _audit_head(conn, tables)
    finally:
        copy.dispose()


def _dump_postgres(
    engine: Engine, dest: Path, bindir: Path | None
) -> tuple[dict[str, int], str | None]:
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        tables = count_rows(conn)
        head = _audit_head(conn, tables)
        pg_dump = pg_tools.find_tool("pg_dump", server_major(conn), bindir)
        # The dump reads the very snapshot the counts were taken in (the exporting transaction
        # must stay open until pg_dump has started reading).
        pg_tools.run_tool(
            [
                pg_dump,
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--schema={schema}",
                "--no-owner",
                "--no-privileges",
                f"--file={dest}",
            ],
            engine.url,
            what="pg_dump",
        )
        conn.rollback()
    return tables, head


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _refuse_link(out: Path) -> None:
    """The key files' rule (``keys.filesystem``): a file of personal data or secrets is never
    reached through a symbolic link. A link at the backup's name would have the register
    written over whatever it points to, or created wherever it points. (A link made during the
    copy is replaced by the final rename, which never follows it.)"""
    if out.is_symlink():
        raise OperationRefused(
            f"{out} is a symbolic link; idsvc writes a backup only to the file itself: "
            "name a path that is not a link (the link and its target are left untouched)"
        )


def create_backup(
    engine: Engine,
    keys_dir: Path,
    out: Path,
    *,
    revision: str | None,
    now: datetime,
    pg_bindir: Path | None = None,
) -> BackupReport:
    check_connection(engine)
    dialect = engine.dialect.name
    _refuse_link(out)
    # Only the folder is resolved: resolving the file itself would follow a link at it.
    out = out.parent.resolve() / out.name
    if out.is_dir():
        raise OperationRefused(f"{out} is a directory: name the backup file")
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _workdir(out.parent) as work:
        if dialect == "sqlite":
            member, db_file = SQLITE_MEMBER, work / SQLITE_MEMBER
            tables, head = _copy_sqlite(engine, db_file)
        elif dialect == "postgresql":
            member, db_file = PG_MEMBER, work / PG_MEMBER
            tables, head = _dump_postgres(engine, db_file, pg_bindir)
        else:
            raise OperationRefused(f"backup of a {dialect} database is not supported")
        # Key files are read after the database copy: any kid the copy refers to is already in
        # the manifest (a key rotated in between only adds an unused public key).
        keys: dict[str, bytes] = {}
        if keys_dir.is_dir():
            for ring in sorted(p for p in keys_dir.iterdir() if p.is_dir()):
                for name in KEY_FILES:
                    path = ring / name
                    if path.is_file() and _KEY_MEMBER.match(f"keys/{ring.name}/{name}"):
                        keys[f"keys/{ring.name}/{name}"] = path.read_bytes()
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "dialect": dialect,
            "revision": revision,
            "tables": tables,
            "audit_head": head,
            "members": {member: _sha256(db_file)}
            | {name: hashlib.sha256(data).hexdigest() for name, data in keys.items()},
        }
        partial = work / "backup.tar.gz"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
            tar.add(db_file, arcname=member, recursive=False)
            for name, data in keys.items():
                _add_bytes(tar, name, data)
            tar.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, out)
    return BackupReport(
        path=out,
        dialect=dialect,
        revision=revision,
        tables=tables,
        audit_events=tables.get("audit_events", 0),
        audit_head=head,
        key_files=sorted(keys),
        size=out.stat().st_size,
    )


# -- restore ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backup:
    manifest: dict[str, Any]
    database: Path
    keys: dict[str, bytes]


def read_backup(path: Path, work: Path) -> Backup:
    """Open and check a backup file: its members, their digests, its format."""
    try:
        tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by the `with` below
    except (OSError, tarfile.TarError) as exc:
        raise BackupInvalid(f"{path} is not an idsvc backup (not a readable archive)") from exc
    try:
        with tar:
            return _read_open_backup(tar, path, work)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise BackupInvalid(f"{path} is damaged or truncated ({type(exc).__name__})") from exc


def _read_open_backup(tar: tarfile.TarFile, path: Path, work: Path) -> Backup:
    members = {m.name: m for m in tar.getmembers() if m.isfile()}
    if MANIFEST not in members or members[MANIFEST].size > _MAX_MANIFEST:
        raise BackupInvalid(f"{path} is not an idsvc backup (no {MANIFEST})")
    try:
        manifest = json.loads(_read_member(tar, members[MANIFEST]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupInvalid(f"{path}: {MANIFEST} is not valid JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupInvalid(f"{path}: unknown backup format (expected {FORMAT})")
    digests = manifest.get("members")
    if not isinstance(digests, dict) or not isinstance(manifest.get("tables"), dict):
        raise BackupInvalid(f"{path}: {MANIFEST} lacks members or tables")
    db_member = {"sqlite": SQLITE_MEMBER, "postgresql": PG_MEMBER}.get(str(manifest.get("dialect")))
    if db_member is None or db_member not in digests:
        raise BackupInvalid(f"{path}: no database copy for dialect {manifest.get('dialect')}")
    keys: dict[str, bytes] = {}
    database = work / db_member
    for name, expected in digests.items():
        if name != db_member and not _KEY_MEMBER.match(name):
            raise BackupInvalid(f"{path}: unexpected member {name!r}")
        if name not in members:
            raise BackupInvalid(f"{path}: member {name} missing (truncated copy?)")
        if name == db_member:
            source = tar.extractfile(members[name])
            assert source is not None
            fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(source, f)
            actual = _sha256(database)
        else:
            keys[name] = _read_member(tar, members[name])
            actual = hashlib.sha256(keys[name]).hexdigest()
            if name.endswith("/keyring.json"):
                try:
                    parse_manifest(keys[name])
                except KeysError as exc:
                    raise BackupInvalid(f"{path}: {name} is not a valid key ring") from exc
        if actual != expected:
            raise BackupInvalid(f"{path}: member {name} is damaged (SHA-256 mismatch)")
    return Backup(manifest=manifest, database=database, keys=keys)


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    assert f is not None
    return f.read()


def _plan_keys(
    backup: Backup, keys_dir: Path, *, force: bool
) -> tuple[dict[Path, bytes], list[str]]:
    writes: dict[Path, bytes] = {}
    kept: list[str] = []
    for name, data in sorted(backup.keys.items()):
        target = keys_dir / name.removeprefix("keys/")
        if target.exists():
            if target.read_bytes() == data:
                kept.append(name)
                continue
            if not force:
                raise RestoreRefused(
                    f"{target} exists and differs from the backup's copy: refusing to replace "
                    "a key ring (use --force if this machine's keys are the stale ones)"
                )
        writes[target] = data
    return writes, kept


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(path.name + ".restoring")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def _missing_private_keys(keys_dir: Path, backup: Backup) -> list[str]:
    """Key files the restored manifests name that this machine does not have (yet)."""
    missing: list[str] = []
    for name, data in backup.keys.items():
        if not name.endswith("/keyring.json"):
            continue
        ring = keys_dir / name.removeprefix("keys/").rsplit("/", 1)[0]
        for entry in parse_manifest(data):
            path = entry.location.path
            if entry.location.backend == "file" and path and not (ring / path).is_file():
                missing.append(f"{ring.name}/{path} ({entry.kid})")
    return missing


def _restore_sqlite(engine: Engine, database: Path) -> None:
    engine.dispose()  # no pooled connection of ours may hold the file during the copy
    target = sqlite3.connect(_sqlite_path(engine), timeout=30)
    source = sqlite3.connect(database)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def _restore_postgres(
    engine: Engine, archive: Path, work: Path, *, wipe: list[str], bindir: Path | None
) -> None:
    with engine.begin() as conn:
        major = server_major(conn)
        # --force: the operator asked to replace what is there; drop it in one transaction.
        for name in wipe:
            conn.execute(text(f"DROP TABLE IF EXISTS {_quote(conn, name)} CASCADE"))
    pg_restore = pg_tools.find_tool("pg_restore", major, bindir)
    listing = work / "restore.list"
    listing.write_text(pg_tools.restore_list(pg_restore, archive, engine.url))
    pg_tools.run_tool(
        [
            pg_restore,
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            f"--use-list={listing}",
            # Only the name: host, user and password reach libpq through the environment.
            f"--dbname={engine.url.database}",
            str(archive),
        ],
        engine.url,
        what="pg_restore",
    )


def restore_backup(
    engine: Engine,
    keys_dir: Path,
    path: Path,
    *,
    force: bool,
    pg_bindir: Path | None = None,
) -> RestoreReport:
    """Load a backup into the configured database and key folder; check what was loaded."""
    allow_create(engine)  # restoring onto a new machine starts from no database file
    check_connection(engine)
    dialect = engine.dialect.name
    if not path.is_file():
        raise BackupInvalid(f"no backup file {path}")
    with engine.connect() as conn:
        present = sorted(inspect(conn).get_table_names())
    with _workdir(_sqlite_path(engine).parent if dialect == "sqlite" else keys_dir.parent) as work:
        backup = read_backup(path, work)
        if backup.manifest["dialect"] != dialect:
            raise RestoreRefused(
                f"the backup is of a {backup.manifest['dialect']} database; the configured one "
                f"is {dialect} (restore into the same kind of database)"
            )
        if present and not force:
            raise RestoreRefused(
                f"the target database is not empty ({len(present)} tables, e.g. {present[0]}): "
                "refusing to overwrite it; restore into an empty database or pass --force"
            )
        key_writes, kept = _plan_keys(backup, keys_dir, force=force)
        if dialect == "sqlite":
            _restore_sqlite(engine, backup.database)
        else:
            _restore_postgres(engine, backup.database, work, wipe=present, bindir=pg_bindir)
        for target, data in key_writes.items():
            _write_private(target, data)
    with engine.connect() as conn:
        tables = count_rows(conn)
    expected = {str(k): int(v) for k, v in backup.manifest["tables"].items()}
    if {k: tables.get(k) for k in expected} != expected:
        differ = sorted(k for k in expected if tables.get(k) != expected[k])
        raise OperationRefused(f"restore incomplete: row counts differ in {', '.join(differ)}")
    return RestoreReport(
        dialect=dialect,
        revision=backup.manifest.get("revision"),
        tables=tables,
        key_files_written=sorted(str(p.relative_to(keys_dir)) for p in key_writes),
        key_files_kept=kept,
        missing_private_keys=_missing_private_keys(keys_dir, backup),
    )
