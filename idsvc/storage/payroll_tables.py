"""Tables of the bank side: the change feed, the webhook outbox, account hashes, idempotency.

Schema changes go through migration 0005 (``idsvc/migrations/versions/0005_payroll.py``) and
0012 (webhook key rotation, the people each client checked).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.storage.tables import Base, UtcDateTime


class ChangeEventRow(Base):
    """One status change, at a commit-ordered ``position`` (see ``idsvc.bank.change_feed``)."""

    __tablename__ = "change_events"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(48))
    employee_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    effective_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    credential_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    card_serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ChangeFeedHeadRow(Base):
    """The last position handed out; locked while a transaction appends events."""

    __tablename__ = "change_feed_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)


class WebhookSubscriptionRow(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    scheme: Mapped[str] = mapped_column(String(8))  # v1a (Ed25519) or v1 (HMAC-SHA256)
    # v1 only: the HMAC secret, AES-256-GCM under a key derived from the server secret.
    secret_box: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Migration 0012. v1a after a rotation: the subscription's own Ed25519 seed, sealed (None:
    # the deployment's key). The key replaced by the last rotation, sealed, signs too until
    # previous_until.
    signing_box: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    previous_box: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    previous_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class WebhookDeliveryRow(Base):
    """The outbox: one row per (subscription, event), written with the change itself."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("webhook_subscriptions.id"), index=True)
    event_position: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(255), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ClientPersonRow(Base):
    """Which people a client checked in a payroll batch: the scope of its change feed and
    webhooks (``idsvc.bank.change_feed``). Migration 0012."""

    __tablename__ = "client_people"
    # The key is the only index (lookups give the client too) and, on SQLite, the table itself:
    # a first payroll check inserts 10,000 rows per batch, one B-tree instead of three.
    __table_args__ = ({"sqlite_with_rowid": False},)

    client_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PayrollAccountRow(Base):
    """Which employees a bank account was seen with; the account only as a keyed hash."""

    __tablename__ = "payroll_accounts"

    account_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The bank that sent it (migration 0014; None before): a person's accounts at one bank, in
    # the order it first paid into them, tell when a salary moved (ACCOUNT_CHANGED).
    client_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    __table_args__ = (Index("ix_payroll_accounts_client_employee", "client_id", "employee_id"),)


class IdempotencyRecordRow(Base):
    """The first answer to a request with an ``Idempotency-Key``, per client."""

    __tablename__ = "idempotency_records"

    client_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


__all__ = [
    "ChangeEventRow",
    "ChangeFeedHeadRow",
    "ClientPersonRow",
    "IdempotencyRecordRow",
    "PayrollAccountRow",
    "WebhookDeliveryRow",
    "WebhookSubscriptionRow",
]
