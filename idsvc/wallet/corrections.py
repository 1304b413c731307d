"""A holder's reports of errors in their record ("report an error"), and the registrars' queue.

A request names one field of the record (``FIELDS``) and says in the holder's words what is
wrong. It changes nothing by itself: a registrar reads the queue (``idsvc corrections list``),
corrects the record where it is kept (HR, whose next export or sync brings the change), and
closes the request as accepted or rejected with an answer the holder reads on their next
visit (``idsvc corrections decide``). Both steps are audited (``correction.request``,
``correction.decide``) with identifiers only: the text may hold personal data, the audit log
is read by IT staff.

A phone cannot flood the queue: at most ``MAX_OPEN`` requests of one person are open at once,
counted under the person's row lock, so two requests sent together cannot both pass the count.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from idsvc.audit import chain as audit
from idsvc.errors import (
    CorrectionAlreadyDecided,
    CorrectionRequestInvalid,
    TooManyOpenCorrections,
    UnknownCorrectionRequest,
    UnknownEmployee,
)
from idsvc.formats.text_rules import unwanted_character
from idsvc.storage.bulk import changed_rows
from idsvc.storage.person_locks import lock_servant
from idsvc.storage.wallet_tables import CorrectionRequestRow

# The fields of the record a holder may report as wrong: what their page shows, and the photo.
# Never national_id: the page does not show it, so a request cannot be about it.
FIELDS: Final = (
    "name_local",
    "name_latin",
    "sex",
    "date_of_birth",
    "ministry",
    "ministry_local",
    "unit",
    "position",
    "position_local",
    "grade",
    "category",
    "status",
    "status_date",
    "hire_date",
    "contract_end",
    "photo",
)
MAX_TEXT: Final = 1000
MAX_OPEN: Final = 5
STATUSES: Final = ("open", "accepted", "rejected")
TARGET: Final = "correction_request"


@dataclass(frozen=True)
class CorrectionView:
    id: str
    employee_id: str
    credential_id: str
    field: str
    text: str
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    answer: str | None

    @classmethod
    def of(cls, row: CorrectionRequestRow) -> CorrectionView:
        return cls(
            row.id,
            row.employee_id,
            row.credential_id,
            row.field,
            row.text,
            row.status,
            row.created_at,
            row.decided_by,
            row.decided_at,
            row.answer,
        )

    def for_holder(self) -> dict[str, Any]:
        """What the holder sees of their own request (not who in HR decided it)."""
        return {
            "id": self.id,
            "field": self.field,
            "text": self.text,
            "status": self.status,
            "answer": self.answer,
            "created_at": self.created_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }

    def as_dict(self) -> dict[str, Any]:
        """The registrars' view: the holder's and the decision's every field."""
        return self.for_holder() | {
            "employee_id": self.employee_id,
            "credential_id": self.credential_id,
            "decided_by": self.decided_by,
        }


def checked_text(text: object, what: str) -> str:
    """``text`` trimmed, 1 to ``MAX_TEXT`` characters, lines kept, nothing that draws unlike
    what is stored (idsvc.formats.text_rules); ``CorrectionRequestInvalid`` naming ``what``."""
    if not isinstance(text, str):
        raise CorrectionRequestInvalid(f"{what} must be text")
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise CorrectionRequestInvalid(f"{what} is empty: say what is wrong")
    if len(text) > MAX_TEXT:
        raise CorrectionRequestInvalid(f"{what} is longer than {MAX_TEXT} characters")
    # A line break is the one control character a message may need.
    found = unwanted_character(text.replace("\n", " "))
    if found:
        raise CorrectionRequestInvalid(f"{what} holds a {found}")
    return text


def request_correction(
    session: Session,
    *,
    employee_id: str,
    credential_id: str,
    field: str,
    text: str,
    now: datetime,
) -> CorrectionView:
    """Record a holder's request about ``field`` of their record (audited); changes nothing."""
    if field not in FIELDS:
        raise CorrectionRequestInvalid(
            f"field must be one of {', '.join(FIELDS)}"
            if len(field) <= 32
            else "field is not a field of the record"
        )
    text = checked_text(text, "text")
    if lock_servant(session, employee_id) is None:
        raise UnknownEmployee(employee_id)
    open_now = session.scalar(
        select(func.count())
        .select_from(CorrectionRequestRow)
        .where(
            CorrectionRequestRow.employee_id == employee_id,
            CorrectionRequestRow.status == "open",
        )
    )
    if (open_now or 0) >= MAX_OPEN:
        raise TooManyOpenCorrections(MAX_OPEN)
    row = CorrectionRequestRow(
        id=str(uuid.uuid4()),
        employee_id=employee_id,
        credential_id=credential_id,
        field=field,
        text=text,
        created_at=now,
        status="open",
    )
    session.add(row)
    audit.record(
        session,
        at=now,
        actor=f"holder:{employee_id}",
        action="correction.request",
        target_type=TARGET,
        target_id=row.id,
        details={"employee_id": employee_id, "credential_id": credential_id, "field": field},
    )
    return CorrectionView.of(row)


def corrections_of(session: Session, employee_id: str, *, limit: int = 100) -> list[CorrectionView]:
    """One person's requests, newest first."""
    rows = session.scalars(
        select(CorrectionRequestRow)
        .where(CorrectionRequestRow.employee_id == employee_id)
        .order_by(CorrectionRequestRow.created_at.desc(), CorrectionRequestRow.id)
        .limit(limit)
    )
    return [CorrectionView.of(r) for r in rows]


def queue(
    session: Session, *, status: str | None = "open", limit: int = 500
) -> list[CorrectionView]:
    """The registrars' queue: requests in ``status`` (None: all), oldest first."""
    if status is not None and status not in STATUSES:
        raise CorrectionRequestInvalid(f"status must be one of {', '.join(STATUSES)}")
    query = select(CorrectionRequestRow)
    if status is not None:
        query = query.where(CorrectionRequestRow.status == status)
    rows = session.scalars(
        query.order_by(CorrectionRequestRow.created_at, CorrectionRequestRow.id).limit(limit)
    )
    return [CorrectionView.of(r) for r in rows]


def decide(
    session: Session,
    request_id: str,
    *,
    accept: bool,
    answer: str,
    actor: str,
    now: datetime,
) -> CorrectionView:
    """Close an open request as accepted or rejected with ``answer`` (audited). Decided once:
    the conditional UPDATE lets one of two registrars deciding together win; the other gets
    ``CorrectionAlreadyDecided``. Accepting records the decision only: the record is corrected
    through HR."""
    answer = checked_text(answer, "answer")
    to = "accepted" if accept else "rejected"
    done = session.execute(
        update(CorrectionRequestRow)
        .where(CorrectionRequestRow.id == request_id, CorrectionRequestRow.status == "open")
        .values(status=to, decided_by=actor[:128], decided_at=now, answer=answer)
        .execution_options(synchronize_session=False)
    )
    row = session.get(CorrectionRequestRow, request_id, populate_existing=True)
    if row is None:
        raise UnknownCorrectionRequest(request_id)
    if changed_rows(done) != 1:
        raise CorrectionAlreadyDecided(request_id, row.status)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="correction.decide",
        target_type=TARGET,
        target_id=request_id,
        details={"employee_id": row.employee_id, "field": row.field, "to": to},
    )
    return CorrectionView.of(row)
