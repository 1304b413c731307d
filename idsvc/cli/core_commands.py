"""The centre's everyday commands: ``init``, ``import-hr``, ``issue``, ``verify``, ``revoke``,
``suspend``, ``reinstate``, ``credentials``, ``keys list|rotate|jwks``, ``audit verify`` and
``serve``. Each reads settings and the clock, calls one use case, prints.

Every ``idsvc`` run pays for what the command modules import at the top, so the heavy libraries
(pydantic with the settings, SQLAlchemy, Alembic, cryptography, PKCS#11, Pillow, zxing, uvicorn)
are imported inside the commands that use them: ``idsvc --help`` and a typo stay instant, and
each test's subprocess too (tests/idsvc/cli/test_imports.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape

from idsvc import DEFAULT_ISSUER
from idsvc.cli.app import app, audit_app, keys_app
from idsvc.cli.common import (
    CredentialArg,
    DefaultKeyOpt,
    EmployeeArg,
    IssuerOpt,
    JsonOpt,
    NewPinOpt,
    NewPukOpt,
    OperatorOpt,
    OtpOpt,
    PasswordStdinOpt,
    ReasonOpt,
    actor,
    console,
    err_console,
    now,
    print_json,
    print_verdict,
    progress_bar,
    services,
)
from idsvc.cli.errors import EXIT_HR_ROWS_REJECTED, EXIT_INVALID, reported

if TYPE_CHECKING:
    from idsvc.verification.rules import VerificationResult


@app.command()
def init(
    issuer: IssuerOpt = DEFAULT_ISSUER,
    iss: Annotated[str | None, typer.Option(help="issuer id (iss) for a new issuer")] = None,
) -> None:
    """Create or upgrade the database and create the issuer's keys if there are none."""
    with reported():
        svc = services()
        found, created = svc.credentials.init(
            now=now(), actor=actor(svc.settings), slug=issuer, iss=iss
        )
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
        svc = services()
        from idsvc.formats.hr_csv import HrFileError

        try:
            handle = file.open("rb")  # streamed: a large export is never held whole in memory
        except OSError as exc:
            raise HrFileError(f"cannot read {file}: {exc.strerror}") from exc
        with handle, progress_bar() as bar:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
            handle.seek(0)
            task = bar.add_task("importing", total=max(lines - 1, 1))
            report = svc.register.import_hr(
                handle,
                source_name=file.name,
                actor=actor(svc.settings),
                now=now(),
                progress=lambda n: bar.advance(task, n),
            )
        if json_out:
            print_json(
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
                }
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
    employee_id: EmployeeArg,
    json_out: JsonOpt = False,
    issuer: IssuerOpt = DEFAULT_ISSUER,
    reader: Annotated[
        str | None, typer.Option(help="personalise the card in this PC/SC reader")
    ] = None,
    default_management_key: DefaultKeyOpt = False,
    new_pin: NewPinOpt = None,
    new_puk: NewPukOpt = None,
    qr: Annotated[
        bool, typer.Option("--qr", help="print the printed QR text (Claim 169), not the JWT")
    ] = False,
    qr_photo: Annotated[
        bool, typer.Option("--qr-photo", help="put the holder's small photo in the QR")
    ] = False,
) -> None:
    """Issue a credential (supersedes the person's previous one); print the JWT.

    The same issuance makes the printed QR (Claim 169): its QR version and size go to stderr.
    """
    from idsvc.cli.desk_routing import enrolled_desk

    if enrolled_desk():  # a remote desk: the centre signs, onto a card only
        from idsvc.cli.desk_commands import issue_through_centre

        issue_through_centre(
            employee_id,
            reader=reader,
            default_management_key=default_management_key,
            new_pin=new_pin,
            new_puk=new_puk,
            json_out=json_out,
            printed_qr=qr or qr_photo,
        )
        return
    with reported():
        svc = services()
        if reader is None:
            view = svc.credentials.issue(
                employee_id,
                actor=actor(svc.settings),
                now=now(),
                issuer_slug=issuer,
                qr_photo=qr_photo,
            )
            if view.qr is not None:
                err_console.print(
                    f"printed QR: version {view.qr.version} (ECC M), {view.qr.payload_bytes} bytes"
                )
            if json_out:
                print_json(view.as_dict())
            else:
                print(view.qr_text if qr else view.token)
            return
        if qr_photo or qr:
            # The desk prints from `card-face`; the photo QR is not part of the card protocol.
            err_console.print("[bold red]error:[/] --qr and --qr-photo do not go with --reader")
            raise typer.Exit(2)
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
    text: Annotated[
        str | None,
        typer.Argument(
            help="the credential: the JWT, the printed QR text, a tap URL, or - for stdin"
        ),
    ] = None,
    image: Annotated[
        Path | None,
        typer.Option("--image", help="read the QR from a PNG/JPEG photo or scan of the card"),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify a credential (JWT or printed QR, told apart automatically); exit 0 only if valid."""
    with reported():
        if (text is None) == (image is None):
            err_console.print("[bold red]error:[/] give either the credential text or --image FILE")
            raise typer.Exit(2)
        if image is not None:
            from idsvc.credentials.printed_qr import qr_text_from_image

            token = qr_text_from_image(_read_image(image))
        else:
            token = sys.stdin.read() if text == "-" else str(text)
        result = _verify_here(token)
        if json_out:
            print_json(result.as_dict())
        else:
            print_verdict(result)
            if result.holder:
                for key, value in result.holder.items():
                    console.print(f"  {key}: {escape(value)}")
        if not result.valid:
            raise typer.Exit(EXIT_INVALID)


def _verify_here(token: str) -> VerificationResult:
    from idsvc.cli.desk_routing import enrolled_desk

    if enrolled_desk():  # a remote desk: the centre checks it, for the signed-in operator
        from idsvc.cli.desk_commands import centre_client

        return centre_client().verify_card(token, None)
    return services().verification.verify(token, now=now())


def _read_image(path: Path) -> bytes:
    from cardio.qr_scan import MAX_IMAGE_BYTES
    from idsvc.errors import QrImageUnreadable

    try:
        with path.open("rb") as handle:
            # One byte past the limit is enough to know the file is too big.
            return handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise QrImageUnreadable(f"cannot read {path}: {exc.strerror}") from None


def _state_command(
    action: Literal["suspend", "reinstate"], credential_id: str, reason: str, json_out: bool
) -> None:
    with reported():
        svc = services()
        view = svc.credentials.change_state(
            credential_id, action, reason=reason, actor=actor(svc.settings), now=now()
        )
        if json_out:
            print_json(view.as_dict())
        else:
            console.print(f"credential {view.id} is now [bold]{view.state}[/]")


@app.command()
def revoke(
    credential_id: CredentialArg,
    reason: ReasonOpt,
    json_out: JsonOpt = False,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Revoke a credential for good.

    When IDSVC_APPROVAL_REQUIRED includes `revoke`, it waits for a second person's approval
    (then name the operator who asks: --operator)."""
    from idsvc.cli.operator_commands import acting, report_pending
    from idsvc.staff.maker_checker import Pending

    with reported():
        svc = services()
        by = acting(svc.staff, operator, otp, password_stdin)
        result = svc.credentials.revoke(credential_id, reason=reason, by=by, now=now())
        if isinstance(result, Pending):
            report_pending(result)
        elif json_out:
            print_json(result.as_dict())
        else:
            console.print(f"credential {result.id} is now [bold]{result.state}[/]")


@app.command()
def suspend(credential_id: CredentialArg, reason: ReasonOpt, json_out: JsonOpt = False) -> None:
    """Suspend a credential (it can be reinstated)."""
    _state_command("suspend", credential_id, reason, json_out)


@app.command()
def reinstate(credential_id: CredentialArg, reason: ReasonOpt, json_out: JsonOpt = False) -> None:
    """Reinstate a suspended credential."""
    _state_command("reinstate", credential_id, reason, json_out)


@app.command()
def credentials(employee_id: EmployeeArg, json_out: JsonOpt = False) -> None:
    """List a person's credentials, oldest first (--json adds when each was issued)."""
    from rich.table import Column, Table

    with reported():
        views = services().credentials.credentials_of(employee_id)
        if json_out:
            print_json([v.as_dict() for v in views])
            return
        # The id is what `revoke`/`suspend` take: it must be whole on an 80-column terminal,
        # so the table keeps to what fits beside it (rows are oldest first; --json has the rest).
        table = Table(
            Column("credential", no_wrap=True, min_width=36),
            Column("state", min_width=10, overflow="fold"),
            Column("serial", overflow="fold"),
            Column("expires", overflow="fold"),
            show_edge=False,
            pad_edge=False,
        )
        for v in views:
            # A phone credential says so; a card (the usual row) keeps the line short.
            state = v.state if v.kind == "card" else f"{v.state} (phone)"
            table.add_row(v.id, state, v.card_serial, f"{v.expires_at:%Y-%m-%d}")
        console.print(table, soft_wrap=False)  # fit the terminal: cells fold, lines do not


@keys_app.command("list")
def keys_list(issuer: IssuerOpt = DEFAULT_ISSUER) -> None:
    """List the issuer's keys (active and retired)."""
    from rich.table import Table

    with reported():
        table = Table("kid", "alg", "purpose", "backend", "created", "retired")
        for e in services().credentials.key_entries(issuer):
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
def keys_rotate(
    issuer: IssuerOpt = DEFAULT_ISSUER,
    operator: OperatorOpt = None,
    otp: OtpOpt = None,
    password_stdin: PasswordStdinOpt = False,
) -> None:
    """Make a new signing key active; old keys keep verifying what they signed.

    When IDSVC_APPROVAL_REQUIRED includes `key_rotation`, it waits for a second person's
    approval (then name the operator who asks: --operator)."""
    from idsvc.cli.operator_commands import acting, report_pending
    from idsvc.staff.maker_checker import Pending

    with reported():
        svc = services()
        by = acting(svc.staff, operator, otp, password_stdin)
        result = svc.credentials.rotate_key(issuer_slug=issuer, by=by, now=now())
        if isinstance(result, Pending):
            report_pending(result)
        else:
            old, new = result
            console.print(f"rotated: {old} retired (still published), {new} active")


@keys_app.command("jwks")
def keys_jwks(issuer: IssuerOpt = DEFAULT_ISSUER) -> None:
    """Print the issuer's published JWKS."""
    with reported():
        print_json(services().credentials.jwks(issuer), indent=2)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit chain; the first broken event is named."""
    with reported():
        check = services().audit.verify_chain()
        console.print(f"audit chain intact: {check.events} events, head {check.head_hash}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="listen port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes", min=1, max=64)] = 1,
) -> None:
    """Run the HTTP API (health, JWKS, status lists, verification).

    Limits: request headers within 10 s, body within 10 s, idle keep-alive 5 s,
    at most 512 concurrent connections per worker (idsvc/cli/server.py)."""
    from idsvc.cli.observability import log_format_for, prepare_metrics_dir
    from idsvc.cli.server import run_server

    with reported():
        svc = services()
        svc.operations.health()
        os.environ.setdefault("IDSVC_HOME", str(svc.settings.home))
        prepare_metrics_dir(svc.settings.home)  # before any worker imports prometheus_client
        run_server(host, port, workers, log_format_for(svc.settings.log_format, sys.stderr))
