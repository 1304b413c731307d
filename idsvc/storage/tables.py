"""SQLAlchemy tables. Schemas seen by callers live elsewhere; these are storage only.

Every schema change goes through an Alembic revision in ``idsvc/migrations``; production code
never calls ``create_all``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone): naive values are refused."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database layer")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class IssuerRow(Base):
    __tablename__ = "issuers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    iss: Mapped[str] = mapped_column(String(255), unique=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CivilServantRow(Base):
    __tablename__ = "civil_servants"

    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_local: Mapped[str] = mapped_column(String(255))
    name_latin: Mapped[str] = mapped_column(String(255))
    sex: Mapped[str] = mapped_column(String(1))
    date_of_birth: Mapped[date] = mapped_column(Date)
    ministry: Mapped[str] = mapped_column(String(255))
    unit: Mapped[str] = mapped_column(String(255))
    position: Mapped[str] = mapped_column(String(255))
    grade: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    status_date: Mapped[date] = mapped_column(Date)
    hire_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # Migration 0012. The office operators must belong to (None: national operators only),
    # and the ministry and position in the national script for the card face.
    office: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ministry_local: Mapped[str | None] = mapped_column(String(255), nullable=True)
    position_local: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Migration 0014 (payroll controls). The last day of a contract (the contract categories;
    # None where HR has not said), and the national ID number, kept only to find one person
    # recorded twice: personal data, never printed, answered or logged.
    contract_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    national_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # The Latin name as compared for duplicates (idsvc.formats.text_rules.name_key); with the
    # date of birth and sex, the second way one person recorded twice is found.
    name_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


Index(
    "ix_civil_servants_identity",
    CivilServantRow.name_key,
    CivilServantRow.date_of_birth,
    CivilServantRow.sex,
)


class StatusHistoryRow(Base):
    __tablename__ = "status_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("civil_servants.employee_id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    status_date: Mapped[date] = mapped_column(Date)
    # Indexed since 0014: the monthly controls report reads one period of changes.
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    source: Mapped[str] = mapped_column(String(128))


class StatusListRow(Base):
    __tablename__ = "status_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"), index=True)
    uri: Mapped[str] = mapped_column(String(512), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Raised by every commit that changes a credential's state in this list (migration 0010,
    # idsvc.credentials.status_versions): a process re-signs its cached token only when this moved.
    version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


LIVE_STATES = ("live", "suspended")


class CredentialRow(Base):
    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint("status_list_id", "status_idx", name="uq_credentials_status_slot"),
        # One live credential per person and kind (a card, a phone): a second live row is a
        # bug the database refuses. Migration 0015 added the kind.
        Index(
            "uq_credentials_one_live",
            "employee_id",
            "kind",
            unique=True,
            sqlite_where=text("state IN ('live', 'suspended')"),
            postgresql_where=text("state IN ('live', 'suspended')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the JWT `jti`
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"), index=True)
    employee_id: Mapped[str] = mapped_column(ForeignKey("civil_servants.employee_id"), index=True)
    kid: Mapped[str] = mapped_column(String(64))
    # "card" (the chip and the printed QR) or "phone" (an SD-JWT VC in the holder's wallet,
    # migration 0015): each kind has its own live credential.
    kind: Mapped[str] = mapped_column(String(8), default="card", server_default=text("'card'"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    status_list_id: Mapped[int] = mapped_column(ForeignKey("status_lists.id"))
    status_idx: Mapped[int] = mapped_column(Integer)
    card_serial: Mapped[str] = mapped_column(String(64), index=True)
    card_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    cnf_jwk: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    card_certificate: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # How the card key was proven generated on the card ("piv-attest") and the maker CA that
    # vouched for it (migration 0013); None when not checked.
    key_attestation: Mapped[str | None] = mapped_column(String(16), nullable=True)
    key_attested_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    token: Mapped[str] = mapped_column(Text)
    # The printed Claim 169 QR text of the same credential (migration 0003); None for
    # credentials issued before it existed.
    qr_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    pending_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    state_changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    superseded_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    issued_by: Mapped[str] = mapped_column(String(128))


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(128), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHeadRow(Base):
    """The chain's tip, so that deleting the newest events is detected too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


from idsvc.storage import (  # noqa: E402  (every table module, so Base.metadata is whole)
    client_tables,  # noqa: F401  (API clients, checks, challenges)
    desk_tables,  # noqa: F401  (operators, desks, approvals)
    payroll_tables,  # noqa: F401  (change feed, webhooks, payroll)
    photo_tables,  # noqa: F401  (holder photos)
    wallet_tables,  # noqa: F401  (offers, nonces, presentations, holder sessions, corrections)
)
