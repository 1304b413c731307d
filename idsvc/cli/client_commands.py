"""API client commands: ``idsvc clients add|list|disable|enable|rotate-secret|cert``, and the
who-checked log: ``idsvc audit who-checked EMPLOYEE_ID``, ``idsvc audit purge-checks``.

A new secret is printed once, on stdout alone (so ``SECRET=$(idsvc clients add ...)`` works);
everything else goes to stderr. It cannot be shown again: lost secrets are rotated.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from idsvc import SCOPES
from idsvc.cli.errors import reported
from idsvc.errors import ApiClientError

if TYPE_CHECKING:  # imported where used: `idsvc` start-up must not load what it does not use
    from idsvc.clients.api_clients import ApiClients, ApiClientView
    from idsvc.service import IdService

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
clients_app = typer.Typer(
    help="API clients (banks, HR systems, verifier apps).", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
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


def _now() -> datetime:
    return datetime.now(UTC)


def _service() -> IdService:
    from idsvc.config import load_settings
    from idsvc.service import IdService

    return IdService.from_settings(load_settings())


def _clients() -> tuple[ApiClients, str]:
    from idsvc.clients.api_clients import ApiClients

    service = _service()
    return ApiClients(service.db), service.settings.operator


def _show_secret(view: ApiClientView, secret: str, json_out: bool, what: str) -> None:
    if json_out:
        print(json.dumps({**view.as_dict(), "secret": secret}))
        return
    err.print(
        f"{what} client {escape(view.name)} ({view.id}), scopes: {' '.join(sorted(view.scopes))}."
        "\nIts secret follows; it is shown only this once (send it as "
        "Authorization: Bearer <secret>):"
    )
    print(secret)


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
        view, secret = clients.add(name, scope, _now(), actor=operator, cert_sha256=cert_sha256)
        _show_secret(view, secret, json_out, "Created")


def list_clients(json_out: JsonOpt = False) -> None:
    """List API clients (never their secrets)."""
    with reported():
        clients, _ = _clients()
        views = clients.list()
        if json_out:
            print(json.dumps([v.as_dict() for v in views]))
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


def disable(name: str) -> None:
    """Refuse the client from its next request on (every worker)."""
    with reported():
        clients, operator = _clients()
        clients.disable(name, _now(), actor=operator)
        err.print(f"client {escape(name)} disabled")


def enable(name: str) -> None:
    """Let a disabled client in again."""
    with reported():
        clients, operator = _clients()
        clients.enable(name, _now(), actor=operator)
        err.print(f"client {escape(name)} enabled")


def rotate_secret(name: str, json_out: JsonOpt = False) -> None:
    """Give the client a new secret; the old one is refused from the next request on."""
    with reported():
        clients, operator = _clients()
        view, secret = clients.rotate_secret(name, _now(), actor=operator)
        _show_secret(view, secret, json_out, "New secret for")


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
        view = clients.set_certificate(name, cert_sha256, _now(), actor=operator)
        if json_out:
            print(json.dumps(view.as_dict()))
        elif view.cert_sha256:
            err.print(f"client {escape(name)} bound to certificate SHA-256 {view.cert_sha256}")
        else:
            err.print(f"client {escape(name)} has no certificate: its secret alone authenticates")


def who_checked(
    employee_id: str,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="newest N checks")] = 100,
    json_out: JsonOpt = False,
) -> None:
    """Who verified or payroll-checked this person, newest first."""
    with reported():
        from idsvc.audit.who_checked import CheckLog

        checks = CheckLog(_service().db).of_holder(employee_id, limit=limit)
        if json_out:
            print(json.dumps([c.as_dict() for c in checks], ensure_ascii=False))
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
        err.print(f"{len(checks)} check(s)")


def purge_checks() -> None:
    """Delete checks older than IDSVC_CHECK_RETENTION_DAYS."""
    with reported():
        service = _service()
        days = service.settings.check_retention_days
        from idsvc.audit.who_checked import CheckLog

        removed = CheckLog(service.db).purge(now=_now(), retention_days=days)
        err.print(f"{removed} check(s) older than {days} days deleted")


def register(app: typer.Typer) -> None:
    clients_app.command("add")(add)
    clients_app.command("list")(list_clients)
    clients_app.command("disable")(disable)
    clients_app.command("enable")(enable)
    clients_app.command("rotate-secret")(rotate_secret)
    clients_app.command("cert")(certificate)
    app.add_typer(clients_app, name="clients")
    from idsvc.cli.main import audit_app  # defined before main registers this module

    audit_app.command("who-checked")(who_checked)
    audit_app.command("purge-checks")(purge_checks)
