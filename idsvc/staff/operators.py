"""Operators: the people who work the desks, their second factor, lockout and sessions.

An operator is an account at the centre with one role (``issuer``: issue, re-issue, print;
``registrar``: HR corrections, photos; ``supervisor``: approve; ``admin``: operators, desks,
keys) and one office: a real office, whose people alone they act for, or ``NATIONAL_OFFICE``
(``*``), national scope (see ``idsvc.staff.offices``). A login needs the password (scrypt) *and* a
TOTP code (RFC 6238; a time step once used is refused afterwards); from a remote desk it also
needs that desk to be enrolled, enabled and of the operator's office (so a national operator
works at the centre console). A session is a random token the centre keeps only as a hash; it
ends after ``idle`` without use, ``lifetime`` after login, at logout, or when the operator is
disabled or their password or second factor is reset.

Wrong logins: a wrong name, a wrong password or code and a locked account all get the same
answer, after the same work (one scrypt, against a dummy hash for an unknown name; one audit
event), so the answers never tell which names exist. Only someone who gives both right factors
of a locked account is told it is locked. ``max_failed`` failures in a row lock the operator
for ``lockout``. A failure sent from a desk counts against that desk first: the desk is locked
after ``desk_login_limit`` failures (any names), one fewer than locks an operator, and once it
has reached that limit its failures stop counting against operators at all until a login
from it succeeds or an admin enables it again. One rogue desk cannot lock an operator out of
every desk, and it cannot keep guessing either.

Every function takes the caller's SQLAlchemy session (one transaction) and ``now``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idsvc.audit import chain as audit
from idsvc.errors import (
    DeskRefused,
    IdsvcError,
    InvalidOperator,
    LoginRefused,
    NotPermitted,
    OperatorExists,
    OperatorLocked,
    SessionInvalid,
    UnknownOperator,
)
from idsvc.formats.hr_csv import OFFICE_PATTERN, OFFICE_RULE
from idsvc.staff.secrets import (
    check_password_rules,
    dummy_hash,
    hash_password,
    new_token,
    password_matches,
    seal,
    token_hash,
    unseal,
)
from idsvc.staff.totp import TotpRejected, check_code, new_secret, provisioning_uri
from idsvc.storage.desk_tables import DeskRow, OperatorRow, OperatorSessionRow

ROLES = ("issuer", "registrar", "supervisor", "admin")
APPROVER_ROLES = frozenset({"supervisor", "admin"})
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
_OFFICE = re.compile(OFFICE_PATTERN, re.ASCII)
# National scope: an operator of this office acts for the people of every office, and for
# people whose office HR has not recorded. Never a desk's or a person's office.
NATIONAL_OFFICE = "*"
LOGIN_REFUSED = "login refused: wrong operator name, password or one-time code"
UNKNOWN_NAME = "(unknown operator)"  # audited instead of a name that is none (a typed password?)


@dataclass(frozen=True)
class LoginPolicy:
    max_failed: int
    lockout: timedelta
    idle: timedelta
    lifetime: timedelta
    password_cost: int


@dataclass(frozen=True)
class OperatorView:
    name: str
    role: str
    office: str
    enabled: bool
    locked_until: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: OperatorRow) -> OperatorView:
        return cls(row.name, row.role, row.office, row.enabled, row.locked_until, row.created_at)


@dataclass(frozen=True)
class Enrolment:
    """A new second factor: the ``otpauth://`` URI is shown once and never stored in clear."""

    operator: OperatorView
    otpauth_uri: str


@dataclass(frozen=True)
class Actor:
    """An authenticated operator, and the desk they work from (None at the centre console)."""

    name: str
    role: str
    office: str
    desk: str | None = None

    @property
    def audit_name(self) -> str:
        return self.name if self.desk is None else f"{self.name}@{self.desk}"

    @property
    def national(self) -> bool:
        return self.office == NATIONAL_OFFICE


@dataclass(frozen=True)
class LoginSession:
    token: str  # given to the operator once; the centre keeps its hash
    actor: Actor
    expires_at: datetime
    idle_minutes: int


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidOperator(
            "an operator name is 2-32 characters: lower-case letters, digits, '.', '_', '-'"
        )
    return name


def check_office(office: str) -> str:
    """A real office (a desk's, a person's): the format HR's ``office`` column has too."""
    if not _OFFICE.fullmatch(office):
        raise InvalidOperator(f"an office is {OFFICE_RULE}")
    return office


def check_operator_office(office: str) -> str:
    """An operator's office: a real office, or ``*`` for national scope."""
    if office == NATIONAL_OFFICE:
        return office
    if not _OFFICE.fullmatch(office):
        raise InvalidOperator(f"an office is {OFFICE_RULE}, or '*' for national scope")
    return office


def desk_login_limit(policy: LoginPolicy) -> int:
    """Failed logins that lock a desk: one fewer than lock an operator (at least one)."""
    return max(1, policy.max_failed - 1)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidOperator(f"role must be one of {', '.join(ROLES)}")
    return role


def _hash_new_password(password: str, cost: int) -> str:
    try:
        return hash_password(password, cost=cost)
    except ValueError as exc:
        raise InvalidOperator(str(exc)) from exc


def _row(session: Session, name: str, *, lock: bool = False) -> OperatorRow:
    query = select(OperatorRow).where(OperatorRow.name == name)
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        raise UnknownOperator(name)
    return row


def end_sessions(
    session: Session, now: datetime, *, operator_id: int | None = None, desk_id: int | None = None
) -> None:
    """End every open session of an operator, or every open session at a desk."""
    if (operator_id is None) == (desk_id is None):
        raise ValueError("name exactly one of operator_id and desk_id")
    owner = (
        OperatorSessionRow.operator_id == operator_id
        if operator_id is not None
        else OperatorSessionRow.desk_id == desk_id
    )
    session.execute(
        update(OperatorSessionRow)
        .where(owner, OperatorSessionRow.ended_at.is_(None))
        .values(ended_at=now)
    )


def validate_new_operator(name: str, role: str, office: str, password: str) -> None:
    """Every rule of ``add_operator`` that needs no database (for a request awaiting approval)."""
    check_name(name)
    _check_role(role)
    check_operator_office(office)
    try:
        check_password_rules(password)
    except ValueError as exc:
        raise InvalidOperator(str(exc)) from exc


def add_operator(
    session: Session,
    *,
    name: str,
    role: str,
    office: str,
    password_hash: str,
    seal_key: bytes,
    issuer_label: str,
    actor: str,
    now: datetime,
) -> Enrolment:
    """Create an operator; the password arrives already hashed (it may have waited for approval)."""
    check_name(name)
    _check_role(role)
    check_operator_office(office)
    exists = session.execute(select(OperatorRow.id).where(OperatorRow.name == name)).first()
    if exists is not None:
        raise OperatorExists(f"an operator named {name!r} exists already")
    secret = new_secret()
    row = OperatorRow(
        name=name,
        role=role,
        office=office,
        password_hash=password_hash,
        totp_sealed=seal(seal_key, secret, owner=name),
        totp_last_step=None,
        enabled=True,
        failed_logins=0,
        locked_until=None,
        created_at=now,
        changed_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="operator.add",
        target_type="operator",
        target_id=name,
        details={"role": role, "office": office},
    )
    return Enrolment(
        OperatorView.of(row), provisioning_uri(secret, account=name, issuer=issuer_label)
    )


def list_operators(session: Session) -> list[OperatorView]:
    rows = session.execute(select(OperatorRow).order_by(OperatorRow.name)).scalars()
    return [OperatorView.of(r) for r in rows]


def set_enabled(
    session: Session, name: str, *, enabled: bool, actor: str, now: datetime
) -> OperatorView:
    """Disable (ends the operator's sessions) or enable (also lifts a lockout)."""
    row = _row(session, name, lock=True)
    row.enabled = enabled
    row.changed_at = now
    if enabled:
        row.failed_logins = 0
        row.locked_until = None
    else:
        end_sessions(session, now, operator_id=row.id)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="operator.enable" if enabled else "operator.disable",
        target_type="operator",
        target_id=name,
    )
    return OperatorView.of(row)


def reset_totp(
    session: Session, name: str, *, seal_key: bytes, issuer_label: str, actor: str, now: datetime
) -> Enrolment:
    """A new second factor (lost phone); the old one and every open session stop working."""
    row = _row(session, name, lock=True)
    secret = new_secret()
    row.totp_sealed = seal(seal_key, secret, owner=name)
    row.totp_last_step = None
    row.changed_at = now
    end_sessions(session, now, operator_id=row.id)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="operator.reset_totp",
        target_type="operator",
        target_id=name,
    )
    return Enrolment(
        OperatorView.of(row), provisioning_uri(secret, account=name, issuer=issuer_label)
    )


def set_password(
    session: Session, name: str, *, password_hash: str, actor: str, now: datetime
) -> OperatorView:
    row = _row(session, name, lock=True)
    row.password_hash = password_hash
    row.failed_logins = 0
    row.locked_until = None
    row.changed_at = now
    end_sessions(session, now, operator_id=row.id)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="operator.set_password",
        target_type="operator",
        target_id=name,
    )
    return OperatorView.of(row)


def attempt_login(
    session: Session,
    *,
    name: str,
    password: str,
    otp: str,
    desk: DeskRow | None,
    seal_key: bytes,
    policy: LoginPolicy,
    now: datetime,
) -> LoginSession | IdsvcError:
    """Check a login; return the new session, or the refusal *after* recording it.

    A refusal is returned, not raised, so that the caller commits the failure count before
    raising it (a rolled-back counter would make the lockout useless).
    """
    desk_row = session.get(DeskRow, desk.id, with_for_update=True) if desk is not None else None
    if desk_row is not None and _locked(desk_row.login_locked_until, now):
        # Before the name is even looked at: the same answer for every name.
        return DeskRefused(
            f"desk {desk_row.name} is locked after too many failed logins from it until "
            f"{desk_row.login_locked_until:%Y-%m-%d %H:%M}Z (an admin can lift it: "
            f"`idsvc desks enable {desk_row.name}`)"
        )
    row = session.execute(
        select(OperatorRow).where(OperatorRow.name == name).with_for_update()
    ).scalar_one_or_none()
    # One scrypt whatever the name, so that the time taken does not tell a name exists.
    stored = row.password_hash if row is not None else dummy_hash(policy.password_cost)
    step: int | None = None
    if password_matches(password, stored) and row is not None:
        try:
            secret = unseal(seal_key, row.totp_sealed, owner=row.name)
            step = check_code(secret, otp, now=now, last_used_step=row.totp_last_step)
        except TotpRejected:
            step = None
    if row is None or step is None or _locked(row.locked_until, now):
        if row is not None and step is not None:
            # Both factors right: the owner may learn of the lockout (a guesser would need
            # the password and the current code too), and the code is spent.
            row.totp_last_step = step
            return OperatorLocked(
                f"operator {name} is locked after too many failed logins until "
                f"{row.locked_until:%Y-%m-%d %H:%M}Z (an admin can lift it: "
                "`idsvc operators enable`)"
            )
        _record_failure(session, row, desk_row, policy, now)
        return LoginRefused(LOGIN_REFUSED)
    # The factors are right: from here on, refusals say why (they leak nothing guessable).
    row.totp_last_step = step
    row.failed_logins = 0
    row.locked_until = None
    if not row.enabled:
        return NotPermitted(f"operator {name} is disabled")
    if desk_row is not None:
        if not desk_row.enabled or desk_row.key_thumbprint is None:
            return NotPermitted(f"desk {desk_row.name} is not enrolled and enabled")
        if desk_row.office != row.office:
            return NotPermitted(
                f"operator {name} belongs to office {row.office!r}, desk {desk_row.name} to "
                f"{desk_row.office!r}: work from a desk of your own office"
            )
        desk_row.failed_logins = 0
    token = new_token()
    expires_at = now + policy.lifetime
    session.add(
        OperatorSessionRow(
            token_hash=token_hash(token),
            operator_id=row.id,
            desk_id=desk_row.id if desk_row is not None else None,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
            ended_at=None,
        )
    )
    actor = Actor(row.name, row.role, row.office, desk_row.name if desk_row is not None else None)
    audit.record(
        session,
        at=now,
        actor=actor.audit_name,
        action="operator.login",
        target_type="operator",
        target_id=name,
        details={"desk": actor.desk},
    )
    return LoginSession(token, actor, expires_at, int(policy.idle.total_seconds() // 60))


def _locked(until: datetime | None, now: datetime) -> bool:
    return until is not None and now < until


def _record_failure(
    session: Session,
    row: OperatorRow | None,
    desk_row: DeskRow | None,
    policy: LoginPolicy,
    now: datetime,
) -> None:
    """Count a failed login against the desk it came from, then (within the desk's share)
    against the operator, and audit it: the same writes whether or not the name exists."""
    details: dict[str, object] = {}
    counts_for_operator = row is not None and not _locked(row.locked_until, now)
    if desk_row is not None:
        limit = desk_login_limit(policy)
        desk_row.failed_logins += 1
        details["desk"] = desk_row.name
        details["desk_failed_in_a_row"] = desk_row.failed_logins
        if desk_row.failed_logins > limit:
            counts_for_operator = False  # this desk has had its share: it alone pays now
        if desk_row.failed_logins >= limit:
            desk_row.login_locked_until = now + policy.lockout
            details["desk_locked_until"] = desk_row.login_locked_until.isoformat()
    if row is not None and counts_for_operator:
        row.failed_logins += 1
        details["failed_in_a_row"] = row.failed_logins
        if row.failed_logins >= policy.max_failed:
            row.locked_until = now + policy.lockout
            row.failed_logins = 0
            details["locked_until"] = row.locked_until.isoformat()
    target = row.name if row is not None else UNKNOWN_NAME
    audit.record(
        session,
        at=now,
        actor=target,
        action="operator.login_failed",
        target_type="operator",
        target_id=target,
        details=details,
    )


def actor_of_session(
    session: Session, token: str, *, desk: DeskRow | None, policy: LoginPolicy, now: datetime
) -> Actor:
    """The operator behind a session token, used now from ``desk``; refreshes the idle timer."""
    found = session.execute(
        select(OperatorSessionRow, OperatorRow)
        .join(OperatorRow, OperatorRow.id == OperatorSessionRow.operator_id)
        .where(OperatorSessionRow.token_hash == token_hash(token))
    ).first()
    if found is None:
        raise SessionInvalid("not signed in (unknown session): log in again")
    row, operator = found
    if row.ended_at is not None or not operator.enabled:
        raise SessionInvalid("the session has ended: log in again")
    if now >= row.expires_at or now - row.last_seen_at > policy.idle:
        raise SessionInvalid("the session has expired: log in again")
    if row.desk_id != (desk.id if desk is not None else None):
        raise SessionInvalid("this session belongs to another desk: log in again here")
    row.last_seen_at = now
    return Actor(operator.name, operator.role, operator.office, desk.name if desk else None)


def end_session(session: Session, token: str, *, now: datetime) -> None:
    session.execute(
        update(OperatorSessionRow)
        .where(OperatorSessionRow.token_hash == token_hash(token))
        .values(ended_at=now)
    )


def require_role(actor: Actor, roles: frozenset[str] | set[str], what: str) -> None:
    if actor.role not in roles:
        raise NotPermitted(
            f"operator {actor.name} ({actor.role}) may not {what}: "
            f"needs {' or '.join(sorted(roles))}"
        )
