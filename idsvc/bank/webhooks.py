"""Webhook subscriptions of API clients (banks), and Standard Webhooks 1.0 signatures.

A subscription sends the change feed's events (``idsvc.bank.change_feed.EVENT_TYPES``, patterns such
as ``employee.*`` allowed) to one URL. Deliveries are signed as Standard Webhooks 1.0 says:
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` over ``id.timestamp.body``.

- ``v1a`` (default): Ed25519. The receiver needs only the public key, which is no secret
  (``idsvc webhooks public-key``, ``GET /v1/webhooks/public-key``); one key signs for the whole
  deployment and is derived from the server secret (``idsvc.bank.server_secret``).
- ``v1``: HMAC-SHA256 with a per-subscription secret (``whsec_…``), for banks whose tooling only
  knows that scheme. It is printed once by ``add``. It must stay usable for signing, so it is
  stored encrypted (AES-256-GCM under a key derived from the server secret, bound to the
  subscription id), never in clear and never hashed.

Targets (``check_url`` at ``add``, ``target_refusal`` again at every delivery on the resolved
addresses): ``https`` to a public address. A URL must be plain ASCII without spaces or control
characters (one that ``add`` accepted and the HTTP client refused used to crash every deliver
pass). Loopback and private addresses (RFC 1918, ULA, CGNAT) are refused unless the deployment
sets ``IDSVC_WEBHOOK_PRIVATE_TARGETS`` (an on-premises bank); plain ``http`` is then accepted
for a loopback receiver only. Link-local (cloud metadata at 169.254.169.254), unspecified,
multicast and reserved addresses are refused always: no bank receives there, and a webhook
must not become a way to reach the ministry's own network.

Rotation (``rotate_secret``): a new HMAC secret (``v1``) or a new Ed25519 key of the
subscription's own (``v1a``) replaces the current one; for ``overlap`` the previous one signs
too (``webhook-signature`` then holds two space-separated entries, as Standard Webhooks allows),
so the bank can switch its verifier at any time in that window.

Errors: ``WebhookError`` (exit 22) → ``InvalidWebhook`` (bad URL, events, client, scope or
overlap), ``UnknownWebhook``.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idsvc.audit import chain as audit
from idsvc.bank.change_feed import check_patterns
from idsvc.bank.server_secret import ServerKeys
from idsvc.errors import ChangeFeedError, InvalidWebhook, UnknownWebhook
from idsvc.storage.client_tables import ApiClientRow
from idsvc.storage.db import Database
from idsvc.storage.payroll_tables import WebhookDeliveryRow, WebhookSubscriptionRow

SCHEMES = ("v1a", "v1")
REQUIRED_SCOPE = "payroll"
HMAC_PREFIX = "whsec_"
MAX_URL: Final = 2048
MAX_OVERLAP: Final = timedelta(days=7)


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign_v1a(key: Ed25519PrivateKey, msg_id: str, timestamp: int, body: bytes) -> str:
    signature = key.sign(signed_content(msg_id, timestamp, body))
    return "v1a," + base64.b64encode(signature).decode()


def sign_v1(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, signed_content(msg_id, timestamp, body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def target_refusal(address: IpAddress, *, private_targets: bool) -> str | None:
    """Why a receiver at ``address`` is refused, or None. One rule for ``add`` (an address in
    the URL) and for every delivery (each address the host name resolves to)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_unspecified or address.is_multicast or address.is_link_local:
        return f"{address} is an unspecified, multicast or link-local address"
    if address.is_loopback or not address.is_global:
        if private_targets:
            return None
        return (
            f"{address} is a loopback or private address (allowed only with "
            "IDSVC_WEBHOOK_PRIVATE_TARGETS, for an on-premises bank)"
        )
    if address.is_reserved:
        return f"{address} is a reserved address"
    return None


def _loopback_host(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_url(url: str, *, private_targets: bool) -> str:
    """The webhook URL as stored, or ``InvalidWebhook``. Host names are checked again, on the
    addresses they resolve to, at every delivery (``target_refusal``)."""
    if len(url) > MAX_URL:
        raise InvalidWebhook(f"the webhook URL is longer than {MAX_URL} characters")
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidWebhook(
            "the webhook URL must be ASCII without spaces or control characters "
            "(percent-encode them; an international host name in its xn-- form)"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidWebhook("the webhook URL must be https://HOST/…")
    if parts.username or parts.password:
        raise InvalidWebhook("put no credentials in the webhook URL")
    try:
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        port = 0
    if port == 0:
        raise InvalidWebhook("the webhook URL's port is not a number from 1 to 65535")
    host = parts.hostname
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = ipaddress.ip_address("127.0.0.1") if host == "localhost" else None
    refusal = None if literal is None else target_refusal(literal, private_targets=private_targets)
    if refusal:
        raise InvalidWebhook(f"webhook receiver refused: {refusal}")
    if parts.scheme == "http" and not (private_targets and _loopback_host(host)):
        raise InvalidWebhook("plain http is only allowed for a loopback receiver: use https")
    return url


def _raw_seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _box_context(subscription_id: str, purpose: str) -> bytes:
    # The v1 secret's box predates rotation and is bound to the id alone.
    return subscription_id.encode() + (b"/" + purpose.encode() if purpose else b"")


@dataclass(frozen=True)
class Signer:
    """What signs one subscription's deliveries: its current secret or Ed25519 seed, then the
    previous one while a rotation's overlap lasts."""

    scheme: str
    secrets: tuple[bytes, ...]

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        if self.scheme == "v1":
            return " ".join(sign_v1(s, msg_id, timestamp, body) for s in self.secrets)
        return " ".join(
            sign_v1a(Ed25519PrivateKey.from_private_bytes(s), msg_id, timestamp, body)
            for s in self.secrets
        )


def signer_of(keys: ServerKeys, row: WebhookSubscriptionRow, now: datetime) -> Signer:
    """The subscription's signer at ``now`` (``ServerSecretError`` if a box does not open)."""
    if row.scheme == "v1" and row.secret_box is not None:
        current = keys.open(row.secret_box, _box_context(row.id, ""))
        scheme = "v1"
    elif row.signing_box is not None:
        current, scheme = keys.open(row.signing_box, _box_context(row.id, "signing")), "v1a"
    else:
        current, scheme = _raw_seed(keys.webhook_signing_key), "v1a"
    found = [current]
    if row.previous_box is not None and row.previous_until and now < row.previous_until:
        found.append(keys.open(row.previous_box, _box_context(row.id, "previous")))
    return Signer(scheme, tuple(found))


@dataclass(frozen=True)
class WebhookView:
    id: str
    client_name: str
    url: str
    events: tuple[str, ...]
    scheme: str
    enabled: bool
    created_at: datetime
    public_key: str | None = None  # v1a: the key that verifies its signatures
    previous_until: datetime | None = None  # the previous key also signs until then
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
            "public_key": self.public_key,
            "previous_until": self.previous_until.isoformat() if self.previous_until else None,
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
    """Use cases on subscriptions; each method is one transaction. ``private_targets``:
    ``IDSVC_WEBHOOK_PRIVATE_TARGETS`` (see the module's docstring)."""

    def __init__(self, db: Database, keys: ServerKeys, *, private_targets: bool = False) -> None:
        self._db = db
        self._keys = keys
        self._private_targets = private_targets

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
        url = check_url(url, private_targets=self._private_targets)
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
                    self._keys.seal(raw_secret, _box_context(subscription_id, ""))
                    if raw_secret
                    else None
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
            view = self._view(row, client_name)
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
            return self._view(row, _client_name(session, row.client_id))

    def rotate_secret(
        self, subscription_id: str, *, overlap: timedelta, now: datetime, actor: str
    ) -> NewWebhook:
        """A new HMAC secret (v1) or Ed25519 key (v1a) for the subscription; the current one
        keeps signing alongside it for ``overlap`` (0: stops at once). The new HMAC secret is
        returned once, as by ``add``; a v1a subscription's new public key is in the view."""
        if not timedelta(0) <= overlap <= MAX_OVERLAP:
            raise InvalidWebhook(f"the overlap is 0 to {MAX_OVERLAP.days * 24} hours")
        fresh = secrets.token_bytes(32)
        with self._db.transaction() as session:
            row = session.get(WebhookSubscriptionRow, subscription_id)
            if row is None:
                raise UnknownWebhook(subscription_id)
            previous = signer_of(self._keys, row, now).secrets[0]
            if row.scheme == "v1":
                row.secret_box = self._keys.seal(fresh, _box_context(row.id, ""))
            else:
                row.signing_box = self._keys.seal(fresh, _box_context(row.id, "signing"))
            if overlap:
                row.previous_box = self._keys.seal(previous, _box_context(row.id, "previous"))
                row.previous_until = now + overlap
            else:
                row.previous_box, row.previous_until = None, None
            audit.record(
                session,
                at=now,
                actor=actor,
                action="webhook.rotate-secret",
                target_type="webhook",
                target_id=subscription_id,
                details={"scheme": row.scheme, "overlap_hours": overlap.total_seconds() / 3600},
            )
            view = self._view(row, _client_name(session, row.client_id))
        secret = HMAC_PREFIX + base64.b64encode(fresh).decode() if row.scheme == "v1" else None
        return NewWebhook(view, secret, view.public_key or self.public_key())

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
                    self._view(
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

    def _view(self, row: WebhookSubscriptionRow, client_name: str, **stats: Any) -> WebhookView:
        public_key = None
        if row.scheme == "v1a" and row.signing_box is None:
            public_key = self._keys.webhook_public_key()
        elif row.scheme == "v1a" and row.signing_box is not None:
            seed = self._keys.open(row.signing_box, _box_context(row.id, "signing"))
            # The subscription's own key, in the published form of the deployment's.
            own = replace(
                self._keys, webhook_signing_key=Ed25519PrivateKey.from_private_bytes(seed)
            )
            public_key = own.webhook_public_key()
        return WebhookView(
            row.id,
            client_name,
            row.url,
            tuple(row.events),
            row.scheme,
            row.enabled,
            row.created_at,
            public_key,
            row.previous_until,
            **stats,
        )


def _client_name(session: Session, client_id: str) -> str:
    name = session.execute(
        select(ApiClientRow.name).where(ApiClientRow.id == client_id)
    ).scalar_one_or_none()
    return name or client_id
