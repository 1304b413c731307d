"""Issuers: one per ministry (or per country in a shared deployment), each with its own key ring.

A token names its issuer in ``iss``; trust is looked up by (``iss``, ``kid``), so a key of one
issuer never verifies a token claiming to come from another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from idsvc.audit import chain as audit
from idsvc.errors import NotInitialised, UnknownIssuer
from idsvc.storage.tables import IssuerRow
from keys.keyring import MANIFEST_NAME, KeyRing

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Issuer:
    id: int
    iss: str
    slug: str
    name: str
    ring: KeyRing

    @property
    def active_kid(self) -> str:
        return self.ring.active().kid


def check_slug(slug: str) -> str:
    if not _SLUG.match(slug):
        raise ValueError(f"issuer slug {slug!r} must be lowercase letters, digits and '-'")
    return slug


def register_issuer(
    session: Session, *, iss: str, slug: str, name: str, actor: str, now: datetime
) -> IssuerRow:
    """Add the issuer row if it is not there; return it either way."""
    row = session.execute(select(IssuerRow).where(IssuerRow.slug == check_slug(slug))).scalar()
    if row is not None:
        if row.iss != iss:
            raise ValueError(f"issuer {slug!r} already exists with iss {row.iss!r}")
        return row
    row = IssuerRow(iss=iss, slug=slug, name=name, created_at=now)
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="issuer.create",
        target_type="issuer",
        target_id=slug,
        details={"iss": iss},
    )
    return row


class KeyRings:
    """Opens issuers' key rings, re-reading one only when its files changed on disk.

    Opening a ring checks every entry (thumbprints, the CA certificate): worth doing once per
    change, not once per verification. The cache holds only public data.
    """

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir
        self._cache: dict[str, tuple[tuple[int, ...], KeyRing]] = {}

    def open(self, slug: str) -> KeyRing:
        directory = self.keys_dir / slug
        if not KeyRing.exists(directory):
            raise NotInitialised(
                f"no key ring for issuer {slug!r} in {directory}: run `idsvc init`"
            )
        stamp = tuple(
            value
            for name in (MANIFEST_NAME, "ca.pem")
            for st in [(directory / name).stat()]
            for value in (st.st_mtime_ns, st.st_size, st.st_ino)
        )
        cached = self._cache.get(slug)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        ring = KeyRing.open(directory)
        self._cache[slug] = (stamp, ring)
        return ring


class IssuerRecord(NamedTuple):
    id: int
    iss: str
    slug: str
    name: str


_ISSUERS = cast(Table, IssuerRow.__table__)
_ISSUER_BY_SLUG = select(_ISSUERS.c.id, _ISSUERS.c.iss, _ISSUERS.c.slug, _ISSUERS.c.name).where(
    _ISSUERS.c.slug == bindparam("slug")
)


class IssuerRecords:
    """The issuers' rows a process has read, by slug (``Infrastructure`` keeps one).

    A hit cannot be stale: an issuer's row never changes once written (``register_issuer``
    returns an existing row untouched, and no code updates or deletes one; credentials and
    status lists point at its id). A miss asks the database, so an issuer another process
    created since is found. The key ring is not kept here: ``KeyRings.open`` re-reads it when
    its files change (a rotation).
    """

    def __init__(self) -> None:
        self._by_slug: dict[str, IssuerRecord] = {}

    def get(self, session: Session, slug: str) -> IssuerRecord:
        known = self._by_slug.get(slug)
        if known is not None:
            return known
        row = session.connection().execute(_ISSUER_BY_SLUG, {"slug": slug}).one_or_none()
        if row is None:
            raise UnknownIssuer(slug)
        record = self._by_slug[slug] = IssuerRecord(row.id, row.iss, row.slug, row.name)
        return record


def load_issuer(
    session: Session, rings: KeyRings, slug: str, records: IssuerRecords | None = None
) -> Issuer:
    """The issuer ``slug`` with its key ring; ``records``: the process's rows already read."""
    record = (records or IssuerRecords()).get(session, slug)
    return Issuer(record.id, record.iss, record.slug, record.name, rings.open(slug))


def load_issuers(session: Session, rings: KeyRings) -> list[Issuer]:
    rows = session.execute(select(IssuerRow).order_by(IssuerRow.id)).scalars().all()
    return [Issuer(r.id, r.iss, r.slug, r.name, rings.open(r.slug)) for r in rows]
