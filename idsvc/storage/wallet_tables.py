"""The civil servant's phone (schema: 0015): credential offers, nonces, presentation requests,
the holder's own sessions and their correction requests (docs/wallet.md).

Every secret a caller holds (a pre-authorized code, a transaction code, an access token, a
nonce, a session token) is stored only as its SHA-256: each is random and at least 128 bits
except the transaction code, which is hashed with the offer id and protected by the attempt
limit and the offer's short life.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.storage.tables import Base, UtcDateTime


class WalletOfferRow(Base):
    """An OpenID4VCI credential offer with the pre-authorized code grant: offered → redeemed
    (an access token was given) → issued; or burned (too many wrong transaction codes)."""

    __tablename__ = "wallet_offers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("civil_servants.employee_id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tx_code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    state: Mapped[str] = mapped_column(String(16))
    access_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    credential_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class WalletNonceRow(Base):
    """A nonce the service handed out (``vci``: a credential request's key proof; ``holder``:
    the holder page's proof of possession), used at most once."""

    __tablename__ = "wallet_nonces"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class PresentationRequestRow(Base):
    """An official's OpenID4VP request: pending → answered (the result says valid or not) or
    failed (an answer that could not be read at all)."""

    __tablename__ = "presentation_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    state_token: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(128), index=True)
    # Only the page that asked reads the answer: it holds the poll token, the wallet never
    # sees it (the request's id is in the QR, readable over the official's shoulder).
    poll_token_hash: Mapped[str] = mapped_column(String(64))
    # The claims asked for: {"required": [...], "optional": [...]} (the holder may leave out
    # the optional ones; idsvc.wallet.presentations.AskedClaims).
    claims: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class HolderSessionRow(Base):
    """A few minutes of the holder's own page, opened by a proof of possession of the phone
    credential's key."""

    __tablename__ = "holder_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("civil_servants.employee_id"))
    credential_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class CorrectionRequestRow(Base):
    """A holder's report of an error in their record: it changes nothing by itself; a
    registrar accepts (and corrects the record through HR) or rejects it with an answer."""

    __tablename__ = "correction_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("civil_servants.employee_id"), index=True)
    credential_id: Mapped[str] = mapped_column(String(36))
    field: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
