"""Tables of the API's callers: API clients, the check log, card challenges, rate-limit windows.

Schema changes go through migrations 0004 (``idsvc/migrations/versions/0004_api_clients.py``)
and 0009 (the fingerprint of a client's TLS certificate).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.storage.tables import Base, UtcDateTime


class ApiClientRow(Base):
    __tablename__ = "api_clients"
    __table_args__ = (Index("ix_api_clients_cert_sha256", "cert_sha256", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    scopes: Mapped[str] = mapped_column(String(255))  # space-separated, sorted
    # SHA-256 of the secret, hex; the secret itself is never stored (see idsvc.clients.api_clients).
    secret_hash: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the DER of the client's TLS certificate (mutual TLS at the proxy), lowercase
    # hex; None: the client authenticates with its secret alone. Migration 0009.
    cert_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    secret_rotated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CheckRow(Base):
    """Who checked whom: one row per verification or payroll check. Never the token."""

    __tablename__ = "holder_checks"
    __table_args__ = (Index("ix_holder_checks_employee_at", "employee_id", "checked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # verification, card, payroll
    employee_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    credential_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    client_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    client_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    result: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[str] = mapped_column(String(255))  # space-separated reason codes


class CardChallengeRow(Base):
    __tablename__ = "card_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))  # hex
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class RateWindowRow(Base):
    """Fixed-window request counters, shared by every worker (one upsert per request)."""

    __tablename__ = "rate_windows"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    window: Mapped[int] = mapped_column(Integer, primary_key=True)  # start, epoch s
    count: Mapped[int] = mapped_column(Integer)
