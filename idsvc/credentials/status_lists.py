"""Status lists kept in the database: index allocation and the signed ``statuslist+jwt``.

Indices are drawn at random (so a list position says nothing about issuance order) and never
reused: the (list, index) pair is unique on the credentials table, which keeps every row.
A list's bits are derived from its credentials' states at publication time.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idsvc.credentials.state import STATUS_OF
from idsvc.formats.jws import JwsSigner, sign_compact
from idsvc.formats.status_list import (
    STATUSLIST_TYP,
    StatusIndexError,
    StatusList,
    status_list_claims,
)
from idsvc.storage.tables import CredentialRow, StatusListRow

# Draws before a list counts as full; with a list at most ~90 % used, 64 misses in a row
# happen with probability < 0.9**64 ≈ 0.1 %.
_DRAWS = 64
_FULL_RATIO = 0.9


class StatusListNotFound(LookupError):
    pass


# Built once and run on the session's connection: allocation runs on every issuance, and the
# ORM's per-statement work (autoflush, events, entity loading) cost more than the queries.
_LISTS = cast(Table, StatusListRow.__table__)
_CREDENTIALS = cast(Table, CredentialRow.__table__)
_LATEST_LIST = (
    select(_LISTS.c.id, _LISTS.c.uri, _LISTS.c.size)
    .where(_LISTS.c.issuer_id == bindparam("issuer_id"))
    .order_by(_LISTS.c.id.desc())
    .limit(1)
)
_SLOT_HOLDER = select(_CREDENTIALS.c.id).where(
    _CREDENTIALS.c.status_list_id == bindparam("list_id"),
    _CREDENTIALS.c.status_idx == bindparam("idx"),
)


class _OpenList(NamedTuple):
    id: int
    uri: str
    size: int


def _latest_list(conn: Connection, issuer_id: int, prefix: str) -> _OpenList | None:
    """The issuer's newest list, if it still lives at the current public URL.

    A list keeps the URI it was created with (issued credentials carry it), so when the public
    URL has changed since, new credentials go to a new list at the new address instead of
    pointing verifiers at a host the ministry has left.
    """
    latest = conn.execute(_LATEST_LIST, {"issuer_id": issuer_id}).one_or_none()
    if latest is None or not latest.uri.startswith(prefix):
        return None
    return _OpenList(latest.id, latest.uri, latest.size)


def _new_list(session: Session, issuer_id: int, size: int, prefix: str, now: datetime) -> _OpenList:
    # The URI must not depend on an autoincrement value we do not know yet: use a random name.
    row = StatusListRow(
        issuer_id=issuer_id, uri=prefix + secrets.token_hex(8), size=size, created_at=now
    )
    session.add(row)
    session.flush()
    return _OpenList(row.id, row.uri, row.size)


def _free_index(conn: Connection, row: _OpenList, draws: int) -> int | None:
    for _ in range(draws):
        idx = secrets.randbelow(row.size)
        if conn.execute(_SLOT_HOLDER, {"list_id": row.id, "idx": idx}).first() is None:
            return idx
    return None


def allocate_index(
    session: Session, *, issuer_id: int, size: int, base_url: str, now: datetime
) -> tuple[int, int, str]:
    """Return (status list id, free random index, list URI) for a new credential.

    New credentials go to the issuer's newest list until it is ``_FULL_RATIO`` used. Counting
    a list's credentials reads a share of an index that grows with the list (up to 130,000
    entries), so the count is taken only when a draw lands on a taken index, which at a fill
    of f happens with probability f: a list still mostly free is never counted, and one that
    has reached the ratio is left at its first miss (only the newest list is ever drawn from).
    """
    prefix = f"{base_url.rstrip('/')}/status-lists/"
    session.flush()  # the connection's reads below must see this transaction's credentials
    conn = session.connection()
    latest = _latest_list(conn, issuer_id, prefix)
    if latest is not None:
        idx = _free_index(conn, latest, 1)
        if idx is None:
            used = conn.execute(
                select(func.count()).where(_CREDENTIALS.c.status_list_id == latest.id)
            ).scalar_one()
            if used < latest.size * _FULL_RATIO:
                idx = _free_index(conn, latest, _DRAWS - 1)
        if idx is not None:
            return latest.id, idx, latest.uri
    fresh = _new_list(session, issuer_id, size, prefix, now)
    idx = _free_index(conn, fresh, _DRAWS)
    if idx is None:
        # A brand-new list has every index free: reaching here means the database is inconsistent.
        raise RuntimeError("no free status-list index even in a new list")
    return fresh.id, idx, fresh.uri


SLOT_CONSTRAINT = "uq_credentials_status_slot"


def is_slot_clash(exc: IntegrityError) -> bool:
    """True when an insert lost a race for a status slot another transaction took first.

    ``allocate_index`` cannot see a concurrent transaction's uncommitted credential, so two
    issuances may draw the same index; the unique constraint lets only one of them in.
    """
    diag = getattr(exc.orig, "diag", None)
    if diag is not None:  # PostgreSQL names the constraint
        return getattr(diag, "constraint_name", None) == SLOT_CONSTRAINT
    return "credentials.status_list_id, credentials.status_idx" in str(exc.orig)


def list_by_name(session: Session, name: str) -> StatusListRow:
    # Names are ours (token_hex); anything else, e.g. a NUL that PostgreSQL text cannot hold,
    # is simply not a list, and never reaches SQL.
    if not name.isascii() or not name.isalnum() or len(name) > 64:
        raise StatusListNotFound(name[:64])
    row = session.execute(
        select(StatusListRow).where(
            StatusListRow.uri.endswith(f"/status-lists/{name}", autoescape=True)
        )
    ).scalar()
    if row is None or row.uri.rsplit("/", 1)[-1] != name:
        raise StatusListNotFound(name)
    return row


def build_list(session: Session, list_row: StatusListRow) -> StatusList:
    lst = StatusList(list_row.size, bits=2)
    for idx, state in session.execute(
        select(CredentialRow.status_idx, CredentialRow.state).where(
            CredentialRow.status_list_id == list_row.id
        )
    ):
        lst.set(idx, STATUS_OF[state])
    return lst


def status_at(session: Session, uri: str, idx: int) -> int:
    """The status value the published list holds for (uri, idx).

    Raises ``StatusListNotFound`` for an unknown list and ``StatusIndexError`` for an index at
    or beyond the list's size: such an index was never handed out, and checking it against the
    size first also keeps a number wider than the database's integer away from SQL.
    """
    list_row = session.execute(select(StatusListRow).where(StatusListRow.uri == uri)).scalar()
    if list_row is None:
        raise StatusListNotFound(uri)
    if not 0 <= idx < list_row.size:
        raise StatusIndexError(f"index {idx} outside a list of {list_row.size}")
    state = session.execute(
        select(CredentialRow.state).where(
            CredentialRow.status_list_id == list_row.id, CredentialRow.status_idx == idx
        )
    ).scalar()
    # An index no credential holds was never handed out; the published list has 0 there too.
    return int(STATUS_OF[state]) if state is not None else 0


def status_list_token(
    session: Session,
    list_row: StatusListRow,
    signer: JwsSigner,
    *,
    iss: str,
    now: datetime,
    ttl: int,
    lifetime: timedelta,
) -> str:
    lst = build_list(session, list_row)
    claims = status_list_claims(
        lst,
        uri=list_row.uri,
        iat=int(now.timestamp()),
        exp=int((now + lifetime).timestamp()),
        ttl=ttl,
        iss=iss,
    )
    return sign_compact(claims, signer, typ=STATUSLIST_TYP)
