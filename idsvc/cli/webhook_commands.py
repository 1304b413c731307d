"""``idsvc webhooks add|list|enable|disable|rotate-secret|public-key|deliver``: banks' webhook
subscriptions.

Exit codes: 22 for a refused subscription (bad or refused URL, unknown event type, unknown
client or one without the ``payroll`` scope, unknown subscription id, overlap out of range) or
an unusable server secret file; the rest as for every command (3 not initialised, 10 database
unavailable). ``deliver`` records a receiver's failure against its subscription and goes on.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from idsvc.bank.change_events import EVENT_TYPES
from idsvc.cli.app import app
from idsvc.cli.common import JsonOpt, command_settings, console, now, print_json
from idsvc.cli.errors import reported

if TYPE_CHECKING:  # imported where used: `idsvc` start-up must not load what it does not use
    from idsvc.bank.server_secret import ServerKeys
    from idsvc.bank.webhooks import Webhooks
    from idsvc.config import Settings
    from idsvc.storage.db import Database

webhooks_app = typer.Typer(
    help="Webhooks: change-feed events pushed to banks, signed (Standard Webhooks 1.0).",
    no_args_is_help=True,
)
app.add_typer(webhooks_app, name="webhooks")


def _open() -> tuple[Settings, Database, ServerKeys]:
    from idsvc.bank.server_secret import ServerKeys, load_server_secret
    from idsvc.storage.db import Database, require_current_schema

    settings = command_settings()
    db = Database(settings.resolved_database_url)
    require_current_schema(db.engine)
    keys = ServerKeys.from_secret(
        load_server_secret(settings.resolved_server_secret_file, create=True)
    )
    return settings, db, keys


def _webhooks(settings: Settings, db: Database, keys: ServerKeys) -> Webhooks:
    from idsvc.bank.webhooks import Webhooks

    return Webhooks(db, keys, private_targets=settings.webhook_private_targets)


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="https URL of the receiver")],
    client: Annotated[str, typer.Option("--client", help="API client (bank) it belongs to")],
    events: Annotated[
        list[str],
        typer.Option(
            "--events",
            help="event types or patterns, repeatable or comma-separated: "
            + ", ".join(sorted(EVENT_TYPES))
            + ", employee.*, credential.*, *",
        ),
    ],
    use_hmac: Annotated[
        bool,
        typer.Option("--hmac", help="sign with HMAC-SHA256 (v1) instead of Ed25519 (v1a)"),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Subscribe a bank's receiver; an HMAC secret is printed once."""
    with reported():
        settings, db, keys = _open()
        patterns = [p for value in events for p in value.split(",")]
        new = _webhooks(settings, db, keys).add(
            url,
            client_name=client,
            events=patterns,
            use_hmac=use_hmac,
            now=now(),
            actor=settings.operator,
        )
        db.dispose()
        if json_out:
            body = new.view.as_dict() | {"public_key": new.public_key}
            if new.hmac_secret:
                body["secret"] = new.hmac_secret
            print_json(body)
            return
        console.print(f"webhook [bold]{new.view.id}[/] → {escape(new.view.url)}")
        console.print(f"events: {', '.join(new.view.events)}; scheme {new.view.scheme}")
        if new.hmac_secret:
            console.print(f"secret (shown once, give it to the bank): {new.hmac_secret}")
        else:
            console.print(f"verify with the public key: {new.public_key}")


@webhooks_app.command("list")
def list_webhooks(json_out: JsonOpt = False) -> None:
    """Subscriptions and their delivery status (pending, delivered, failed, last error)."""
    with reported():
        settings, db, keys = _open()
        views = _webhooks(settings, db, keys).list()
        db.dispose()
        if json_out:
            print_json([v.as_dict() for v in views])
            return
        table = Table(
            "id",
            "client",
            "url",
            "events",
            "scheme",
            "on",
            "pending",
            "delivered",
            "failed",
            "last delivered",
            "last error",
        )
        for v in views:
            table.add_row(
                v.id,
                escape(v.client_name),
                escape(v.url),
                ", ".join(v.events),
                v.scheme,
                "yes" if v.enabled else "no",
                str(v.pending),
                str(v.delivered),
                str(v.failed),
                v.last_delivered_at.isoformat(timespec="seconds") if v.last_delivered_at else "",
                escape(v.last_error or ""),
            )
        console.print(table)


def _set_enabled(subscription_id: str, enabled: bool) -> None:
    with reported():
        settings, db, keys = _open()
        view = _webhooks(settings, db, keys).set_enabled(
            subscription_id, enabled, now=now(), actor=settings.operator
        )
        db.dispose()
        console.print(f"webhook {view.id} {'enabled' if view.enabled else 'disabled'}")


@webhooks_app.command("enable")
def enable(subscription_id: Annotated[str, typer.Argument(help="webhook id")]) -> None:
    """Start delivering to a subscription again (what was due is sent)."""
    _set_enabled(subscription_id, True)


@webhooks_app.command("disable")
def disable(subscription_id: Annotated[str, typer.Argument(help="webhook id")]) -> None:
    """Stop delivering and queueing events for a subscription."""
    _set_enabled(subscription_id, False)


@webhooks_app.command("rotate-secret")
def rotate_secret(
    subscription_id: Annotated[str, typer.Argument(help="webhook id")],
    overlap: Annotated[
        float,
        typer.Option(
            "--overlap",
            min=0,
            max=168,
            help="hours during which the old secret or key also signs (both signatures sent)",
        ),
    ] = 24.0,
    json_out: JsonOpt = False,
) -> None:
    """New HMAC secret (v1, printed once) or Ed25519 key (v1a) without re-subscribing."""
    with reported():
        settings, db, keys = _open()
        new = _webhooks(settings, db, keys).rotate_secret(
            subscription_id, overlap=timedelta(hours=overlap), now=now(), actor=settings.operator
        )
        db.dispose()
        if json_out:
            body = new.view.as_dict()
            if new.hmac_secret:
                body["secret"] = new.hmac_secret
            print_json(body)
            return
        until = new.view.previous_until
        console.print(
            f"webhook {new.view.id}: new {'secret' if new.hmac_secret else 'key'}; "
            + (f"the old one also signs until {until.isoformat(timespec='seconds')}" if until
               else "the old one no longer signs")
        )  # fmt: skip
        if new.hmac_secret:
            console.print(f"secret (shown once, give it to the bank): {new.hmac_secret}")
        else:
            console.print(f"verify with the public key: {new.view.public_key}")


@webhooks_app.command("public-key")
def public_key() -> None:
    """Print the Ed25519 public key (whpk_…) that verifies v1a signatures."""
    with reported():
        _, db, keys = _open()
        db.dispose()
        console.print(keys.webhook_public_key())


@webhooks_app.command("deliver")
def deliver(
    once: Annotated[bool, typer.Option("--once", help="one pass, then exit")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="seconds between idle passes")
    ] = 2.0,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.5,
            max=30,
            help="seconds a whole delivery may take (connect, TLS, send, answer's headers)",
        ),
    ] = 10.0,
) -> None:
    """Send due webhook deliveries (the outbox), with retries and back-off; runs until Ctrl-C.
    A slow receiver is served on its own and holds up no other."""
    with reported():
        settings, db, keys = _open()
        from idsvc.bank.webhook_delivery import (
            DeliveryLoop,
            DeliveryReport,
            WebhookDeliverer,
            http_post,
        )

        deliverer = WebhookDeliverer(
            db,
            keys,
            http_post(timeout, private_targets=settings.webhook_private_targets),
            max_attempts=settings.webhook_max_attempts,
            first_retry=timedelta(seconds=settings.webhook_first_retry),
            max_retry=timedelta(seconds=settings.webhook_max_retry),
        )

        def show(report: DeliveryReport) -> None:
            console.print(
                f"delivered {report.delivered}, retrying {report.retrying}, "
                f"failed {report.failed}, postponed {report.postponed}"
            )

        if once:
            try:
                show(deliverer.run_once(now()))
            finally:
                db.dispose()
            return
        loop = DeliveryLoop(deliverer)
        try:
            while True:
                report = loop.step(now())
                if report.delivered or report.retrying or report.failed:
                    show(report)
                time.sleep(interval if not loop.in_flight else min(interval, 0.2))
        except KeyboardInterrupt:
            return
        finally:
            loop.close()
            db.dispose()
