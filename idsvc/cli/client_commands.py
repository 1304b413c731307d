"""API client commands: ``idsvc clients add|list|disable|enable|rotate-secret|cert``, and the
who-checked log: ``idsvc audit who-checked EMPLOYEE_ID``, ``idsvc audit purge-checks``.

A new secret is printed once, on stdout alone (so ``SECRET=$(idsvc clients add ...)`` works);
everything else goes to stderr. It cannot be shown again: lost secrets are rotated.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from idsvc import SCOPES
from idsvc.cli.app import app, audit_app
from idsvc.cli.common import (
    EmployeeArg,
    JsonOpt,
    console,
    err_console,
    now,
    print_json,
    services,
)
from idsvc.cli.errors import reported
from idsvc.errors import ApiClientError

if TYPE_CHECKING:  # imported where used: `idsvc` start-up must not load what it does not use
    from idsvc.clients.api_clients import ApiClients, ApiClientView

clients_app = typer.Typer(
    help="API clients (banks, HR systems, verifier apps).", no_args_is_help=True
)
app.add_typer(clients_app, name="clients")

ScopeOpt = Annotated[
    list[str],
    typer.Option("--scope", help="scope to grant, repeatable: " + ", ".join(sorted(SCOPES))),
]
CertFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--cert",
        help="the client's TLS certificate (PEM or DER): bind the client to it (mutual TLS)",
        dir_okay=False,
    ),
]
FingerprintOpt = Annotated[
    str | None,
    typer.Option(
        "--cert-fingerprint",
        "--fingerprint",
        help="the SHA-256 fingerprint of the client's TLS certificate (64 hex, colons allowed)",
    ),
]


def _cert_sha256(cert: Path | None, fingerprint: str | None) -> str | None:
    if cert is not None and fingerprint is not None:
        raise ApiClientError("give --cert or --cert-fingerprint, not both")
    if cert is None:
        return fingerprint
    try:
        data = cert.read_bytes()
    except OSError as exc:
        raise ApiClientError(f"cannot read {cert}: {exc.strerror}") from None
    from idsvc.clients.api_clients import fingerprint_of_certificate

    return fingerprint_of_certificate(data)


def _clients() -> tuple[ApiClients, str]:
    from idsvc.clients.api_clients import ApiClients

    svc = services()
    return ApiClients(svc.infra.db), svc.settings.operator


def _show_secret(view: ApiClientView, secret: str, json_out: bool, what: str) -> None:
    if json_out:
        print_json({**view.as_dict(), "secret": secret})
        return
    err_console.print(
        f"{what} client {escape(view.name)} ({view.id}), scopes: {' '.join(sorted(view.scopes))}."
        "\nIts secret follows; it is shown only this once (send it as "
        "Authorization: Bearer <secret>):"
    )
    print(secret)


@clients_app.command("add")
def add(
    name: str,
    scope: ScopeOpt,
    cert: CertFileOpt = None,
    cert_fingerprint: FingerprintOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an API client and print its secret once.

    With --cert it is bound to that certificate: it must come through the mutual-TLS proxy."""
    with reported():
        cert_sha256 = _cert_sha256(cert, cert_fingerprint)
        clients, operator = _clients()
        view, secret = clients.add(name, scope, now(), actor=operator, cert_sha256=cert_sha256)
        _show_secret(view, secret, json_out, "Created")


@clients_app.command("list")
def list_clients(json_out: JsonOpt = False) -> None:
    """List API clients (never their secrets)."""
    with reported():
        clients = _clients()[0]
        views = clients.list()
        if json_out:
            print_json([v.as_dict() for v in views])
            return
        table = Table("name", "id", "scopes", "enabled", "secret since", "certificate")
        for v in views:
            table.add_row(
                escape(v.name),
                v.id,
                " ".join(sorted(v.scopes)),
                "yes" if v.enabled else "NO",
                v.secret_rotated_at.isoformat(timespec="seconds"),
                v.cert_sha256[:16] + "…" if v.cert_sha256 else "",
            )
        console.print(table)


@clients_app.command("disable")
def disable(name: str) -> None:
    """Refuse the client from its next request on (every worker)."""
    with reported():
        clients, operator = _clients()
        clients.disable(name, now(), actor=operator)
        err_console.print(f"client {escape(name)} disabled")


@clients_app.command("enable")
def enable(name: str) -> None:
    """Let a disabled client in again."""
    with reported():
        clients, operator = _clients()
        clients.enable(name, now(), actor=operator)
        err_console.print(f"client {escape(name)} enabled")


@clients_app.command("rotate-secret")
def rotate_secret(name: str, json_out: JsonOpt = False) -> None:
    """Give the client a new secret; the old one is refused from the next request on."""
    with reported():
        clients, operator = _clients()
        view, secret = clients.rotate_secret(name, now(), actor=operator)
        _show_secret(view, secret, json_out, "New secret for")


@clients_app.command("cert")
def certificate(
    name: str,
    cert: CertFileOpt = None,
    cert_fingerprint: FingerprintOpt = None,
    clear: Annotated[bool, typer.Option("--clear", help="unbind the certificate")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Bind the client to its TLS certificate (mutual TLS at the proxy), or --clear it."""
    with reported():
        cert_sha256 = _cert_sha256(cert, cert_fingerprint)
        if clear == (cert_sha256 is not None):
            raise ApiClientError("give --cert or --cert-fingerprint, or --clear")
        clients, operator = _clients()
        view = clients.set_certificate(name, cert_sha256, now(), actor=operator)
        if json_out:
            print_json(view.as_dict())
        elif view.cert_sha256:
            err_console.print(
                f"client {escape(name)} bound to certificate SHA-256 {view.cert_sha256}"
            )
        else:
            err_console.print(
                f"client {escape(name)} has no certificate: its secret alone authenticates"
            )


@audit_app.command("who-checked")
def who_checked(
    employee_id: EmployeeArg,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="newest N checks")] = 100,
    json_out: JsonOpt = False,
) -> None:
    """Who verified or payroll-checked this person, newest first."""
    with reported():
        from idsvc.audit.who_checked import CheckLog

        checks = CheckLog(services().infra.db).of_holder(employee_id, limit=limit)
        if json_out:
            print_json([c.as_dict() for c in checks])
            return
        table = Table("when", "kind", "by", "result", "reasons", "credential")
        for c in checks:
            by = c.client_name or f"anonymous {c.address or '?'}"
            table.add_row(
                c.checked_at.isoformat(timespec="seconds"),
                c.kind,
                escape(by),
                c.result,
                " ".join(c.reasons),
                c.credential_id or "",
            )
        console.print(table)
        err_console.print(f"{len(checks)} check(s)")


@audit_app.command("purge-checks")
def purge_checks() -> None:
    """Delete checks older than IDSVC_CHECK_RETENTION_DAYS."""
    with reported():
        svc = services()
        days = svc.settings.check_retention_days
        from idsvc.audit.who_checked import CheckLog

        removed = CheckLog(svc.infra.db).purge(now=now(), retention_days=days)
        err_console.print(f"{removed} check(s) older than {days} days deleted")
