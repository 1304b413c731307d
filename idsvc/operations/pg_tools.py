"""Running PostgreSQL's own ``pg_dump`` / ``pg_restore`` against the configured database.

The tools must be at least the server's major version (an older ``pg_dump`` refuses a newer
server, and an older ``pg_restore`` cannot read a newer archive). Debian installs one set per
version under ``/usr/lib/postgresql/<major>/bin``; that is searched first, then ``PATH``.

Connection details go to the tools through libpq's environment variables, never the command
line, where ``ps`` would show the password to every user of the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL

from idsvc.errors import OperationRefused, ToolMissing

DEBIAN_BINDIR = "/usr/lib/postgresql/{major}/bin"
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")
# URL query parameters passed on to libpq (``options`` carries e.g. a search_path).
_LIBPQ_QUERY = {
    "options": "PGOPTIONS",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "application_name": "PGAPPNAME",
}


def libpq_environment(url: URL) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    pairs = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password if isinstance(url.password, str) else None,
        "PGDATABASE": url.database,
        "PGCONNECT_TIMEOUT": "10",
    }
    for key, name in _LIBPQ_QUERY.items():
        value = url.query.get(key)
        if isinstance(value, tuple):
            value = value[-1]
        pairs[name] = value
    env.update({k: v for k, v in pairs.items() if v})
    return env


def tool_major(path: str) -> int | None:
    try:
        out = subprocess.run(  # noqa: S603 - argv list, no shell; path found by us
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    found = _VERSION.search(out)
    return int(found.group(1)) if found else None


def find_tool(name: str, server_major: int, bindir: Path | None = None) -> str:
    """The path of ``name`` (pg_dump, pg_restore) usable with a server of ``server_major``."""
    candidates: list[str] = []
    if bindir is not None:
        candidates.append(str(bindir / name))
    else:
        candidates.append(str(Path(DEBIAN_BINDIR.format(major=server_major)) / name))
        on_path = shutil.which(name)
        if on_path:
            candidates.append(on_path)
    seen: list[str] = []
    for path in candidates:
        major = tool_major(path) if Path(path).is_file() else None
        if major is not None and major >= server_major:
            return path
        if major is not None:
            seen.append(f"{path} is version {major}")
    found = f" ({'; '.join(seen)})" if seen else ""
    raise ToolMissing(
        f"{name} for PostgreSQL {server_major} (or newer) not found{found}: install "
        f"postgresql-client-{server_major} (Debian) or pass --pg-bindir DIR"
    )


def run_tool(argv: list[str], url: URL, *, what: str) -> None:
    proc = subprocess.run(  # noqa: S603 - argv list, no shell; fixed tool and options
        argv, env=libpq_environment(url), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        # The tools' messages name objects, not data; keep the last lines for the operator.
        detail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise OperationRefused(f"{what} failed (exit {proc.returncode}): {detail}")


def restore_list(pg_restore: str, archive: Path, url: URL) -> str:
    """The archive's table of contents minus the CREATE SCHEMA entry.

    The schema (``public`` in a normal deployment) exists in the target already; creating it
    again would fail the single-transaction restore.
    """
    proc = subprocess.run(  # noqa: S603 - argv list, no shell
        [pg_restore, "--list", str(archive)],
        env=libpq_environment(url),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise OperationRefused(f"pg_restore cannot read the archive: {proc.stderr.strip()}")
    kept = [
        line
        for line in proc.stdout.splitlines()
        if not re.search(r"\b(SCHEMA - |COMMENT - SCHEMA )", line)
    ]
    return "\n".join(kept) + "\n"
