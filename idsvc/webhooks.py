"""Webhook subscriptions of API clients (banks), and Standard Webhooks 1.0 signatures.

A subscription sends the change feed's events (``idsvc.change_feed.EVENT_TYPES``, patterns such
as ``employee.*`` allowed) to one URL. Deliveries are signed as Standard Webhooks 1.0 says:
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` over ``id.timestamp.body``.

- ``v1a`` (default): Ed25519. The receiver needs only the public key, which is no secret
  (``idsvc webhooks public-key``, ``GET /v1/webhooks/public-key``); one key signs for the whole
  deployment and is derived from the server secret (``idsvc.server_secret``).
- ``v1``: HMAC-SHA256 with a per-subscription secret (``whsec_…``), for banks whose tooling only
  knows that scheme. It is printed once by ``add``. It must stay usable for signing, so it is
  stored encrypted (AES-256-GCM under a key derived from the server secret, bound to the
  subscription id), never in clear and never hashed.

URLs must be ``https``; plain ``http`` is accepted only for loopback receivers (local tests and
a receiver on the same host).

Errors: ``WebhookError`` (exit 22) → ``InvalidWebhook`` (bad URL, events, client or scope),
``UnknownWebhook``.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idsvc import audit
from idsvc.change_feed import check_patterns
from idsvc.errors import ChangeFeedError, InvalidWebhook, UnknownWebhook
from idsvc.server_secret import ServerKeys
from idsvc.storage.client_tables import ApiClientRow
from idsvc.storage.db import Database
from idsvc.storage.payroll_tables import WebhookDeliveryRow, WebhookSubscriptionRow

SCHEMES = ("v1a", "v1")
REQUIRED_SCOPE = "payroll"
HMAC_PREFIX = "whsec_"


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign_v1a(key: Ed25519PrivateKey, msg_id: str, timestamp: int, body: bytes) -> str:
    signature = key.sign(signed_content(msg_id, timestamp, body))
    return "v1a," + base64.b64encode(signature).decode()


def sign_v1(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, signed_content(msg_id, timestamp, body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidWebhook("the webhook URL must be https://HOST/…")
    if parts.username or parts.password:
        raise InvalidWebhook("put no credentials in the webhook URL")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise InvalidWebhook("plain http is only allowed for a loopback receiver: use https")
    if len(url) > 2048:
        raise InvalidWebhook("the webhook URL is longer than 2048 characters")
    return url.strip()


@dataclass(frozen=True)
class WebhookView:
    id: str
    client_name: str
    url: str
    events: tuple[str, ...]
    scheme: str
    enabled: bool
    created_at: datetime
    pending: int = 0
    delivered: int = 0
    failed: int = 0
    last_delivered_at: datetime | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client": self.client_name,
            "url": self.url,
            "events": list(self.events),
            "scheme": self.scheme,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "pending": self.pending,
            "delivered": self.delivered,
            "failed": self.failed,
            "last_delivered_at": (
                self.last_delivered_at.isoformat() if self.last_delivered_at else None
            ),
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class NewWebhook:
    view: WebhookView
    hmac_secret: str | None  # v1 only, shown once
    public_key: str  # v1a key of the deployment (receivers of v1 may ignore it)


class Webhooks:
    """Use cases on subscriptions; each method is one transaction."""

    def __init__(self, db: Database, keys: ServerKeys) -> None:
        self._db = db
        self._keys = keys

    def public_key(self) -> str:
        return self._keys.webhook_public_key()

    def add(
        self,
        url: str,
        *,
        client_name: str,
        events: Iterable[str],
        use_hmac: bool,
        now: datetime,
        actor: str,
    ) -> NewWebhook:
        url = check_url(url)
        try:
            patterns = check_patterns(events)
        except ChangeFeedError as exc:
            raise InvalidWebhook(str(exc)) from exc
        subscription_id = secrets.token_hex(8)
        scheme = "v1" if use_hmac else "v1a"
        raw_secret = secrets.token_bytes(32) if use_hmac else None
        with self._db.transaction() as session:
            client = session.execute(
                select(ApiClientRow).where(ApiClientRow.name == client_name)
            ).scalar_one_or_none()
            if client is None:
                raise InvalidWebhook(f"no API client {client_name!r} (see `idsvc clients add`)")
            if REQUIRED_SCOPE not in client.scopes.split():
                raise InvalidWebhook(
                    f"client {client_name!r} lacks the scope {REQUIRED_SCOPE!r} that the "
                    "change feed needs"
                )
            row = WebhookSubscriptionRow(
                id=subscription_id,
                client_id=client.id,
                url=url,
                events=patterns,
                scheme=scheme,
                secret_box=(
                    self._keys.seal(raw_secret, subscription_id.encode()) if raw_secret else None
                ),
                enabled=True,
                created_at=now,
            )
            session.add(row)
            session.flush()
            audit.record(
                session,
                at=now,
                actor=actor,
                action="webhook.add",
                target_type="webhook",
                target_id=subscription_id,
                details={"client": client_name, "events": patterns, "scheme": scheme},
            )
            view = _view(row, client_name)
        secret = HMAC_PREFIX + base64.b64encode(raw_secret).decode() if raw_secret else None
        return NewWebhook(view, secret, self.public_key())

    def set_enabled(
        self, subscription_id: str, enabled: bool, *, now: datetime, actor: str
    ) -> WebhookView:
        with self._db.transaction() as session:
            row = session.get(WebhookSubscriptionRow, subscription_id)
            if row is None:
                raise UnknownWebhook(subscription_id)
            row.enabled = enabled
            audit.record(
                session,
                at=now,
                actor=actor,
                action="webhook.enable" if enabled else "webhook.disable",
                target_type="webhook",
                target_id=subscription_id,
            )
            return _view(row, _client_name(session, row.client_id))

    def list(self) -> builtins.list[WebhookView]:
        with self._db.transaction() as session:
            counts: dict[tuple[str, str], int] = {
                (sub, state): n
                for sub, state, n in session.execute(
                    select(
                        WebhookDeliveryRow.subscription_id,
                        WebhookDeliveryRow.state,
                        func.count(),
                    ).group_by(WebhookDeliveryRow.subscription_id, WebhookDeliveryRow.state)
                )
            }
            views = []
            rows = session.execute(
                select(WebhookSubscriptionRow, ApiClientRow.name)
                .join(ApiClientRow, ApiClientRow.id == WebhookSubscriptionRow.client_id)
                .order_by(WebhookSubscriptionRow.created_at, WebhookSubscriptionRow.id)
            )
            for row, name in rows:
                last = session.execute(
                    select(func.max(WebhookDeliveryRow.delivered_at)).where(
                        WebhookDeliveryRow.subscription_id == row.id
                    )
                ).scalar_one()
                error = session.execute(
                    select(WebhookDeliveryRow.last_error)
                    .where(
                        WebhookDeliveryRow.subscription_id == row.id,
                        WebhookDeliveryRow.state != "delivered",
                        WebhookDeliveryRow.last_error.is_not(None),
                    )
                    .order_by(WebhookDeliveryRow.id.desc())
                    .limit(1)
                ).scalar_one_or_none()
                views.append(
                    _view(
                        row,
                        name,
                        pending=counts.get((row.id, "pending"), 0),
                        delivered=counts.get((row.id, "delivered"), 0),
                        failed=counts.get((row.id, "failed"), 0),
                        last_delivered_at=last,
                        last_error=error,
                    )
                )
            return views


def _client_name(session: Session, client_id: str) -> str:
    name = session.execute(
        select(ApiClientRow.name).where(ApiClientRow.id == client_id)
    ).scalar_one_or_none()
    return name or client_id


def _view(row: WebhookSubscriptionRow, client_name: str, **stats: Any) -> WebhookView:
    return WebhookView(
        row.id,
        client_name,
        row.url,
        tuple(row.events),
        row.scheme,
        row.enabled,
        row.created_at,
        **stats,
    )
