"""Remote issuance desks: registration at the centre, enrolment of the desk's key, and the
check of every signed request a desk sends.

A desk is registered by an admin (``desks add NAME --office``), which gives a one-time
enrolment code (stored hashed, expiring). On the desk machine ``idsvc desk enrol`` makes a
P-256 key pair and sends the public key with the code, signed with the new key (proof of
possession). The centre records the key against the desk: from then on the registration *is*
the certificate. Requests are signed per ``idsvc.formats.desk_proof``; disabling the desk
refuses its very next request, with no revocation list to distribute.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from idsvc.audit import chain as audit
from idsvc.errors import (
    DeskExists,
    DeskRefused,
    DeskRequestInvalid,
    EnrolmentRefused,
    InvalidOperator,
    UnknownDesk,
)
from idsvc.formats.desk_proof import MAX_SKEW, ProofInvalid, read_proof
from idsvc.staff.operators import check_office, end_sessions
from idsvc.staff.secrets import token_hash
from idsvc.storage.desk_tables import DeskNonceRow, DeskRow
from keys.errors import KeysError
from keys.jwk import PublicKey, public_jwk, public_key_from_jwk, thumbprint

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
ENROL_REFUSED = "enrolment refused: wrong, used or expired enrolment code"


@dataclass(frozen=True)
class DeskRequest:
    """What the centre needs from one HTTP request to check its desk proof."""

    proof: str | None
    method: str
    path: str
    body: bytes


@dataclass(frozen=True)
class DeskView:
    name: str
    office: str
    enabled: bool
    enrolled: bool
    key_thumbprint: str | None
    enrol_code_expires_at: datetime | None

    @classmethod
    def of(cls, row: DeskRow) -> DeskView:
        return cls(
            row.name,
            row.office,
            row.enabled,
            row.key_thumbprint is not None,
            row.key_thumbprint,
            row.enrol_code_expires_at if row.enrol_code_hash else None,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "office": self.office,
            "enabled": self.enabled,
            "enrolled": self.enrolled,
            "key_thumbprint": self.key_thumbprint,
        }


def check_desk_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidOperator(
            "a desk name is 2-64 characters: lower-case letters, digits, '.', '_', '-'"
        )
    return name


def _new_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(20))  # 100 bits
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


def _normal_code(code: str) -> str:
    return code.strip().upper().replace("-", "").replace(" ", "")


def _row(session: Session, name: str) -> DeskRow:
    row = session.execute(
        select(DeskRow).where(DeskRow.name == name).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise UnknownDesk(name)
    return row


def add_desk(
    session: Session, *, name: str, office: str, ttl: timedelta, actor: str, now: datetime
) -> tuple[DeskView, str]:
    """Register a desk; return it and its one-time enrolment code (shown once)."""
    check_desk_name(name)
    check_office(office)
    if session.execute(select(DeskRow.id).where(DeskRow.name == name)).first() is not None:
        raise DeskExists(f"a desk named {name!r} exists already")
    code = _new_code()
    row = DeskRow(
        name=name,
        office=office,
        enabled=True,
        enrol_code_hash=token_hash(_normal_code(code)),
        enrol_code_expires_at=now + ttl,
        created_at=now,
        changed_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="desk.add",
        target_type="desk",
        target_id=name,
        details={"office": office},
    )
    return DeskView.of(row), code


def new_enrolment_code(
    session: Session, name: str, *, ttl: timedelta, actor: str, now: datetime
) -> str:
    """A fresh code for a desk whose machine was replaced: its old key stops working now."""
    row = _row(session, name)
    code = _new_code()
    row.enrol_code_hash = token_hash(_normal_code(code))
    row.enrol_code_expires_at = now + ttl
    row.public_jwk = None
    row.key_thumbprint = None
    row.enrolled_at = None
    row.changed_at = now
    end_sessions(session, now, desk_id=row.id)
    audit.record(
        session, at=now, actor=actor, action="desk.reenrol", target_type="desk", target_id=name
    )
    return code


def list_desks(session: Session) -> list[DeskView]:
    return [
        DeskView.of(r) for r in session.execute(select(DeskRow).order_by(DeskRow.name)).scalars()
    ]


def set_enabled(
    session: Session, name: str, *, enabled: bool, actor: str, now: datetime
) -> DeskView:
    row = _row(session, name)
    row.enabled = enabled
    row.changed_at = now
    if enabled:  # also lifts a lockout for failed logins (idsvc.staff.operators)
        row.failed_logins, row.login_locked_until = 0, None
    else:
        end_sessions(session, now, desk_id=row.id)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="desk.enable" if enabled else "desk.disable",
        target_type="desk",
        target_id=name,
    )
    return DeskView.of(row)


def enrol(
    session: Session,
    *,
    code: str,
    jwk: dict[str, Any],
    request: DeskRequest,
    now: datetime,
) -> DeskView:
    """Record the desk's public key, if the code is right and the request is signed with it.

    The code alone names the desk (100 random bits, looked up by its hash), so the desk
    machine needs nothing but the centre's address and the code.
    """
    try:
        key = public_key_from_jwk(jwk)
        if public_jwk(key)["kty"] != "EC":
            raise EnrolmentRefused("a desk key is EC P-256")
        kid = thumbprint(jwk)
    except KeysError as exc:
        raise EnrolmentRefused(f"the desk key is not a usable P-256 public JWK ({exc})") from exc
    _check_proof(request, lambda k: key if k == kid else None, now)
    row = session.execute(
        select(DeskRow)
        .where(DeskRow.enrol_code_hash == token_hash(_normal_code(code)))
        .with_for_update()
    ).scalar_one_or_none()
    if row is None or row.enrol_code_expires_at is None or now > row.enrol_code_expires_at:
        raise EnrolmentRefused(ENROL_REFUSED)
    name = row.name
    if not row.enabled:
        raise DeskRefused(f"desk {name} is disabled")
    taken = session.execute(select(DeskRow.id).where(DeskRow.key_thumbprint == kid)).first()
    if taken is not None:
        raise EnrolmentRefused("this key is already enrolled for a desk: make a new one")
    row.public_jwk = public_jwk(key)
    row.key_thumbprint = kid
    row.enrolled_at = now
    row.enrol_code_hash = None  # one use only
    row.enrol_code_expires_at = None
    row.changed_at = now
    audit.record(
        session,
        at=now,
        actor=f"desk:{name}",
        action="desk.enrol",
        target_type="desk",
        target_id=name,
        details={"key_thumbprint": kid},
    )
    return DeskView.of(row)


def _check_proof(request: DeskRequest, key_for: Any, now: datetime) -> tuple[str, str]:
    if not request.proof:
        raise DeskRequestInvalid("request not signed: the Desk-Proof header is missing")
    try:
        proof = read_proof(
            request.proof,
            key_for=key_for,
            method=request.method,
            path=request.path,
            body=request.body,
            now=now,
        )
    except ProofInvalid as exc:
        raise DeskRequestInvalid(str(exc)) from exc
    return proof.thumbprint, proof.jti


def desk_of_request(session: Session, request: DeskRequest, *, now: datetime) -> DeskRow:
    """The enrolled, enabled desk that signed ``request``; its ``jti`` is spent here."""
    desks: dict[str, DeskRow | None] = {}

    def key_for(kid: str) -> PublicKey | None:
        row = session.execute(
            select(DeskRow).where(DeskRow.key_thumbprint == kid)
        ).scalar_one_or_none()
        desks[kid] = row
        if row is None or row.public_jwk is None:
            return None
        return public_key_from_jwk(row.public_jwk)

    try:
        kid, jti = _check_proof(request, key_for, now)
    except DeskRequestInvalid as exc:
        if desks and None in desks.values():
            raise DeskRefused(
                "this desk is not enrolled at the centre (unknown key): run `idsvc desk enrol`"
            ) from exc
        raise
    desk = desks[kid]
    assert desk is not None
    if not desk.enabled:
        raise DeskRefused(f"desk {desk.name} is disabled at the centre: ask an admin")
    # Spent request ids are kept while their timestamps could still pass the skew check.
    session.execute(
        delete(DeskNonceRow).where(DeskNonceRow.seen_at < now - timedelta(seconds=3 * MAX_SKEW))
    )
    seen = session.execute(
        select(DeskNonceRow.id).where(DeskNonceRow.desk_id == desk.id, DeskNonceRow.jti == jti)
    ).first()
    if seen is not None:
        raise DeskRequestInvalid("replayed desk request (its jti was used before)")
    if not _spend(session, desk.id, jti, now):  # the same proof arrived twice at once
        raise DeskRequestInvalid("replayed desk request (its jti was used before)")
    return desk


def _spend(session: Session, desk_id: int, jti: str, now: datetime) -> bool:
    """Record the request id; False if another request spent it first (unique desk + jti).

    ``ON CONFLICT DO NOTHING`` instead of catching the IntegrityError in a savepoint: pysqlite
    emits no BEGIN of its own before a SAVEPOINT, so a savepoint there is only safe while some
    other write happened to open the transaction first (SQLAlchemy's "pysqlite savepoint"
    recipe). Both databases have the clause; PostgreSQL waits for a concurrent insert of the
    same key to commit, then does nothing.
    """
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    statement = (
        insert(DeskNonceRow)
        .values(desk_id=desk_id, jti=jti, seen_at=now)
        .on_conflict_do_nothing(index_elements=["desk_id", "jti"])
        .returning(DeskNonceRow.id)
    )
    return session.execute(statement).first() is not None
