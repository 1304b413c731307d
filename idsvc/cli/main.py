"""``idsvc`` commands. Each command reads settings and the clock, calls one use case, prints.

Exit codes: 0 ok · 1 credential not valid · 2 usage · 3 not initialised · 4 unknown employee ·
5 holder not eligible · 6 unknown credential · 7 invalid state change · 8 some HR rows rejected ·
9 HR file unreadable · 10 database unavailable · 11 card issuance failed · 12 wrong passphrase ·
13 key file problem · 14 HSM problem · 15 card/reader problem · 16 audit chain broken ·
17 card removed mid-operation.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from idsvc.cli.errors import EXIT_HR_ROWS_REJECTED, EXIT_INVALID, reported
from idsvc.config import Settings, key_passphrase
from idsvc.service import DEFAULT_ISSUER, IdService

app = typer.Typer(
    help="Civil-servant ID service: register, credentials, cards, verification.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Issuer signing keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")

console = Console(highlight=False, soft_wrap=True)


@app.callback()
def _private_files() -> None:
    """Files idsvc creates (database, keys, card state) hold personal data or secrets."""
    os.umask(0o077)


def utcnow() -> datetime:
    return datetime.now(UTC)


def passphrase_source(settings: Settings) -> bytes:
    prompt = (
        (lambda: str(typer.prompt("Issuer key passphrase", hide_input=True)))
        if sys.stdin.isatty()
        else None
    )
    return key_passphrase(settings, prompt)


def service() -> IdService:
    settings = Settings()
    return IdService.from_settings(settings, lambda: passphrase_source(settings))


def actor(settings: Settings) -> str:
    return settings.operator


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


IssuerOpt = Annotated[str, typer.Option("--issuer", help="issuer slug")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@app.command()
def init(
    issuer: IssuerOpt = DEFAULT_ISSUER,
    iss: Annotated[str | None, typer.Option(help="issuer id (iss) for a new issuer")] = None,
) -> None:
    """Create or upgrade the database and create the issuer's keys if there are none."""
    with reported():
        svc = service()
        found, created = svc.init(now=utcnow(), actor=actor(svc.settings), slug=issuer, iss=iss)
        verb = "created" if created else "kept"
        console.print(
            f"database ready; issuer [bold]{found.slug}[/] ({escape(found.iss)}), "
            f"signing key {found.active_kid} {verb}"
        )


@app.command("import-hr")
def import_hr(
    file: Annotated[Path, typer.Argument(help="HR export (CSV, UTF-8)")],
    json_out: JsonOpt = False,
) -> None:
    """Load HR records; bad rows are listed with their line numbers, good rows land."""
    with reported():
        svc = service()
        try:
            data = file.read_bytes()
        except OSError as exc:
            from idsvc.formats.hr_csv import HrFileError

            raise HrFileError(f"cannot read {file}: {exc.strerror}") from exc
        rows = max(data.count(b"\n") - 1, 1)
        with progress_bar() as bar:
            task = bar.add_task("importing", total=rows)
            report = svc.import_hr(
                data,
                source_name=file.name,
                actor=actor(svc.settings),
                now=utcnow(),
                progress=lambda n: bar.advance(task, n),
            )
        if json_out:
            print(
                json.dumps(
                    {
                        "rows": report.rows,
                        "created": report.created,
                        "updated": report.updated,
                        "unchanged": report.unchanged,
                        "status_changes": report.status_changes,
                        "credentials_changed": report.credentials_changed,
                        "rejected": [
                            {"line": r.line, "employee_id": r.employee_id, "reason": r.reason}
                            for r in report.rejects
                        ],
                    },
                    ensure_ascii=False,
                )
            )
        else:
            console.print(
                f"{report.rows} rows: {report.created} new, {report.updated} updated, "
                f"{report.unchanged} unchanged, {len(report.rejects)} rejected; "
                f"{report.credentials_changed} credentials changed status"
            )
            for r in report.rejects:
                console.print(f"  line {r.line}: {escape(r.reason)}", style="yellow")
        if report.rejects:
            raise typer.Exit(EXIT_HR_ROWS_REJECTED)


@app.command()
def issue(
    employee_id: str,
    json_out: JsonOpt = False,
    issuer: IssuerOpt = DEFAULT_ISSUER,
    reader: Annotated[
        str | None, typer.Option(help="personalise the card in this PC/SC reader")
    ] = None,
    default_management_key: Annotated[
        bool, typer.Option(help="use the PIV test management key (training cards only)")
    ] = False,
    new_pin: Annotated[str | None, typer.Option(help="set this card PIN")] = None,
    new_puk: Annotated[str | None, typer.Option(help="set this card PUK")] = None,
) -> None:
    """Issue a credential (supersedes the person's previous one); print the JWT."""
    with reported():
        svc = service()
        if reader is None:
            view = svc.issue(
                employee_id, actor=actor(svc.settings), now=utcnow(), issuer_slug=issuer
            )
            print(json.dumps(view.as_dict(), ensure_ascii=False) if json_out else view.token)
            return
        from idsvc.cli.card_commands import issue_to_card

        issue_to_card(
            svc,
            employee_id,
            reader=reader,
            issuer=issuer,
            default_management_key=default_management_key,
            new_pin=new_pin,
            new_puk=new_puk,
            json_out=json_out,
        )


@app.command()
def verify(
    text: Annotated[str, typer.Argument(help="the credential (JWT), or - for stdin")],
    json_out: JsonOpt = False,
) -> None:
    """Verify a credential; exit 0 only when it is valid."""
    with reported():
        token = sys.stdin.read() if text == "-" else text
        result = service().verify(token, now=utcnow())
        if json_out:
            print(json.dumps(result.as_dict(), ensure_ascii=False))
        else:
            colour = "green" if result.valid else "red"
            console.print(f"[bold {colour}]{result.status.upper()}[/]", end="")
            if result.reasons:
                console.print(" (" + ", ".join(result.reasons) + ")", end="")
            console.print()
            if result.holder:
                for key, value in result.holder.items():
                    console.print(f"  {key}: {escape(value)}")
        if not result.valid:
            raise typer.Exit(EXIT_INVALID)


def _state_command(action: str, credential_id: str, reason: str, json_out: bool) -> None:
    with reported():
        svc = service()
        view = svc.change_state(
            credential_id, action, reason=reason, actor=actor(svc.settings), now=utcnow()
        )
        if json_out:
            print(json.dumps(view.as_dict(), ensure_ascii=False))
        else:
            console.print(f"credential {view.id} is now [bold]{view.state}[/]")


Reason = Annotated[str, typer.Option("--reason", help="why (kept in the audit log)")]


@app.command()
def revoke(credential_id: str, reason: Reason, json_out: JsonOpt = False) -> None:
    """Revoke a credential for good."""
    _state_command("revoke", credential_id, reason, json_out)


@app.command()
def suspend(credential_id: str, reason: Reason, json_out: JsonOpt = False) -> None:
    """Suspend a credential (it can be reinstated)."""
    _state_command("suspend", credential_id, reason, json_out)


@app.command()
def reinstate(credential_id: str, reason: Reason, json_out: JsonOpt = False) -> None:
    """Reinstate a suspended credential."""
    _state_command("reinstate", credential_id, reason, json_out)


@app.command()
def credentials(employee_id: str, json_out: JsonOpt = False) -> None:
    """List a person's credentials."""
    with reported():
        views = service().credentials_of(employee_id)
        if json_out:
            print(json.dumps([v.as_dict() for v in views], ensure_ascii=False))
            return
        table = Table("credential", "state", "card serial", "issued", "expires")
        for v in views:
            table.add_row(
                v.id, v.state, v.card_serial, f"{v.issued_at:%Y-%m-%d}", f"{v.expires_at:%Y-%m-%d}"
            )
        console.print(table)


@keys_app.command("list")
def keys_list(issuer: IssuerOpt = DEFAULT_ISSUER) -> None:
    """List the issuer's keys (active and retired)."""
    with reported():
        table = Table("kid", "alg", "purpose", "backend", "created", "retired")
        for e in service().key_entries(issuer):
            table.add_row(
                e.kid,
                e.alg,
                e.purpose,
                e.backend,
                f"{e.created_at:%Y-%m-%d}",
                f"{e.retired_at:%Y-%m-%d}" if e.retired_at else "",
            )
        console.print(table)


@keys_app.command("rotate")
def keys_rotate(issuer: IssuerOpt = DEFAULT_ISSUER) -> None:
    """Make a new signing key active; old keys keep verifying what they signed."""
    with reported():
        svc = service()
        old, new = svc.rotate_key(actor=actor(svc.settings), now=utcnow(), issuer_slug=issuer)
        console.print(f"rotated: {old} retired (still published), {new} active")


@keys_app.command("jwks")
def keys_jwks(issuer: IssuerOpt = DEFAULT_ISSUER) -> None:
    """Print the issuer's published JWKS."""
    with reported():
        print(json.dumps(service().jwks(issuer), indent=2))


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit chain; the first broken event is named."""
    with reported():
        check = service().verify_audit()
        console.print(f"audit chain intact: {check.events} events, head {check.head_hash}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="listen port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Run the HTTP API (health, JWKS, status lists, verification)."""
    with reported():
        svc = service()
        svc.health()
        os.environ.setdefault("IDSVC_HOME", str(svc.settings.home))
        run_server(host, port, workers)


def run_server(host: str, port: int, workers: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        "mobile_api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=False,
    )
    if workers <= 1:
        # uvicorn.run's behaviour: Ctrl-C (SIGINT) after a clean shutdown is a normal exit.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run()
        return
    # uvicorn binds its multi-worker socket without IPPROTO_TCP, so asyncio never sets
    # TCP_NODELAY on accepted connections and each keep-alive response waits ~45 ms for a
    # delayed ACK (measured: bench/bench_http.py). Bind the socket ourselves.
    from uvicorn.supervisors.multiprocess import Multiprocess

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[sock]).run()


from idsvc.cli import card_commands  # noqa: E402  (registers `readers`, `card`, `virtual-card`)

card_commands.register(app)
