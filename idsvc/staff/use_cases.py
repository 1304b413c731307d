"""The staff feature: operators, their logins, and the approvals of maker-checker. One method
per command or route, one transaction each.

Operator changes are sensitive: they go through the maker-checker gate
(``idsvc.staff.maker_checker``), which performs them with ``perform_operator_change``, whether at
once or once approved. The first operator of a deployment is added from the console without
approval: nobody could approve yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

from idsvc.credentials.infrastructure import Infrastructure
from idsvc.errors import InvalidOperator, NotPermitted
from idsvc.staff import operators
from idsvc.staff.approvals import ApprovalView
from idsvc.staff.maker_checker import Done, MakerChecker, Pending
from idsvc.staff.operators import Actor, Enrolment, LoginPolicy, LoginSession, OperatorView
from idsvc.staff.secrets import hash_password, read_seal_key
from idsvc.storage.desk_tables import DeskRow

OPERATOR_ROLES = frozenset({"admin"})


class Staff:
    def __init__(self, infra: Infrastructure, gate: MakerChecker) -> None:
        self.infra = infra
        self.settings = infra.settings
        self.gate = gate

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
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
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
        self.logout(login.token, now=now)
        return login.actor

    def logout(self, token: str, *, now: datetime) -> None:
        with self.infra.db.transaction() as session:
            operators.end_session(session, token, now=now)

    # -- operators --------------------------------------------------------------------------
    def has_operators(self) -> bool:
        return bool(self.list_operators())

    def list_operators(self) -> list[OperatorView]:
        self.infra.require_ready()
        with self.infra.db.transaction() as session:
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
        adding = params["op"] == "add"
        self.seal_key(create=adding)  # the first operator creates the key that seals secrets

        def first_operator(session: Session) -> bool:
            return adding and not operators.list_operators(session)

        done = self.gate.act(
            "operator_change",
            name,
            params,
            by=by,
            roles=OPERATOR_ROLES,
            now=now,
            console_may_act=first_operator,
        )
        if isinstance(done, Pending):
            return done
        result: Enrolment | OperatorView = done.value
        return result

    # -- approvals --------------------------------------------------------------------------
    def list_approvals(self, *, by: Actor, state: str | None, now: datetime) -> list[ApprovalView]:
        return self.gate.list_approvals(by=by, state=state, now=now)

    def approve(self, approval_id: str, *, by: Actor, now: datetime) -> tuple[ApprovalView, str]:
        """Approve and perform; return the approval and what to show the approver once (the
        new operator's ``otpauth://`` URI for an operator added or reset, else "")."""
        return self.gate.approve(approval_id, by=by, now=now)

    def reject(self, approval_id: str, *, by: Actor, reason: str, now: datetime) -> ApprovalView:
        return self.gate.reject(approval_id, by=by, reason=reason, now=now)


def perform_operator_change(
    infra: Infrastructure,
    session: Session,
    name: str,
    params: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> Done:
    op = params["op"]
    key = read_seal_key(infra.settings.resolved_operator_key_file, create=False)
    label = f"idsvc {infra.settings.issuer_name}"
    result: Enrolment | OperatorView
    if op == "add":
        result = operators.add_operator(
            session,
            name=name,
            role=params["role"],
            office=params["office"],
            password_hash=params["password_hash"],
            seal_key=key,
            issuer_label=label,
            actor=actor,
            now=now,
        )
    elif op in ("enable", "disable"):
        result = operators.set_enabled(session, name, enabled=op == "enable", actor=actor, now=now)
    elif op == "reset_totp":
        result = operators.reset_totp(
            session, name, seal_key=key, issuer_label=label, actor=actor, now=now
        )
    elif op == "set_password":
        result = operators.set_password(
            session, name, password_hash=params["password_hash"], actor=actor, now=now
        )
    else:
        raise NotPermitted(f"unknown operator change {op!r}")
    once = result.otpauth_uri if isinstance(result, Enrolment) else ""
    return Done(f"operator {name}: {op} done", result, once)
