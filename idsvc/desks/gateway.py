"""The centre's half of remote issuance: desks, their enrolment, operator logins from a desk,
and the issuance protocol (check, begin, confirm, abandon) for signed desk requests.

Every desk call first checks the request's desk proof (``idsvc.desks.registry``) and, past login,
the
operator's session, which is bound to that desk. The operator's and the desk's names go into
the audit of each step (``name@desk``). Check and begin need the ``issuer`` role. A desk can
confirm or abandon only what was begun from that same desk; confirming twice answers the same
(so a desk that lost the answer to its confirm can simply ask again).

Beyond issuing, a desk checks a card's credential (any signed-in operator), gets what a card
face shows and is allowed to wipe a card (``issuer``; both audited here, as the desk keeps no
log), stores photos (``registrar``), and asks for the actions maker-checker may hold
(revocation, re-issue after loss, HR correction) through the same use cases as the console
(``idsvc.credentials.use_cases``, ``idsvc.register.use_cases``), which ask the maker-checker gate
themselves, with ``name@desk`` as the actor.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardio.card_face import CardFaceData
from idsvc.audit import chain as audit
from idsvc.credentials import card_faces
from idsvc.credentials.handover import KeyAttestation, PendingIssuance
from idsvc.credentials.infrastructure import Infrastructure
from idsvc.credentials.use_cases import Credentials
from idsvc.credentials.views import CredentialView
from idsvc.desks import registry as desks
from idsvc.desks.registry import DeskRequest, DeskView
from idsvc.errors import (
    IssuanceNotPending,
    NotPermitted,
    OperatorError,
    PhotoRejected,
    UnknownCredential,
)
from idsvc.formats.jws import sign_compact
from idsvc.register import photos
from idsvc.register.photos import PhotoInfo
from idsvc.register.use_cases import Register
from idsvc.staff import operators
from idsvc.staff.approvals import ApprovalView
from idsvc.staff.maker_checker import MakerChecker, Pending
from idsvc.staff.operators import Actor, LoginSession
from idsvc.staff.use_cases import Staff
from idsvc.storage.desk_tables import DeskRow
from idsvc.storage.tables import LIVE_STATES, CredentialRow
from idsvc.verification.rules import VerificationResult
from idsvc.verification.use_cases import Verification
from keys.errors import KeysError
from keys.jwk import public_key_from_jwk

if TYPE_CHECKING:
    from idsvc.wallet.offers import Offer
    from idsvc.wallet.use_cases import Wallet

ISSUE_ROLES = frozenset({"issuer"})
PHOTO_ROLES = frozenset({"registrar"})
RECEIPT_TYP = "desk-enrolment+jwt"


@dataclass(frozen=True)
class RemoteIssuance:
    """What a desk needs to write a card: the signed pending issuance, the CA to check the
    certificate against before confirming, and the tap-to-verify base URL."""

    pending: PendingIssuance
    ca_certificate_der: bytes
    verify_url: str


@dataclass(frozen=True)
class ReportedWipe:
    """A wipe a desk did without the centre, as the desk tells it (not verified)."""

    report_id: str
    card_uuid: str | None
    credential_id: str | None  # read from the card before the wipe: a claim, not a proof
    wiped_at: datetime
    operator: str | None  # who was signed in at the desk then, by the desk's own record


def record_wipe(
    session: Session,
    *,
    actor: str,
    card_uuid: str | None,
    credential_id: str | None,
    desk: str | None,
    now: datetime,
) -> None:
    """The audit of a wipe allowed by the register (at the centre or for a desk)."""
    audit.record(
        session,
        at=now,
        actor=actor,
        action="card.wipe",
        target_type="card",
        target_id=(card_uuid or credential_id or "unknown")[:128],
        details={"credential_id": credential_id, "desk": desk},
    )


@dataclass(frozen=True)
class Enrolled:
    desk: DeskView
    receipt: str  # JWS by the issuer key: desk, office, key thumbprint, time
    ca_certificate_der: bytes  # the issuer CA, to check card certificates before confirming


class DeskGateway:
    def __init__(
        self,
        infra: Infrastructure,
        *,
        gate: MakerChecker,
        staff: Staff,
        credentials: Credentials,
        register: Register,
        verification: Verification,
    ) -> None:
        self.infra = infra
        self.settings = infra.settings
        self.gate = gate
        self.staff = staff
        self.credentials = credentials
        self.register = register
        self.verification = verification

    # -- administration (centre console or an admin) ----------------------------------------
    def _admin(self, by: Actor | None) -> str:
        if by is None:
            return self.settings.operator
        operators.require_role(by, frozenset({"admin"}), "manage desks")
        return by.audit_name

    @property
    def _enrol_ttl(self) -> timedelta:
        return timedelta(hours=self.settings.desk_enrol_hours)

    def add_desk(
        self, name: str, *, office: str, by: Actor | None, now: datetime
    ) -> tuple[DeskView, str]:
        actor = self._admin(by)
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return desks.add_desk(
                session, name=name, office=office, ttl=self._enrol_ttl, actor=actor, now=now
            )

    def new_enrolment_code(self, name: str, *, by: Actor | None, now: datetime) -> str:
        actor = self._admin(by)
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return desks.new_enrolment_code(
                session, name, ttl=self._enrol_ttl, actor=actor, now=now
            )

    def list_desks(self) -> list[DeskView]:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return desks.list_desks(session)

    def set_desk_enabled(
        self, name: str, *, enabled: bool, by: Actor | None, now: datetime
    ) -> DeskView:
        actor = self._admin(by)
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return desks.set_enabled(session, name, enabled=enabled, actor=actor, now=now)

    # -- the desk's calls -------------------------------------------------------------------
    def enrol(
        self, *, code: str, jwk: dict[str, Any], request: DeskRequest, now: datetime
    ) -> Enrolled:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            view = desks.enrol(session, code=code, jwk=jwk, request=request, now=now)
            issuer = self.infra.issuer(session)
            receipt = sign_compact(
                {
                    "iss": issuer.iss,
                    "sub": view.name,
                    "office": view.office,
                    "jkt": view.key_thumbprint,
                    "iat": int(now.timestamp()),
                },
                self.infra.signer(issuer),
                typ=RECEIPT_TYP,
            )
            ca = issuer.ring.ca_certificate().public_bytes(Encoding.DER)
            return Enrolled(view, receipt, ca)

    def _desk(self, request: DeskRequest, now: datetime) -> DeskRow:
        """The desk that signed ``request``. Its own transaction: the request id is spent even
        when a later check (session, role) refuses the request, so it cannot be replayed."""
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return desks.desk_of_request(session, request, now=now)

    def login(
        self, request: DeskRequest, *, name: str, password: str, otp: str, now: datetime
    ) -> LoginSession:
        desk = self._desk(request, now)
        return self.staff.login(name, password, otp, now=now, desk=desk)

    def operator_actor(self, request: DeskRequest, token: str, *, now: datetime) -> Actor:
        """The operator signed in at the desk that signed ``request`` (session bound to it).

        One transaction (one commit per request): a refused session is raised only after the
        commit, so the request id is spent either way and cannot be replayed."""
        self.infra.require_ready()
        refusal: OperatorError | None = None
        with self.infra.db.transaction() as session:
            desk = desks.desk_of_request(session, request, now=now)
            try:
                actor = operators.actor_of_session(
                    session, token, desk=desk, policy=self.staff.policy, now=now
                )
            except OperatorError as exc:
                refusal = exc
        if refusal is not None:
            raise refusal
        if actor.office != desk.office:  # the desk moved office since the login
            raise NotPermitted(f"desk {desk.name} is not of office {actor.office}")
        return actor

    def issuer_actor(
        self, request: DeskRequest, token: str, *, now: datetime, what: str = "issue cards"
    ) -> Actor:
        actor = self.operator_actor(request, token, now=now)
        operators.require_role(actor, ISSUE_ROLES, what)
        return actor

    def logout(self, request: DeskRequest, token: str, *, now: datetime) -> None:
        self._desk(request, now)
        with self.infra.db.transaction() as session:
            operators.end_session(session, token, now=now)

    def check_eligible(
        self, request: DeskRequest, token: str, employee_id: str, *, now: datetime
    ) -> None:
        actor = self.issuer_actor(request, token, now=now)
        self.gate.require_office(actor, "issue", employee_id, now=now)
        self.credentials.check_eligible(employee_id)
        self._refuse_reissue_without_approval(employee_id)

    def _refuse_reissue_without_approval(self, employee_id: str) -> None:
        if not self.gate.needs_approval("reissue_after_loss"):
            return
        with self.infra.db.transaction() as session:
            live = session.execute(
                select(CredentialRow.id).where(
                    CredentialRow.employee_id == employee_id,
                    CredentialRow.kind == "card",
                    CredentialRow.state.in_(LIVE_STATES),
                )
            ).first()
        if live is not None:
            raise NotPermitted(
                f"{employee_id} still has a live card. If it was lost, ask for re-issue after "
                "loss (`idsvc declare-lost`); a supervisor approves it, then issue again."
            )

    def begin(
        self,
        request: DeskRequest,
        token: str,
        employee_id: str,
        *,
        card_jwk: dict[str, Any],
        card_uuid: uuid.UUID,
        now: datetime,
        attestation: KeyAttestation | None = None,
    ) -> RemoteIssuance:
        actor = self.issuer_actor(request, token, now=now)
        self.gate.require_office(actor, "issue", employee_id, now=now)
        try:
            card_key = public_key_from_jwk(card_jwk)
        except KeysError as exc:
            raise NotPermitted(f"the card key is not a usable public JWK ({exc})") from exc
        if not isinstance(card_key, EllipticCurvePublicKey):
            raise NotPermitted("the card key must be EC P-256 (PIV slot 9E)")
        self._refuse_reissue_without_approval(employee_id)
        pending = self.credentials.begin_card_issuance(
            employee_id,
            card_key=card_key,
            card_uuid=card_uuid,
            actor=actor.audit_name,
            now=now,
            attestation=attestation,
        )
        return RemoteIssuance(
            pending,
            self.credentials.ca_certificate().public_bytes(Encoding.DER),
            self.settings.resolved_verify_url,
        )

    def _own(self, session: Session, credential_id: str, actor: Actor) -> CredentialRow:
        row = session.get(CredentialRow, credential_id)
        if row is None:
            raise UnknownCredential(credential_id)
        if not row.issued_by.endswith(f"@{actor.desk}"):
            raise NotPermitted("this issuance was begun from another desk")
        return row

    def confirm(
        self, request: DeskRequest, token: str, credential_id: str, *, now: datetime
    ) -> CredentialView:
        actor = self.issuer_actor(request, token, now=now)
        with self.infra.db.transaction() as session:
            row = self._own(session, credential_id, actor)
            if row.state in LIVE_STATES:
                return CredentialView.of(row)  # confirmed before: the same answer again
            if row.state != "pending":
                raise IssuanceNotPending(
                    f"issuance {credential_id} is {row.state}: nothing is live; start again"
                )
        return self.credentials.confirm_issuance(credential_id, actor=actor.audit_name, now=now)

    def abandon(
        self, request: DeskRequest, token: str, credential_id: str, *, reason: str, now: datetime
    ) -> None:
        actor = self.issuer_actor(request, token, now=now)
        with self.infra.db.transaction() as session:
            self._own(session, credential_id, actor)
        self.credentials.abandon_issuance(
            credential_id, reason=reason[:200], actor=actor.audit_name, now=now
        )

    def wallet_offer(
        self, request: DeskRequest, token: str, employee_id: str, *, wallet: Wallet, now: datetime
    ) -> Offer:
        """A phone credential offer made at the desk: gated as issuing a card (the ``issuer``
        role, the person in the operator's office), audited as ``name@desk``."""
        actor = self.issuer_actor(request, token, now=now, what="make phone credential offers")
        self.gate.require_office(actor, "issue", employee_id, now=now)
        return wallet.offer(employee_id, actor=actor.audit_name, now=now)

    # -- the card at the desk: read, verify, wipe, print -----------------------------------------
    def verify_card(
        self,
        request: DeskRequest,
        token: str,
        credential: str,
        *,
        card_jwk: dict[str, Any] | None,
        now: datetime,
    ) -> VerificationResult:
        """Check what a card holds against the register (signature, status, holder, and that
        the credential names the card's key); any signed-in operator may read a card."""
        self.operator_actor(request, token, now=now)
        card_key = None
        if card_jwk is not None:
            try:
                card_key = public_key_from_jwk(card_jwk)
            except KeysError as exc:
                raise NotPermitted(f"the card key is not a usable public JWK ({exc})") from exc
        return self.verification.verify(credential, now=now, card_key=card_key)

    def card_face(
        self, request: DeskRequest, token: str, employee_id: str, *, now: datetime
    ) -> CardFaceData:
        """What one printed card shows, for the desk to draw. Refused as at the centre (no live
        credential, no photo ...); audited here, since the desk keeps no log of its own."""
        actor = self.issuer_actor(request, token, now=now, what="print cards")
        self.gate.require_office(actor, "print", employee_id, now=now)
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            data = card_faces.face_data(
                session,
                employee_id,
                now=now,
                issuer_name_local=self.settings.issuer_name_local,
            )
            audit.record(
                session,
                at=now,
                actor=actor.audit_name,
                action="card_face.render",
                target_type="civil_servant",
                target_id=employee_id,
                details={"card_serial": data.card_serial, "desk": actor.desk},
            )
        return data

    def card_wipe(
        self,
        request: DeskRequest,
        token: str,
        *,
        credential_id: str | None,
        card_uuid: str | None,
        revoke_reason: str | None,
        now: datetime,
    ) -> CredentialView | Pending | None:
        """Allow a wipe (audited before the card is touched) and, if asked, revoke the card's
        credential: held for a second person when revocation is under maker-checker."""
        actor = self.issuer_actor(request, token, now=now, what="wipe cards")
        outcome: CredentialView | Pending | None = None
        if revoke_reason is not None:
            if credential_id is None:
                raise NotPermitted("the card holds no credential to revoke")
            if self.credentials.credential(credential_id).state in LIVE_STATES:
                outcome = self.credentials.revoke(
                    credential_id, reason=revoke_reason, by=actor, now=now
                )
        with self.infra.db.transaction() as session:
            record_wipe(
                session,
                actor=actor.audit_name,
                card_uuid=card_uuid,
                credential_id=credential_id,
                desk=actor.desk,
                now=now,
            )
        return outcome

    def report_wipes(
        self, request: DeskRequest, reports: list[ReportedWipe], *, now: datetime
    ) -> list[dict[str, Any]]:
        """Record the wipes a desk did without the centre (``card wipe --offline``), sent at
        its next request. The desk's word is audited, never acted on: a credential read from
        the wiped card is named (when the register knows it for that card) so a registrar can
        revoke it; nothing is revoked here."""
        desk = self._desk(request, now)
        found: list[dict[str, Any]] = []
        with self.infra.db.transaction() as session:
            for r in reports:
                row = (
                    None if r.credential_id is None else session.get(CredentialRow, r.credential_id)
                )
                if row is not None and r.card_uuid is not None and row.card_uuid != r.card_uuid:
                    row = None  # a credential id that is not this card's: name nothing
                named = None if row is None else row.id
                state = None if row is None else row.state
                audit.record(
                    session,
                    at=now,
                    actor=f"desk:{desk.name}",
                    action="card.wipe_reported",
                    target_type="card",
                    target_id=(r.card_uuid or r.credential_id or "unknown")[:128],
                    details={
                        "report_id": r.report_id,
                        "credential_id": named,
                        "credential_state": state,
                        "read_from_card": r.credential_id,
                        "wiped_at": r.wiped_at.isoformat(),
                        "operator_at_desk": r.operator,
                        "desk": desk.name,
                    },
                )
                found.append(
                    {
                        "report_id": r.report_id,
                        "card_uuid": r.card_uuid,
                        "wiped_at": r.wiped_at.isoformat(),
                        "credential_id": named,
                        "credential_state": state,
                    }
                )
        return found

    def desk_state(
        self, request: DeskRequest, token: str | None, *, now: datetime
    ) -> dict[str, Any]:
        """This desk as the centre sees it (a disabled desk is refused as in every call) and
        the operator whose session ``token`` is, if it is still valid here."""
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            desk = desks.desk_of_request(session, request, now=now)
            state: dict[str, Any] = {
                "desk": desk.name,
                "office": desk.office,
                "operator": None,
                "session": "none",
            }
            if token is not None:
                try:
                    actor = operators.actor_of_session(
                        session, token, desk=desk, policy=self.staff.policy, now=now
                    )
                except OperatorError as exc:
                    state["session"] = str(exc)
                else:
                    state |= {"operator": actor.name, "role": actor.role, "session": "signed in"}
        return state

    # -- sensitive actions from a desk (maker-checker as at the centre) -------------------------
    def revoke(
        self, request: DeskRequest, token: str, credential_id: str, *, reason: str, now: datetime
    ) -> CredentialView | Pending:
        actor = self.operator_actor(request, token, now=now)
        return self.credentials.revoke(credential_id, reason=reason, by=actor, now=now)

    def declare_lost(
        self, request: DeskRequest, token: str, employee_id: str, *, reason: str, now: datetime
    ) -> str | Pending:
        actor = self.operator_actor(request, token, now=now)
        return self.credentials.declare_lost(employee_id, reason=reason, by=actor, now=now)

    def correct_status(
        self,
        request: DeskRequest,
        token: str,
        employee_id: str,
        *,
        status: str,
        reason: str,
        status_date: date | None,
        now: datetime,
    ) -> str | Pending:
        actor = self.operator_actor(request, token, now=now)
        return self.register.correct_status(
            employee_id, status=status, reason=reason, status_date=status_date, by=actor, now=now
        )

    def store_photo(
        self, request: DeskRequest, token: str, employee_id: str, photo_b64: str, *, now: datetime
    ) -> PhotoInfo:
        """Store a holder's photo as sent (base64 of the JPEG or PNG), once the operator is
        known: nothing of an unauthenticated body is decoded."""
        actor = self.operator_actor(request, token, now=now)
        operators.require_role(actor, PHOTO_ROLES, "store photos")
        self.gate.require_office(actor, "photo", employee_id, now=now)
        try:
            data = base64.b64decode(photo_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PhotoRejected("the photo is not valid base64") from exc
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return photos.store_photo(session, employee_id, data, actor=actor.audit_name, now=now)

    # -- approvals from a desk ----------------------------------------------------------------
    def approvals(self, request: DeskRequest, token: str, *, now: datetime) -> list[ApprovalView]:
        actor = self.operator_actor(request, token, now=now)
        return self.staff.list_approvals(by=actor, state="pending", now=now)

    def approve(
        self, request: DeskRequest, token: str, approval_id: str, *, now: datetime
    ) -> tuple[ApprovalView, str]:
        actor = self.operator_actor(request, token, now=now)
        return self.staff.approve(approval_id, by=actor, now=now)

    def reject(
        self, request: DeskRequest, token: str, approval_id: str, *, reason: str, now: datetime
    ) -> ApprovalView:
        actor = self.operator_actor(request, token, now=now)
        return self.staff.reject(approval_id, by=actor, reason=reason, now=now)
