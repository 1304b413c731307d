"""Holder photos: one current photo per person, as the desk normalised it (schema: 0006)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idsvc.storage.tables import Base, UtcDateTime


class PhotoRow(Base):
    __tablename__ = "photos"

    employee_id: Mapped[str] = mapped_column(
        ForeignKey("civil_servants.employee_id"), primary_key=True
    )
    # The face as printed: JPEG, passport aspect (35:45), sized for 600 dpi on an ID-1 card.
    face_jpeg: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # The thumbnail a QR may carry (Claim 169 field 62, format in field 63): at most 2 KB.
    qr_image: Mapped[bytes] = mapped_column(LargeBinary)
    qr_media_type: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))  # of face_jpeg, also in the audit event
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str] = mapped_column(String(128))
