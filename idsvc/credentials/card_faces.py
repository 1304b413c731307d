"""Card faces: gather what a printed card shows (register row, live credential, photo, issuer)
and draw it with ``cardio.card_face``.

The card's words are in English, and on a Lao (``LA-``) or Khmer (``KH-``) employee's card
also in the national language (``cardio.card_face.NATIONAL``). A text that does not fit in two
lines is refused naming the field (``CardFaceFailed``), never cut.

A face is printed only for a person with a **live** credential that has not expired at ``now``
and a stored photo; anything else is ``CardFaceFailed`` / ``PhotoMissing`` (exit 20) with the
reason, so a desk never prints a card that would verify as revoked, suspended or expired. The
QR carries the credential's printed form (Claim 169 text) from issuance.

Each rendered face is audited (``card_face.render``: employee, credential, QR version), so
"who printed a card for this person" has an answer. A batch gathers and audits each person in
its own transaction: one bad id is reported and skipped, the others print.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardio.card_face import BatchItem, CardFace, CardFaceData, CardRenderer
from cardio.errors import PrintError
from idsvc.audit import chain as audit
from idsvc.config import DEFAULT_ISSUER
from idsvc.errors import CardFaceFailed, IdsvcError
from idsvc.register import photos
from idsvc.register import records as register
from idsvc.storage.db import Database
from idsvc.storage.tables import LIVE_STATES, CredentialRow, IssuerRow


def _qr_text(row: CredentialRow) -> str:
    # The printed form made at issuance (Claim 169, base45, migration 0003). A credential
    # issued before printed QRs existed has none: the JWT is too large to print (version ~25).
    if not row.qr_text:
        raise CardFaceFailed(f"credential {row.id} has no printed QR form: re-issue it")
    return row.qr_text


def face_data(
    session: Session, employee_id: str, *, now: datetime, issuer_name_local: str | None = None
) -> CardFaceData:
    """Everything the card shows, from one transaction; refuses what must not be printed.
    ``issuer_name_local`` (``IDSVC_ISSUER_NAME_LOCAL``) names the default issuer in the
    national script; the register gives the ministry and position in it when the HR export
    has them (``ministry_local``, ``position_local``)."""
    servant = register.get_servant(session, employee_id)
    credential = session.execute(
        select(CredentialRow).where(
            CredentialRow.employee_id == employee_id,
            CredentialRow.kind == "card",
            CredentialRow.state.in_(LIVE_STATES),
        )
    ).scalar_one_or_none()
    if credential is None:
        raise CardFaceFailed("no live credential: issue one first (`idsvc issue`)")
    if credential.state != "live":
        raise CardFaceFailed(f"the credential is {credential.state}: a card is not printed")
    if credential.expires_at <= now:
        raise CardFaceFailed(f"the credential expired on {credential.expires_at:%Y-%m-%d}")
    issuer = session.get(IssuerRow, credential.issuer_id)
    if issuer is None:  # pragma: no cover - a foreign key guarantees it
        raise CardFaceFailed(f"credential {credential.id} names no issuer")
    return CardFaceData(
        employee_id=servant.employee_id,
        name_local=servant.name_local,
        name_latin=servant.name_latin,
        ministry=servant.ministry,
        position=servant.position,
        expires=credential.expires_at.date(),
        issuer_name=issuer.name,
        issuer_uri=issuer.iss,
        card_serial=credential.card_serial,
        qr_text=_qr_text(credential),
        photo_jpeg=photos.face_image(session, employee_id),
        # Read defensively: registers imported before these columns existed have none.
        ministry_local=getattr(servant, "ministry_local", None) or None,
        position_local=getattr(servant, "position_local", None) or None,
        issuer_name_local=issuer_name_local if issuer.slug == DEFAULT_ISSUER else None,
    )


class CardFaces:
    """The card-face use cases for the CLI: one transaction per person."""

    def __init__(
        self,
        db: Database,
        renderer: CardRenderer | None = None,
        *,
        issuer_name_local: str | None = None,
    ) -> None:
        self._db = db
        self.renderer = renderer or CardRenderer()
        self._issuer_name_local = issuer_name_local

    def render(self, employee_id: str, *, actor: str, now: datetime) -> CardFace:
        with self._db.transaction() as session:
            data = face_data(
                session, employee_id, now=now, issuer_name_local=self._issuer_name_local
            )
            try:
                face = self.renderer.render(data)
            except PrintError as exc:
                raise CardFaceFailed(str(exc)) from exc
            audit.record(
                session,
                at=now,
                actor=actor,
                action="card_face.render",
                target_type="civil_servant",
                target_id=employee_id,
                details={"card_serial": data.card_serial, "qr_version": face.qr_version},
            )
            return face

    def render_batch(
        self, employee_ids: Iterable[str], *, actor: str, now: datetime
    ) -> Iterator[BatchItem]:
        """Render each id in turn; a refused id yields its reason and the batch goes on."""
        for employee_id in employee_ids:
            try:
                yield BatchItem(employee_id, self.render(employee_id, actor=actor, now=now), None)
            except IdsvcError as exc:
                yield BatchItem(employee_id, None, str(exc))


def read_batch_file(text: str) -> list[str]:
    """Employee ids, one a line; blank lines and ``#`` comments skipped, duplicates once."""
    ids = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return list(dict.fromkeys(i for i in ids if i))
