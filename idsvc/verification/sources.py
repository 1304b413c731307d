"""What an offline verifier (the officials' web app) must download to verify without a network:
every issuer's ``iss`` with its key-set path, and every status list's URI.

Keys are public and the list URIs are inside every credential already, so none of this is
secret; the phone needs the whole set up front because in a province it may meet any card.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idsvc.storage.tables import IssuerRow, StatusListRow


@dataclass(frozen=True)
class IssuerSource:
    iss: str
    slug: str
    status_lists: tuple[str, ...]


def verifier_sources(session: Session) -> list[IssuerSource]:
    issuers = session.execute(select(IssuerRow).order_by(IssuerRow.id)).scalars().all()
    lists: dict[int, list[str]] = {row.id: [] for row in issuers}
    for issuer_id, uri in session.execute(
        select(StatusListRow.issuer_id, StatusListRow.uri).order_by(StatusListRow.id)
    ):
        lists.setdefault(issuer_id, []).append(uri)
    return [IssuerSource(row.iss, row.slug, tuple(lists[row.id])) for row in issuers]
