"""Tables of the remote-desk side of the centre: operators, their sessions, desks, the nonces
of desk requests, and pending approvals (maker-checker). Migrations: 0008, 0013."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.storage.tables import Base, UtcDateTime


class OperatorRow(Base):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    office: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_sealed: Mapped[str] = mapped_column(String(255))  # AES-GCM, see operator_secrets
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    failed_logins: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeskRow(Base):
    __tablename__ = "desks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    office: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean)
    enrol_code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enrol_code_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    public_jwk: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    key_thumbprint: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    enrolled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Migration 0013: failed logins sent from this desk (any operator name), and its lockout.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    login_locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OperatorSessionRow(Base):
    __tablename__ = "operator_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    desk_id: Mapped[int | None] = mapped_column(ForeignKey("desks.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class DeskNonceRow(Base):
    """Request ids (``jti``) a desk has used, kept while their timestamp is still acceptable."""

    __tablename__ = "desk_nonces"
    __table_args__ = (UniqueConstraint("desk_id", "jti", name="uq_desk_nonces_desk_jti"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    desk_id: Mapped[int] = mapped_column(ForeignKey("desks.id"))
    jti: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ApprovalRow(Base):
    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending/done/rejected/expired
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_desk: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_desk: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(255), nullable=True)
