"""The centre's half of remote issuance: desks, their enrolment, operator logins from a desk,
and the issuance protocol (check, begin, confirm, abandon) for signed desk requests.

Every desk call first checks the request's desk proof (``idsvc.desks``) and, past login, the
operator's session, which is bound to that desk. The operator's and the desk's names go into
the audit of each step (``name@desk``). Check and begin need the ``issuer`` role. A desk can
confirm or abandon only what was begun from that same desk; confirming twice answers the same
(so a desk that lost the answer to its confirm can simply ask again).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc import desks, operators
from idsvc.approvals import ApprovalView
from idsvc.centre import Centre
from idsvc.desks import DeskRequest, DeskView
from idsvc.errors import IssuanceNotPending, NotPermitted, OperatorError, UnknownCredential
from idsvc.formats.jws import sign_compact
from idsvc.issuance import PendingIssuance
from idsvc.operators import Actor, LoginSession
from idsvc.service import CredentialView
from idsvc.storage.desk_tables import DeskRow
from idsvc.storage.tables import LIVE_STATES, CredentialRow
from keys.errors import KeysError
from keys.jwk import public_key_from_jwk

ISSUE_ROLES = frozenset({"issuer"})
RECEIPT_TYP = "desk-enrolment+jwt"


@dataclass(frozen=True)
class RemoteIssuance:
    """What a desk needs to write a card: the signed pending issuance, the CA to check the
    certificate against before confirming, and the tap-to-verify base URL."""

    pending: PendingIssuance
    ca_certificate_der: bytes
    verify_url: str


@dataclass(frozen=True)
class Enrolled:
    desk: DeskView
    receipt: str  # JWS by the issuer key: desk, office, key thumbprint, time
    ca_certificate_der: bytes  # the issuer CA, to check card certificates before confirming


class DeskCentre:
    def __init__(self, centre: Centre) -> None:
        self.centre = centre
        self.service = centre.service

    # -- administration (centre console or an admin) ----------------------------------------
    def _admin(self, by: Actor | None) -> str:
        if by is None:
            return self.service.settings.operator
        operators.require_role(by, frozenset({"admin"}), "manage desks")
        return by.audit_name

    @property
    def _enrol_ttl(self) -> timedelta:
        return timedelta(hours=self.service.settings.desk_enrol_hours)

    def add_desk(
        self, name: str, *, office: str, by: Actor | None, now: datetime
    ) -> tuple[DeskView, str]:
        actor = self._admin(by)
        self.service._ready()
        with self.service.db.transaction() as session:
            return desks.add_desk(
                session, name=name, office=office, ttl=self._enrol_ttl, actor=actor, now=now
            )

    def new_enrolment_code(self, name: str, *, by: Actor | None, now: datetime) -> str:
        actor = self._admin(by)
        self.service._ready()
        with self.service.db.transaction() as session:
            return desks.new_enrolment_code(
                session, name, ttl=self._enrol_ttl, actor=actor, now=now
            )

    def list_desks(self) -> list[DeskView]:
        self.service._ready()
        with self.service.db.transaction() as session:
            return desks.list_desks(session)

    def set_desk_enabled(
        self, name: str, *, enabled: bool, by: Actor | None, now: datetime
    ) -> DeskView:
        actor = self._admin(by)
        self.service._ready()
        with self.service.db.transaction() as session:
            return desks.set_enabled(session, name, enabled=enabled, actor=actor, now=now)

    # -- the desk's calls -------------------------------------------------------------------
    def enrol(
        self, *, code: str, jwk: dict[str, Any], request: DeskRequest, now: datetime
    ) -> Enrolled:
        self.service._ready()
        with self.service.db.transaction() as session:
            view = desks.enrol(session, code=code, jwk=jwk, request=request, now=now)
            issuer = self.service.issuer(session)
            receipt = sign_compact(
                {
                    "iss": issuer.iss,
                    "sub": view.name,
                    "office": view.office,
                    "jkt": view.key_thumbprint,
                    "iat": int(now.timestamp()),
                },
                self.service.signer(issuer),
                typ=RECEIPT_TYP,
            )
            ca = issuer.ring.ca_certificate().public_bytes(Encoding.DER)
            return Enrolled(view, receipt, ca)

    def _desk(self, request: DeskRequest, now: datetime) -> DeskRow:
        """The desk that signed ``request``. Its own transaction: the request id is spent even
        when a later check (session, role) refuses the request, so it cannot be replayed."""
        self.service._ready()
        with self.service.db.transaction() as session:
            return desks.desk_of_request(session, request, now=now)

    def login(
        self, request: DeskRequest, *, name: str, password: str, otp: str, now: datetime
    ) -> LoginSession:
        desk = self._desk(request, now)
        return self.centre.login(name, password, otp, now=now, desk=desk)

    def operator_actor(self, request: DeskRequest, token: str, *, now: datetime) -> Actor:
        """The operator signed in at the desk that signed ``request`` (session bound to it).

        One transaction (one commit per request): a refused session is raised only after the
        commit, so the request id is spent either way and cannot be replayed."""
        self.service._ready()
        refusal: OperatorError | None = None
        with self.service.db.transaction() as session:
            desk = desks.desk_of_request(session, request, now=now)
            try:
                actor = operators.actor_of_session(
                    session, token, desk=desk, policy=self.centre.policy, now=now
                )
            except OperatorError as exc:
                refusal = exc
        if refusal is not None:
            raise refusal
        if actor.office != desk.office:  # the desk moved office since the login
            raise NotPermitted(f"desk {desk.name} is not of office {actor.office}")
        return actor

    def issuer_actor(self, request: DeskRequest, token: str, *, now: datetime) -> Actor:
        actor = self.operator_actor(request, token, now=now)
        operators.require_role(actor, ISSUE_ROLES, "issue cards")
        return actor

    def logout(self, request: DeskRequest, token: str, *, now: datetime) -> None:
        self._desk(request, now)
        with self.service.db.transaction() as session:
            operators.end_session(session, token, now=now)

    def check_eligible(
        self, request: DeskRequest, token: str, employee_id: str, *, now: datetime
    ) -> None:
        self.issuer_actor(request, token, now=now)
        self.service.check_eligible(employee_id)
        self._refuse_reissue_without_approval(employee_id)

    def _refuse_reissue_without_approval(self, employee_id: str) -> None:
        if not self.centre.needs_approval("reissue_after_loss"):
            return
        with self.service.db.transaction() as session:
            live = session.execute(
                select(CredentialRow.id).where(
                    CredentialRow.employee_id == employee_id,
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
    ) -> RemoteIssuance:
        actor = self.issuer_actor(request, token, now=now)
        try:
            card_key = public_key_from_jwk(card_jwk)
        except KeysError as exc:
            raise NotPermitted(f"the card key is not a usable public JWK ({exc})") from exc
        if not isinstance(card_key, EllipticCurvePublicKey):
            raise NotPermitted("the card key must be EC P-256 (PIV slot 9E)")
        self._refuse_reissue_without_approval(employee_id)
        pending = self.service.begin_card_issuance(
            employee_id, card_key=card_key, card_uuid=card_uuid, actor=actor.audit_name, now=now
        )
        return RemoteIssuance(
            pending,
            self.service.ca_certificate().public_bytes(Encoding.DER),
            self.service.settings.resolved_verify_url,
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
        with self.service.db.transaction() as session:
            row = self._own(session, credential_id, actor)
            if row.state in LIVE_STATES:
                return CredentialView.of(row)  # confirmed before: the same answer again
            if row.state != "pending":
                raise IssuanceNotPending(
                    f"issuance {credential_id} is {row.state}: nothing is live; start again"
                )
        return self.service.confirm_issuance(credential_id, actor=actor.audit_name, now=now)

    def abandon(
        self, request: DeskRequest, token: str, credential_id: str, *, reason: str, now: datetime
    ) -> None:
        actor = self.issuer_actor(request, token, now=now)
        with self.service.db.transaction() as session:
            self._own(session, credential_id, actor)
        self.service.abandon_issuance(
            credential_id, reason=reason[:200], actor=actor.audit_name, now=now
        )

    # -- approvals from a desk ----------------------------------------------------------------
    def approvals(self, request: DeskRequest, token: str, *, now: datetime) -> list[ApprovalView]:
        actor = self.operator_actor(request, token, now=now)
        return self.centre.list_approvals(by=actor, state="pending", now=now)

    def approve(
        self, request: DeskRequest, token: str, approval_id: str, *, now: datetime
    ) -> tuple[ApprovalView, str]:
        actor = self.operator_actor(request, token, now=now)
        return self.centre.approve(approval_id, by=actor, now=now)

    def reject(
        self, request: DeskRequest, token: str, approval_id: str, *, reason: str, now: datetime
    ) -> ApprovalView:
        actor = self.operator_actor(request, token, now=now)
        return self.centre.reject(approval_id, by=actor, reason=reason, now=now)
