"""The centre's use cases for people: operators, logins, approvals, and the sensitive actions
that maker-checker can hold (revocation, re-issue after loss, HR status correction, key
rotation, operator changes). One method per CLI command or route, one transaction each.

A sensitive action is done by an ``Actor`` (an authenticated operator, and their desk when
remote) or, at the centre console, by the console's configured operator name (``by=None``);
when the action needs approval, the console must name a real operator, because "a second
person" means nothing without knowing who the first was.

Offices (``idsvc.staff.offices``): every action an operator asks for, approves or rejects is first
checked against their office by ``require_office``, the one place that rule is applied (the
desk's issuing, printing and photos call it too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.credentials.state import change_credential_state
from idsvc.errors import CorrectionRefused, InvalidOperator, NotPermitted
from idsvc.formats.hr_csv import EmploymentStatus
from idsvc.register import records as register
from idsvc.service import CredentialView, IdService
from idsvc.staff import approvals, offices, operators
from idsvc.staff.approvals import ApprovalView
from idsvc.staff.operators import Actor, Enrolment, LoginPolicy, LoginSession, OperatorView
from idsvc.staff.secrets import hash_password, read_seal_key
from idsvc.storage.desk_tables import DeskRow
from idsvc.storage.tables import LIVE_STATES, CredentialRow

OPERATOR_ROLES = frozenset({"admin"})
STATE_ROLES = frozenset({"issuer", "supervisor"})


@dataclass(frozen=True)
class Pending:
    """The answer to a sensitive action that now waits for a second person."""

    approval: ApprovalView


class Centre:
    def __init__(self, service: IdService) -> None:
        self.service = service
        self.settings = service.settings

    # -- configuration ----------------------------------------------------------------------
    def seal_key(self, *, create: bool = False) -> bytes:
        return read_seal_key(self.settings.resolved_operator_key_file, create=create)

    @cached_property
    def policy(self) -> LoginPolicy:
        s = self.settings
        return LoginPolicy(
            max_failed=s.operator_max_failed_logins,
            lockout=timedelta(minutes=s.operator_lockout_minutes),
            idle=timedelta(minutes=s.operator_session_idle_minutes),
            lifetime=timedelta(hours=s.operator_session_hours),
            password_cost=s.operator_password_cost,
        )

    @property
    def issuer_label(self) -> str:
        return f"idsvc {self.settings.issuer_name}"

    def needs_approval(self, action: str) -> bool:
        return action in self.settings.approval_actions

    def _console(self, by: Actor | None, action: str) -> str:
        if by is not None:
            return by.audit_name
        if self.needs_approval(action):
            raise NotPermitted(
                f"{action.replace('_', ' ')} needs a second person's approval here: "
                "act as an operator (--operator NAME --password-stdin --otp CODE)"
            )
        return self.settings.operator

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
        self.service._ready()
        with self.service.db.transaction() as session:
            refusal = refusal_in(session)  # recorded in the audit, committed before raising
        if refusal is not None:
            raise refusal

    def _hash(self, password: str) -> str:
        try:
            return hash_password(password, cost=self.settings.operator_password_cost)
        except ValueError as exc:
            raise InvalidOperator(str(exc)) from exc

    # -- logins -----------------------------------------------------------------------------
    def login(
        self, name: str, password: str, otp: str, *, now: datetime, desk: DeskRow | None = None
    ) -> LoginSession:
        key = self.seal_key()
        self.service._ready()
        with self.service.db.transaction() as session:
            outcome = operators.attempt_login(
                session,
                name=name,
                password=password,
                otp=otp,
                desk=desk,
                seal_key=key,
                policy=self.policy,
                now=now,
            )
        if not isinstance(outcome, LoginSession):
            raise outcome  # committed first: the failure counts towards the lockout
        return outcome

    def authenticate(self, name: str, password: str, otp: str, *, now: datetime) -> Actor:
        """A login for one console command: the session ends as soon as it is checked."""
        login = self.login(name, password, otp, now=now)
        with self.service.db.transaction() as session:
            operators.end_session(session, login.token, now=now)
        return login.actor

    def logout(self, token: str, *, now: datetime) -> None:
        with self.service.db.transaction() as session:
            operators.end_session(session, token, now=now)

    # -- operators --------------------------------------------------------------------------
    def has_operators(self) -> bool:
        self.service._ready()
        with self.service.db.transaction() as session:
            return bool(operators.list_operators(session))

    def list_operators(self) -> list[OperatorView]:
        self.service._ready()
        with self.service.db.transaction() as session:
            return operators.list_operators(session)

    def add_operator(
        self, name: str, *, role: str, office: str, password: str, by: Actor | None, now: datetime
    ) -> Enrolment | Pending:
        operators.validate_new_operator(name, role, office, password)
        params = {
            "op": "add",
            "role": role,
            "office": office,
            "password_hash": self._hash(password),
        }
        result = self._operator_change(name, params, by=by, now=now)
        assert not isinstance(result, OperatorView)  # adding always enrols a second factor
        return result

    def set_operator_enabled(
        self, name: str, *, enabled: bool, by: Actor | None, now: datetime
    ) -> Enrolment | Pending | OperatorView:
        return self._operator_change(
            name, {"op": "enable" if enabled else "disable"}, by=by, now=now
        )

    def reset_totp(self, name: str, *, by: Actor | None, now: datetime) -> Enrolment | Pending:
        result = self._operator_change(name, {"op": "reset_totp"}, by=by, now=now)
        assert not isinstance(result, OperatorView)
        return result

    def set_password(
        self, name: str, *, password: str, by: Actor | None, now: datetime
    ) -> Enrolment | Pending | OperatorView:
        params = {"op": "set_password", "password_hash": self._hash(password)}
        return self._operator_change(name, params, by=by, now=now)

    def _operator_change(
        self, name: str, params: dict[str, Any], *, by: Actor | None, now: datetime
    ) -> Enrolment | Pending | OperatorView:
        operators.check_name(name)
        if by is not None:
            operators.require_role(by, OPERATOR_ROLES, "change operators")
            self.require_office(by, "operator_change", name, now=now, params=params)
        key = self.seal_key(create=params["op"] == "add")
        self.service._ready()
        with self.service.db.transaction() as session:
            if by is not None and self.needs_approval("operator_change"):
                return Pending(
                    approvals.request(
                        session,
                        action="operator_change",
                        target=name,
                        params=params,
                        requester=by,
                        ttl=self._approval_ttl,
                        now=now,
                    )
                )
            if by is None and params["op"] == "add" and not operators.list_operators(session):
                actor = self.settings.operator  # the first operator: nobody could approve yet
            else:
                actor = self._console(by, "operator_change")
            return self._change_operator(session, name, params, actor, key, now)

    def _change_operator(
        self,
        session: Session,
        name: str,
        params: Mapping[str, Any],
        actor: str,
        key: bytes,
        now: datetime,
    ) -> Enrolment | OperatorView:
        op = params["op"]
        if op == "add":
            return operators.add_operator(
                session,
                name=name,
                role=params["role"],
                office=params["office"],
                password_hash=params["password_hash"],
                seal_key=key,
                issuer_label=self.issuer_label,
                actor=actor,
                now=now,
            )
        if op in ("enable", "disable"):
            return operators.set_enabled(
                session, name, enabled=op == "enable", actor=actor, now=now
            )
        if op == "reset_totp":
            return operators.reset_totp(
                session, name, seal_key=key, issuer_label=self.issuer_label, actor=actor, now=now
            )
        if op == "set_password":
            return operators.set_password(
                session, name, password_hash=params["password_hash"], actor=actor, now=now
            )
        raise NotPermitted(f"unknown operator change {op!r}")

    # -- approvals --------------------------------------------------------------------------
    @property
    def _approval_ttl(self) -> timedelta:
        return timedelta(hours=self.settings.approval_hours)

    def list_approvals(self, *, by: Actor, state: str | None, now: datetime) -> list[ApprovalView]:
        operators.require_role(by, operators.APPROVER_ROLES, "see approvals")
        self.service._ready()
        with self.service.db.transaction() as session:
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
            outcome, once = self._perform(session, action, target, params, actor, now)
            shown.append(once)
            return outcome

        self._office_check(
            by, lambda session: offices.approval_refusal(session, by, approval_id, now=now)
        )
        self.service._ready()
        with self.service.db.transaction() as session:
            view = approvals.approve(session, approval_id, checker=by, perform=perform, now=now)
        return view, shown[0] if shown else ""

    def reject(self, approval_id: str, *, by: Actor, reason: str, now: datetime) -> ApprovalView:
        self._office_check(
            by, lambda session: offices.approval_refusal(session, by, approval_id, now=now)
        )
        self.service._ready()
        with self.service.db.transaction() as session:
            return approvals.reject(session, approval_id, checker=by, reason=reason, now=now)

    def expire_approvals(self, *, now: datetime) -> int:
        self.service._ready()
        with self.service.db.transaction() as session:
            return approvals.expire_due(session, now=now)

    def _perform(
        self,
        session: Session,
        action: str,
        target: str,
        params: Mapping[str, Any],
        actor: str,
        now: datetime,
    ) -> tuple[str, str]:
        if action == "revoke":
            row = change_credential_state(
                session, target, "revoke", reason=params["reason"], actor=actor, now=now
            )
            return f"credential {row.id} revoked", ""
        if action == "reissue_after_loss":
            return self._declare_lost(session, target, params["reason"], actor, now), ""
        if action == "hr_correction":
            return self._correct_status(session, target, params, actor, now), ""
        if action == "key_rotation":
            return self._rotate(session, target, actor, now), ""
        if action == "operator_change":
            result = self._change_operator(
                session, target, params, actor, self.seal_key(create=False), now
            )
            if isinstance(result, Enrolment):
                return f"operator {target}: {params['op']} done", result.otpauth_uri
            return f"operator {target}: {params['op']} done", ""
        raise NotPermitted(f"unknown action {action!r}")

    def _declare_lost(
        self, session: Session, employee_id: str, reason: str, actor: str, now: datetime
    ) -> str:
        live = (
            session.execute(
                select(CredentialRow.id).where(
                    CredentialRow.employee_id == employee_id, CredentialRow.state.in_(LIVE_STATES)
                )
            )
            .scalars()
            .all()
        )
        for credential_id in live:
            change_credential_state(
                session, credential_id, "revoke", reason=f"lost: {reason}", actor=actor, now=now
            )
        return (
            f"{len(live)} credential(s) of {employee_id} revoked as lost; a new card may be issued"
        )

    def _correct_status(
        self,
        session: Session,
        employee_id: str,
        params: Mapping[str, Any],
        actor: str,
        now: datetime,
    ) -> str:
        # One set of rules for every correction: the register's (reason, dates, hash, feed).
        status_date = date.fromisoformat(params.get("status_date") or now.date().isoformat())
        old, new = register.correct_status(
            session,
            employee_id,
            params["status"],
            status_date=status_date,
            reason=str(params.get("reason", "")),
            actor=actor,
            now=now,
        )
        return f"{employee_id}: {old} -> {new}; credentials follow the new status"

    def _rotate(self, session: Session, issuer_slug: str, actor: str, now: datetime) -> str:
        old, new = self.service.rotate_key_in(
            session, issuer_slug=issuer_slug, actor=actor, now=now
        )
        return f"rotated: {old} retired, {new} active"

    # -- sensitive actions ------------------------------------------------------------------
    def _sensitive(
        self,
        action: str,
        target: str,
        params: dict[str, Any],
        *,
        by: Actor | None,
        roles: frozenset[str],
        now: datetime,
    ) -> tuple[str, str] | Pending:
        if by is not None:
            operators.require_role(by, roles, action.replace("_", " "))
            self.require_office(by, action, target, now=now, params=params)
        self.service._ready()
        with self.service.db.transaction() as session:
            if by is not None and self.needs_approval(action):
                return Pending(
                    approvals.request(
                        session,
                        action=action,
                        target=target,
                        params=params,
                        requester=by,
                        ttl=self._approval_ttl,
                        now=now,
                    )
                )
            actor = self._console(by, action)
            return self._perform(session, action, target, params, actor, now)

    def revoke(
        self, credential_id: str, *, reason: str, by: Actor | None, now: datetime
    ) -> CredentialView | Pending:
        if not reason.strip():
            raise NotPermitted("a reason is required")
        done = self._sensitive(
            "revoke", credential_id, {"reason": reason}, by=by, roles=STATE_ROLES, now=now
        )
        if isinstance(done, Pending):
            return done
        return self.service.credential(credential_id)

    def reissue_after_loss(
        self, employee_id: str, *, reason: str, by: Actor | None, now: datetime
    ) -> str | Pending:
        done = self._sensitive(
            "reissue_after_loss",
            employee_id,
            {"reason": reason},
            by=by,
            roles=approvals.ACTIONS["reissue_after_loss"],
            now=now,
        )
        return done if isinstance(done, Pending) else done[0]

    def correct_status(
        self,
        employee_id: str,
        *,
        status: str,
        reason: str,
        by: Actor | None,
        now: datetime,
        status_date: date | None = None,
    ) -> str | Pending:
        if status not in {s.value for s in EmploymentStatus}:
            raise NotPermitted(f"unknown employment status {status!r}")
        if len(reason.strip()) < register.MIN_REASON_CHARS:
            # Refuse at request time: an approver should never be handed an unusable request.
            raise CorrectionRefused(
                f"give the reason for the correction (at least {register.MIN_REASON_CHARS} "
                "characters)"
            )
        done = self._sensitive(
            "hr_correction",
            employee_id,
            {
                "status": status,
                "reason": reason,
                "status_date": (status_date or now.date()).isoformat(),
            },
            by=by,
            roles=approvals.ACTIONS["hr_correction"],
            now=now,
        )
        return done if isinstance(done, Pending) else done[0]

    def rotate_key(self, *, issuer_slug: str, by: Actor | None, now: datetime) -> str | Pending:
        done = self._sensitive(
            "key_rotation",
            issuer_slug,
            {},
            by=by,
            roles=approvals.ACTIONS["key_rotation"],
            now=now,
        )
        return done if isinstance(done, Pending) else done[0]
