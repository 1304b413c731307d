"""Operations commands: ``db upgrade|status``, ``backup``, ``restore``, ``sweep``, ``publish``.

Exit codes: 23 when an operation is refused (downgrade, restore over data, damaged backup,
missing pg_dump/pg_restore); 3 from ``db status --check`` when migrations are pending; the
rest as for every command (10 database unavailable or full, 16 audit chain broken).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from idsvc.cli.app import app
from idsvc.cli.common import JsonOpt, actor, console, err_console, now, print_json, services
from idsvc.cli.errors import reported
from idsvc.storage.errors import DatabaseUnavailable

if TYPE_CHECKING:  # imported where used: `idsvc` start-up must not load the database layer
    from idsvc.operations.use_cases import Operations

db_app = typer.Typer(help="Database schema: status and safe upgrades.", no_args_is_help=True)
app.add_typer(db_app, name="db")

EXIT_SCHEMA_PENDING = 3

PgBindirOpt = Annotated[
    Path | None,
    typer.Option(
        "--pg-bindir", help="folder holding pg_dump/pg_restore (default: the server's version)"
    ),
]


def _operations() -> Operations:
    return services().operations


def _sleep_until_next(every: float, due: datetime | None) -> None:
    wait = every
    if due is not None:
        wait = min(wait, max(1.0, (due - now()).total_seconds()))
    time.sleep(wait)


@db_app.command("status")
def db_status(
    json_out: JsonOpt = False,
    check: Annotated[
        bool, typer.Option("--check", help="exit 3 when migrations are pending")
    ] = False,
) -> None:
    """Show the database's schema revision and the migrations still to apply."""
    with reported():
        state = _operations().db_status()
        if json_out:
            doc = {
                "current": state.current,
                "head": state.head,
                "up_to_date": state.up_to_date,
                "pending": [{"revision": r.id, "title": r.title} for r in state.pending],
            }
            print_json(doc)
        else:
            console.print(
                f"schema at {state.current or 'nothing (empty database)'}, "
                f"code at {state.head}: "
                + (
                    "up to date"
                    if state.up_to_date
                    else f"{len(state.pending)} migration(s) pending"
                )
            )
            for rev in state.pending:
                console.print(f"  {rev.id}  {escape(rev.title)}")
        if check and not state.up_to_date:
            raise typer.Exit(EXIT_SCHEMA_PENDING)


@db_app.command("upgrade")
def db_upgrade(
    to: Annotated[str, typer.Option("--to", help="target revision")] = "head",
    json_out: JsonOpt = False,
) -> None:
    """Apply pending migrations to a live database (one upgrader at a time; never downgrades)."""
    with reported():
        result = _operations().db_upgrade(to)
        if json_out:
            print_json(
                {
                    "from": result.from_revision,
                    "to": result.to_revision,
                    "applied": [r.id for r in result.applied],
                }
            )
        elif result.applied:
            console.print(
                f"upgraded {result.from_revision or 'empty database'} -> {result.to_revision}: "
                + ", ".join(f"{r.id} ({escape(r.title)})" for r in result.applied)
            )
        else:
            console.print(f"already at {result.to_revision}: nothing to do")


@app.command("backup")
def backup(
    file: Annotated[Path, typer.Argument(help="backup file to write (e.g. idsvc-DATE.tar.gz)")],
    pg_bindir: PgBindirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Back up the whole database and the key rings' public part into one file (0600)."""
    with reported():
        report = _operations().backup(file, now=now(), pg_bindir=pg_bindir)
        if json_out:
            print_json(
                {
                    "file": str(report.path),
                    "dialect": report.dialect,
                    "revision": report.revision,
                    "size": report.size,
                    "tables": report.tables,
                    "audit_events": report.audit_events,
                    "audit_head": report.audit_head,
                    "key_files": report.key_files,
                }
            )
            return
        console.print(
            f"backup written: {report.path} ({report.size} bytes, {report.dialect}, schema "
            f"{report.revision}); {sum(report.tables.values())} rows in {len(report.tables)} "
            f"tables, {report.audit_events} audit events (head {report.audit_head}), "
            f"{len(report.key_files)} key-ring files. Private keys are NOT included."
        )


@app.command("restore")
def restore(
    file: Annotated[Path, typer.Argument(help="backup file written by `idsvc backup`")],
    force: Annotated[
        bool, typer.Option("--force", help="replace a database that is not empty")
    ] = False,
    pg_bindir: PgBindirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Restore a backup into the configured database (empty unless --force); check the audit."""
    with reported():
        outcome = _operations().restore(file, force=force, pg_bindir=pg_bindir)
        report = outcome.report
        if json_out:
            print_json(
                {
                    "dialect": report.dialect,
                    "revision": report.revision,
                    "tables": report.tables,
                    "audit_events": outcome.audit.events,
                    "audit_head": outcome.audit.head_hash,
                    "key_files_written": report.key_files_written,
                    "missing_private_keys": report.missing_private_keys,
                    "schema_up_to_date": outcome.schema.up_to_date,
                }
            )
            return
        console.print(
            f"restored {sum(report.tables.values())} rows in {len(report.tables)} tables; "
            f"audit chain intact: {outcome.audit.events} events, head {outcome.audit.head_hash}"
        )
        if report.key_files_written:
            console.print("key-ring files written: " + ", ".join(report.key_files_written))
        if not outcome.schema.up_to_date:
            console.print(
                f"schema at {outcome.schema.current}, code at {outcome.schema.head}: "
                "run `idsvc db upgrade`",
                style="yellow",
            )
        for missing in report.missing_private_keys:
            console.print(
                f"private key file missing: {escape(missing)} - restore it from the key backup "
                "before issuing (verification works without it)",
                style="yellow",
            )


@app.command("sweep")
def sweep(
    every: Annotated[
        float | None,
        typer.Option("--every", help="keep running, sweeping every SECONDS", min=1),
    ] = None,
) -> None:
    """Expire issuances begun but never confirmed and approvals not decided in time, end
    the contracts whose last day has passed, and delete expired holder sessions and nonces.

    All are audited ('expired unconfirmed', 'approval.expire', 'hr.import' from the sweep)."""
    with reported():
        ops = _operations()
        while True:
            try:
                closed = ops.sweep(actor=actor(ops.infra.settings), now=now())
                console.print(f"{closed} unconfirmed issuance(s) expired")
                lapsed = ops.expire_approvals(actor=actor(ops.infra.settings), now=now())
                console.print(f"{lapsed} pending approval(s) expired")
                ended = ops.end_contracts(actor=actor(ops.infra.settings), now=now())
                console.print(f"{ended} contract(s) ended")
                gone = ops.delete_expired_wallet_rows(now=now())
                console.print(f"{gone} expired holder session(s) and wallet nonce(s) deleted")
            except DatabaseUnavailable as exc:
                if every is None:
                    raise
                err_console.print(f"sweep skipped: {escape(str(exc))}; retrying in {every:g} s")
            if every is None:
                return
            time.sleep(every)


@app.command("publish")
def publish(
    out: Annotated[Path, typer.Option("--out", help="folder a CDN or app bundle serves")],
    watch: Annotated[
        bool, typer.Option("--watch", help="keep running; re-publish changes, re-sign in time")
    ] = False,
    every: Annotated[
        float, typer.Option("--every", help="with --watch: check every SECONDS", min=1)
    ] = 60.0,
) -> None:
    """Write the JWKS and signed status lists as static files (atomically)."""
    with reported():
        ops = _operations()
        while True:
            try:
                report = ops.publish(out, now=now())
                console.print(
                    f"published to {report.out}: {len(report.written)} written, "
                    f"{len(report.unchanged)} unchanged"
                    + (
                        f"; next re-signing due {report.next_due:%Y-%m-%dT%H:%M:%SZ}"
                        if report.next_due
                        else ""
                    )
                )
            except DatabaseUnavailable as exc:
                if not watch:
                    raise
                report = None
                err_console.print(f"publish skipped: {escape(str(exc))}; retrying in {every:g} s")
            if not watch:
                return
            _sleep_until_next(every, report.next_due if report else None)
