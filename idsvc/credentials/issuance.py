"""Issuance as a protocol (docs/desks.md): begin → (card work at the desk) →
confirm. The centre signs; the desk never holds the issuer key; nothing is live until confirmed.

``issue_credential`` runs begin and confirm back to back for a credential with no card
(``idsvc issue EMPLOYEE_ID`` without ``--reader``). The card desk flow lives in
``idsvc.desk_client.cards``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Table, bindparam, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from idsvc.audit import chain as audit
from idsvc.bank import change_feed
from idsvc.credentials.handover import (
    PIV_ATTESTATION,
    KeyAttestation,
    PendingIssuance,
    verify_key_attestation,
)
from idsvc.credentials.issuers import Issuer
from idsvc.credentials.printed_qr import PrintedQr, make_printed_qr
from idsvc.credentials.status_lists import allocate_index, is_slot_clash
from idsvc.credentials.status_versions import note_state_change
from idsvc.errors import HolderNotEligible, IssuanceNotPending, KeyNotAttested
from idsvc.formats.credentials import CREDENTIAL_TYP, Holder, credential_claims
from idsvc.formats.jws import JwsSigner, sign_compact
from idsvc.register import photos
from idsvc.register.records import lock_servant_or_raise
from idsvc.storage.tables import LIVE_STATES, CivilServantRow, CredentialRow
from keys.ca import IssuerCA
from keys.jwk import public_jwk

PENDING_TTL = timedelta(minutes=15)
# Concurrent issuances that draw the same random status index: the loser draws again. Two
# clashes in a row are already unlikely (each needs a concurrent insert on the same index).
_SLOT_ATTEMPTS = 5
_SERIAL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


@dataclass(frozen=True)
class IssuancePolicy:
    """Deployment settings that shape a credential."""

    validity: timedelta
    status_list_size: int
    public_url: str
    qr_date_of_birth: bool = False  # IDSVC_QR_DATE_OF_BIRTH: anyone can read a printed QR
    # IDSVC_ATTESTATION_CA_FILE: the card makers' attestation CAs (PEM bundle). When set, an
    # attestation that comes with a card key must chain to one of them, and is recorded.
    attestation_ca_file: Path | None = None
    # IDSVC_REQUIRE_ATTESTATION: with CAs set, refuse a card key that comes without one
    # (a ministry still using cards that cannot attest turns it off during the changeover).
    require_attestation: bool = True


def attestation_roots(policy: IssuancePolicy) -> list[x509.Certificate] | None:
    """The trusted maker CAs, or None when the deployment does not ask for attestation."""
    if policy.attestation_ca_file is None:
        return None
    try:
        return x509.load_pem_x509_certificates(policy.attestation_ca_file.read_bytes())
    except (OSError, ValueError) as exc:
        # A centre told to check attestation must not quietly stop checking.
        raise KeyNotAttested(f"the attestation CA file cannot be read: {exc}") from None


def new_card_serial() -> str:
    return "".join(secrets.choice(_SERIAL_ALPHABET) for _ in range(12))


def holder_of(row: CivilServantRow, card_serial: str) -> Holder:
    return Holder(
        employee_id=row.employee_id,
        name=row.name_local,
        name_latin=row.name_latin,
        birthdate=row.date_of_birth,
        ministry=row.ministry,
        unit=row.unit,
        position=row.position,
        grade=row.grade,
        category=row.category,
        card_serial=card_serial,
    )


def _card_common_name(holder: Holder) -> str:
    # X.509 caps a CN at 64 characters; the employee id alone still names the holder.
    full = f"{holder.name_latin} ({holder.employee_id})"
    return full if len(full) <= 64 else holder.employee_id


@contextmanager
def _slot_savepoint(session: Session) -> Iterator[None]:
    """Run the block's insert inside a savepoint where one is needed and safe.

    SQLite serialises writers, so no concurrent issuance can take a slot there; and pysqlite
    turns an outermost SAVEPOINT into the transaction itself, whose RELEASE would commit.
    """
    if session.get_bind().dialect.name == "sqlite":
        yield
        return
    with session.begin_nested():
        yield


_CREDENTIALS = cast(Table, CredentialRow.__table__)
_STALE_PENDING = select(_CREDENTIALS.c.id).where(
    _CREDENTIALS.c.employee_id == bindparam("employee_id"),
    _CREDENTIALS.c.state == "pending",
    _CREDENTIALS.c.pending_until < bindparam("now"),
)
# The credential's insert, supersession and going live, on the connection: through the ORM
# each was a unit-of-work flush (the two updates were most of the cost of the confirm step's
# audit events, which flushed them).
_INSERT_CREDENTIAL = insert(_CREDENTIALS)
_LIVE_OF_KIND = (
    select(_CREDENTIALS.c.id, _CREDENTIALS.c.card_serial, _CREDENTIALS.c.status_list_id)
    .where(
        _CREDENTIALS.c.employee_id == bindparam("employee_id"),
        _CREDENTIALS.c.kind == bindparam("kind"),
        _CREDENTIALS.c.state.in_(LIVE_STATES),
    )
    .with_for_update()
)
_SUPERSEDE = (
    update(_CREDENTIALS)
    .where(_CREDENTIALS.c.id == bindparam("old_id"))
    .values(
        state="superseded",
        superseded_by=bindparam("new_id"),
        state_changed_at=bindparam("now"),
        state_reason=bindparam("reason"),
    )
)
_MAKE_LIVE = (
    update(_CREDENTIALS)
    .where(_CREDENTIALS.c.id == bindparam("new_id"), _CREDENTIALS.c.state == "pending")
    .values(state="live", pending_until=None, state_changed_at=bindparam("now"))
)


def _stored(session: Session, credential_id: str, **values: Any) -> None:
    """Tell the session's copy of a credential (if it holds one) what a Core UPDATE just
    stored, without marking it changed: the next flush must not write it again."""
    loaded = session.identity_map.get(Session.identity_key(CredentialRow, credential_id))
    if loaded is not None:
        for name, value in values.items():
            set_committed_value(loaded, name, value)


def _insert_credential(session: Session, row: CredentialRow) -> None:
    """INSERT ``row`` on the connection, then attach it to the session as the stored row.

    Through the ORM this was a unit-of-work flush per issuance (~10 % of its CPU). Columns the
    row leaves unset get what the ORM would have written: their scalar default, else NULL; so
    the attached object holds every column and reading one never goes back to the database.
    The flush hook of ``status_versions`` does not see this insert: the list is noted here.
    """
    given = inspect(row).dict
    values: dict[str, Any] = {}
    for column in _CREDENTIALS.columns:
        if column.key in given:
            values[column.key] = given[column.key]
            continue
        default = column.default
        if default is not None and not default.is_scalar:
            raise TypeError(f"credentials.{column.key}: a computed default must be given")
        values[column.key] = None if default is None else default.arg  # type: ignore[attr-defined]
        setattr(row, column.key, values[column.key])
    session.connection().execute(_INSERT_CREDENTIAL, values)
    note_state_change(session, row.status_list_id)
    make_transient_to_detached(row)
    session.add(row)


def add_in_free_slot(
    session: Session,
    *,
    issuer_id: int,
    policy: IssuancePolicy,
    now: datetime,
    build: Callable[[int, int, str], CredentialRow],
) -> CredentialRow:
    """Draw a free status-list index and add the credential ``build(list id, index, list
    URI)`` makes for it (signed: the index is in the token), drawing again when a concurrent
    issuance took the same slot first. The card's and the phone's issuance both go through it.
    """
    for attempt in range(1, _SLOT_ATTEMPTS + 1):
        list_id, idx, uri = allocate_index(
            session,
            issuer_id=issuer_id,
            size=policy.status_list_size,
            base_url=policy.public_url,
            now=now,
        )
        row = build(list_id, idx, uri)
        try:
            # A savepoint, so that losing the slot to a concurrent issuance undoes only this
            # insert; the index is part of the signed token, so a new draw means a new token.
            with _slot_savepoint(session):
                _insert_credential(session, row)
        except IntegrityError as exc:
            if attempt == _SLOT_ATTEMPTS or not is_slot_clash(exc):
                raise
            continue
        return row
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def _expire_stale_pending(session: Session, employee_id: str, *, actor: str, now: datetime) -> None:
    """Close the person's issuances that were never confirmed in time (a desk crashed)."""
    # On the connection, as Core: every issuance asks, and almost always finds none; through
    # the ORM the question cost as much as the credential's insert.
    session.flush()
    stale = (
        session.connection()
        .execute(_STALE_PENDING, {"employee_id": employee_id, "now": now})
        .scalars()
    )
    for credential_id in list(stale):
        abandon_issuance(session, credential_id, reason="expired unconfirmed", actor=actor, now=now)


def eligible_servant(session: Session, employee_id: str) -> CivilServantRow:
    """The person, if the register lets them hold a credential; raise otherwise. The person
    stays locked until the transaction ends: an HR change to them waits for this issuance."""
    servant = lock_servant_or_raise(session, employee_id)
    if servant.status != "active":
        raise HolderNotEligible(
            f"{employee_id} is {servant.status} in the register: no credential can be issued"
        )
    return servant


def credential_expiry(servant: CivilServantRow, now: datetime, validity: timedelta) -> datetime:
    """When a credential issued now expires: the policy's validity, and never after the last day
    of the holder's contract (the day ends at midnight UTC). ``HolderNotEligible`` once that day
    has passed: the sweep will end the person's employment, and a card must not wait for it."""
    expires_at = now + validity
    end = servant.contract_end
    if end is None:
        return expires_at
    if end < now.date():
        raise HolderNotEligible(
            f"{servant.employee_id}'s contract ended on {end.isoformat()}: no credential can be "
            "issued until HR records an extension"
        )
    return min(expires_at, datetime.combine(end + timedelta(days=1), time(), UTC))


def begin_issuance(
    session: Session,
    *,
    employee_id: str,
    issuer: Issuer,
    signer: JwsSigner,
    policy: IssuancePolicy,
    actor: str,
    now: datetime,
    card_key: EllipticCurvePublicKey | None = None,
    card_uuid: uuid.UUID | None = None,
    ca: IssuerCA | None = None,
    qr_photo: bool = False,
    attestation: KeyAttestation | None = None,
) -> PendingIssuance:
    """Sign a credential (and the card certificate when a card key is given), not yet live.

    The JWT and the printed QR are signed together, from the same record, credential id,
    status slot, expiry and key; ``qr_photo`` puts the holder's small photo in the QR. Where
    the policy names attestation CAs, the card key needs an ``attestation`` that checks out.
    """
    return _begin(
        session,
        employee_id=employee_id,
        issuer=issuer,
        signer=signer,
        policy=policy,
        actor=actor,
        now=now,
        card_key=card_key,
        card_uuid=card_uuid,
        ca=ca,
        qr_photo=qr_photo,
        attestation=attestation,
    )[0]


def _begin(
    session: Session,
    *,
    employee_id: str,
    issuer: Issuer,
    signer: JwsSigner,
    policy: IssuancePolicy,
    actor: str,
    now: datetime,
    card_key: EllipticCurvePublicKey | None,
    card_uuid: uuid.UUID | None,
    ca: IssuerCA | None,
    qr_photo: bool,
    attestation: KeyAttestation | None = None,
) -> tuple[PendingIssuance, CredentialRow]:
    """``begin_issuance``, also returning the pending row it added to the session."""
    attested_by = _check_attestation(policy, card_key, attestation, now=now)
    servant = eligible_servant(session, employee_id)
    expires_at = credential_expiry(servant, now, policy.validity)
    _expire_stale_pending(session, employee_id, actor=actor, now=now)
    credential_id = str(uuid.uuid4())
    card_serial = new_card_serial()
    holder = holder_of(servant, card_serial)
    cnf: dict[str, Any] | None = None
    cert_der: bytes | None = None
    if card_key is not None:
        if ca is None or card_uuid is None:
            raise ValueError("a card-bound credential needs the issuer CA and the card UUID")
        cnf = public_jwk(card_key)
        cert = ca.issue_card_certificate(
            card_key,
            common_name=_card_common_name(holder),
            card_uuid=card_uuid,
            serial=None,
            now=now,
            not_after=expires_at,
        )
        cert_der = cert.public_bytes(Encoding.DER)
    pending_until = now + PENDING_TTL
    face = photos.qr_photo(session, employee_id)[0] if qr_photo else None
    signed: list[PrintedQr] = []

    def build(list_id: int, idx: int, uri: str) -> CredentialRow:
        claims = credential_claims(
            iss=issuer.iss,
            jti=credential_id,
            holder=holder,
            issued_at=now,
            expires_at=expires_at,
            status_uri=uri,
            status_idx=idx,
            cnf_jwk=cnf,
        )
        token = sign_compact(claims, signer, typ=CREDENTIAL_TYP)
        printed = make_printed_qr(
            holder,
            sex=servant.sex,
            iss=issuer.iss,
            credential_id=credential_id,
            issued_at=now,
            expires_at=expires_at,
            status_uri=uri,
            status_idx=idx,
            signer=signer,
            birth_date=servant.date_of_birth if policy.qr_date_of_birth else None,
            face=face,
        )
        signed.append(printed)
        return CredentialRow(
            id=credential_id,
            issuer_id=issuer.id,
            employee_id=employee_id,
            kid=signer.kid,
            kind="card",
            state="pending",
            status_list_id=list_id,
            status_idx=idx,
            card_serial=card_serial,
            card_uuid=str(card_uuid) if card_uuid else None,
            cnf_jwk=cnf,
            card_certificate=cert_der,
            key_attestation=PIV_ATTESTATION if attested_by else None,
            key_attested_by=attested_by,
            token=token,
            qr_text=printed.text,
            issued_at=now,
            expires_at=expires_at,
            pending_until=pending_until,
            state_changed_at=now,
            issued_by=actor,
        )

    row = add_in_free_slot(session, issuer_id=issuer.id, policy=policy, now=now, build=build)
    token, printed = row.token, signed[-1]
    audit.record(
        session,
        at=now,
        actor=actor,
        action="credential.begin",
        target_type="credential",
        target_id=credential_id,
        details={
            "employee_id": employee_id,
            "kid": signer.kid,
            "card": card_key is not None,
            "key_attested": attested_by is not None,
        },
    )
    pending = PendingIssuance(
        credential_id=credential_id,
        employee_id=employee_id,
        token=token,
        card_serial=card_serial,
        card_uuid=str(card_uuid) if card_uuid else None,
        card_certificate_der=cert_der,
        holder=holder,
        pending_until=pending_until,
        issuer_code=issuer.slug[:15],
        qr=printed,
    )
    return pending, row


def _check_attestation(
    policy: IssuancePolicy,
    card_key: EllipticCurvePublicKey | None,
    attestation: KeyAttestation | None,
    *,
    now: datetime,
) -> str | None:
    """Who vouches that ``card_key`` was made on a card; None where the policy does not ask
    (with no trusted maker CA an attestation proves nothing, so it is not recorded) or lets an
    unattested key through. An attestation that is sent is always checked: a forged or borrowed
    one is refused even where none is required."""
    roots = attestation_roots(policy) if card_key is not None else None
    if card_key is None or roots is None:
        return None
    if attestation is None:
        if not policy.require_attestation:
            return None  # recorded as unattested: the credential's key_attestation stays empty
        raise KeyNotAttested(
            "this centre accepts only card keys the card proves it generated (PIV attestation);"
            " none was sent: use a card that supports attestation"
        )
    return verify_key_attestation(attestation, card_key, roots=roots, now=now)


def confirm_issuance(
    session: Session, credential_id: str, *, actor: str, now: datetime
) -> CredentialRow:
    """Make a pending credential live and supersede the holder's previous one."""
    # The holder first, then the credential: the order in which HR changes take them, so the
    # two never wait on each other in a cycle.
    holder_id = session.scalar(
        select(CredentialRow.employee_id).where(CredentialRow.id == credential_id)
    )
    holder = lock_servant_or_raise(session, holder_id) if holder_id is not None else None
    row = session.execute(
        select(CredentialRow).where(CredentialRow.id == credential_id).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.state != "pending":
        raise IssuanceNotPending(f"credential {credential_id} is not awaiting confirmation")
    if row.pending_until is not None and now > row.pending_until:
        raise IssuanceNotPending(
            f"issuance {credential_id} expired unconfirmed at {row.pending_until:%H:%M:%S}Z;"
            " start again"
        )
    if holder is None or holder.status != "active":
        raise HolderNotEligible(f"{row.employee_id} is no longer active: not confirmed")
    return go_live(session, row, actor=actor, now=now)


def go_live(session: Session, row: CredentialRow, *, actor: str, now: datetime) -> CredentialRow:
    """Supersede the holder's live credential of the same kind (a new card replaces the card,
    a new phone credential the phone's) and make ``row`` live; the caller has locked the
    holder, found them active, and checked that ``row`` is pending and not expired.

    The writes go to the connection in this order (the one-live index must see the old rows
    leave before the new one enters); each list whose bits they change is noted for the
    version bump at commit, which the ORM's flush hook would otherwise have done."""
    session.flush()  # the pending row (and anything else the caller added) first
    conn = session.connection()
    previous = conn.execute(_LIVE_OF_KIND, {"employee_id": row.employee_id, "kind": row.kind}).all()
    for old in previous:
        reason = f"superseded by {row.id}"
        conn.execute(_SUPERSEDE, {"old_id": old.id, "new_id": row.id, "now": now, "reason": reason})
        note_state_change(session, old.status_list_id)
        _stored(
            session,
            old.id,
            state="superseded",
            superseded_by=row.id,
            state_changed_at=now,
            state_reason=reason,
        )
        audit.record(
            session,
            at=now,
            actor=actor,
            action="credential.supersede",
            target_type="credential",
            target_id=old.id,
            details={"superseded_by": row.id},
        )
        change_feed.record_change(
            session,
            change_feed.credential_change(
                row.employee_id, old.id, old.card_serial, "superseded", reason
            ),
            now=now,
        )
    if conn.execute(_MAKE_LIVE, {"new_id": row.id, "now": now}).rowcount != 1:
        raise IssuanceNotPending(f"credential {row.id} is not awaiting confirmation")
    note_state_change(session, row.status_list_id)
    _stored(session, row.id, state="live", pending_until=None, state_changed_at=now)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="credential.issue",
        target_type="credential",
        target_id=row.id,
        details={"employee_id": row.employee_id, "kid": row.kid, "card_serial": row.card_serial},
    )
    return row


def abandon_issuance(
    session: Session, credential_id: str, *, reason: str, actor: str, now: datetime
) -> None:
    row = session.get(CredentialRow, credential_id)
    if row is None or row.state != "pending":
        return
    row.state = "abandoned"
    row.state_reason = reason[:255]
    row.state_changed_at = now
    audit.record(
        session,
        at=now,
        actor=actor,
        action="credential.abandon",
        target_type="credential",
        target_id=row.id,
        details={"reason": reason[:255]},
    )


def issue_credential(
    session: Session,
    *,
    employee_id: str,
    issuer: Issuer,
    signer: JwsSigner,
    policy: IssuancePolicy,
    actor: str,
    now: datetime,
    qr_photo: bool = False,
) -> CredentialRow:
    """Issue a credential with no card (begin and confirm in one transaction)."""
    _, row = _begin(
        session,
        employee_id=employee_id,
        issuer=issuer,
        signer=signer,
        policy=policy,
        actor=actor,
        now=now,
        card_key=None,
        card_uuid=None,
        ca=None,
        qr_photo=qr_photo,
    )
    # What confirm_issuance reads again for a desk's later call holds here by construction:
    # the holder was locked and found active by eligible_servant in this transaction, which
    # keeps the lock, and the row was added pending just now.
    return go_live(session, row, actor=actor, now=now)


__all__ = [
    "IssuancePolicy",
    "PendingIssuance",
    "abandon_issuance",
    "add_in_free_slot",
    "begin_issuance",
    "confirm_issuance",
    "go_live",
    "issue_credential",
]
