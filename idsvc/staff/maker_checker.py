"""The one gate every sensitive action goes through, whoever asks and from wherever.

A sensitive action (revocation, re-issue after loss, HR status correction, key rotation,
operator changes) is asked for by an ``Actor`` (an authenticated operator, and their desk when
remote) or, at the centre console, by nobody in particular (``by=None``: the console's
configured operator name goes into the audit). The gate checks the asker's role and office, then
asks the approval policy (``IDSVC_APPROVAL_REQUIRED``): a held action becomes a ``Pending``
request for a second person; otherwise it is performed at once. Either way it is performed by
the same function, the one the performers table (``idsvc.services.PERFORMERS``) names for the
action, so an approved action and a direct one cannot drift apart.

A held action needs a named operator: "a second person" means nothing without knowing who the
first was, so the console alone (``by=None``) is refused for it.

Offices (``idsvc.staff.offices``): every action an operator asks for, approves or rejects is
first checked against their office by ``require_office``, the one place that rule is applied
(the desk's issuing, printing and photos call it too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from idsvc.credentials.infrastructure import Infrastructure
from idsvc.errors import NotPermitted
from idsvc.staff import approvals, offices, operators
from idsvc.staff.approvals import ApprovalView
from idsvc.staff.operators import Actor


@dataclass(frozen=True)
class Pending:
    """The answer to a sensitive action that now waits for a second person."""

    approval: ApprovalView


@dataclass(frozen=True)
class Done:
    """A sensitive action performed: its one-line outcome (kept on the approval), what to show
    the approver once (a new operator's ``otpauth://`` URI, else ""), and what a direct caller
    gets back (a credential view, the rotated key ids, an operator's enrolment ...)."""

    outcome: str
    value: Any = None
    shown_once: str = ""


# (infrastructure, session, target, params, audit actor, now) -> what was done
Perform = Callable[[Infrastructure, Session, str, Mapping[str, Any], str, datetime], Done]


class MakerChecker:
    def __init__(self, infra: Infrastructure, performers: Mapping[str, Perform]) -> None:
        self.infra = infra
        self.settings = infra.settings
        self._performers = performers

    def needs_approval(self, action: str) -> bool:
        return action in self.settings.approval_actions

    @property
    def ttl(self) -> timedelta:
        return timedelta(hours=self.settings.approval_hours)

    def console_actor(self, by: Actor | None, action: str) -> str:
        """Who goes into the audit for an action done at once."""
        if by is not None:
            return by.audit_name
        if self.needs_approval(action):
            raise NotPermitted(
                f"{action.replace('_', ' ')} needs a second person's approval here: "
                "act as an operator (--operator NAME --password-stdin --otp CODE)"
            )
        return self.settings.operator

    # -- offices ------------------------------------------------------------------------------
    def require_office(
        self,
        by: Actor | None,
        action: str,
        target: str,
        *,
        now: datetime,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """Refuse (``NotPermitted``, audited and committed) when ``by``'s office does not let
        them do ``action`` on ``target``; the console (``by=None``) is national."""
        if by is not None:
            self._office_check(
                by,
                lambda session: offices.refusal(session, by, action, target, params or {}, now=now),
            )

    def _office_check(
        self, by: Actor, refusal_in: Callable[[Session], NotPermitted | None]
    ) -> None:
        if by.national:
            return
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            refusal = refusal_in(session)  # recorded in the audit, committed before raising
        if refusal is not None:
            raise refusal

    # -- asking -------------------------------------------------------------------------------
    def act(
        self,
        action: str,
        target: str,
        params: dict[str, Any],
        *,
        by: Actor | None,
        roles: frozenset[str],
        now: datetime,
        console_may_act: Callable[[Session], bool] | None = None,
    ) -> Done | Pending:
        """Perform ``action`` now, or hold it for a second person when the policy says so.

        ``console_may_act`` lets the console act without approval in a state where nobody
        could approve (the first operator of a deployment)."""
        if by is not None:
            operators.require_role(by, roles, action.replace("_", " "))
            self.require_office(by, action, target, now=now, params=params)
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            if by is not None and self.needs_approval(action):
                return Pending(
                    approvals.request(
                        session,
                        action=action,
                        target=target,
                        params=params,
                        requester=by,
                        ttl=self.ttl,
                        now=now,
                    )
                )
            if by is None and console_may_act is not None and console_may_act(session):
                actor = self.settings.operator
            else:
                actor = self.console_actor(by, action)
            return self._perform(session, action, target, params, actor, now)

    def _perform(
        self,
        session: Session,
        action: str,
        target: str,
        params: Mapping[str, Any],
        actor: str,
        now: datetime,
    ) -> Done:
        perform = self._performers.get(action)
        if perform is None:
            raise NotPermitted(f"unknown action {action!r}")
        return perform(self.infra, session, target, params, actor, now)

    # -- deciding -----------------------------------------------------------------------------
    def list_approvals(self, *, by: Actor, state: str | None, now: datetime) -> list[ApprovalView]:
        operators.require_role(by, operators.APPROVER_ROLES, "see approvals")
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            views = approvals.list_approvals(session, state=state, now=now)
            # Another office's requests are not theirs to decide, nor to read.
            return [v for v in views if offices.in_scope(session, by, v.action, v.target, v.params)]

    def approve(self, approval_id: str, *, by: Actor, now: datetime) -> tuple[ApprovalView, str]:
        """Approve and perform; return the approval and what to show the approver once (the
        new operator's ``otpauth://`` URI for an operator added or reset, else "")."""
        shown: list[str] = []

        def perform(
            session: Session, action: str, target: str, params: Mapping[str, Any], actor: str
        ) -> str:
            done = self._perform(session, action, target, params, actor, now)
            shown.append(done.shown_once)
            return done.outcome

        self._office_check(
            by, lambda session: offices.approval_refusal(session, by, approval_id, now=now)
        )
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            view = approvals.approve(session, approval_id, checker=by, perform=perform, now=now)
        return view, shown[0] if shown else ""

    def reject(self, approval_id: str, *, by: Actor, reason: str, now: datetime) -> ApprovalView:
        self._office_check(
            by, lambda session: offices.approval_refusal(session, by, approval_id, now=now)
        )
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
            return approvals.reject(session, approval_id, checker=by, reason=reason, now=now)
