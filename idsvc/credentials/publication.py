"""The public documents every verifier polls (status lists, JWKS), kept as served, per process.

A phone or a bank revalidates these documents all day; building them per request cost as much
for a 304 as for a 200, and re-signed the status list each time (an HSM operation per poll).

Status lists: a signed token is kept per list with the list's content version
(``idsvc.credentials.status_versions``) and its minute-aligned ``iat``. A request reads the version
(one
indexed SELECT of the list row) and re-signs only when the version or the minute moved. A
revocation therefore appears in the first token served after its commit: the version read
follows the commit, and a changed version is a miss. Memory, not a shared table: a table row
would need the same version read plus a write per re-signing and a lock between workers, to
save one signature per worker per minute; each worker still produces the same payload (and so
the same ETag) because ``iat`` is the minute and the content is the same.

When the database is down, the last token a process signed is served until its ``exp``: it is
exactly what a verifier would hold in its cache, and verifiers judge freshness by its
``iat``/``ttl``, so an old token is never mistaken for a fresh one, while a 503
would leave a verifier without a status list at all. No state can change while the database
is down, so that token is still the current content.

JWKS: kept per issuer with the key ring it came from; ``KeyRings.open`` returns another ring
object once the ring's files changed (rotation), which makes a miss. A known issuer's JWKS
needs no database read (issuers are never removed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from idsvc.credentials import issuers
from idsvc.credentials.status_lists import list_by_name
from idsvc.storage.db import Database, DatabaseUnavailable
from idsvc.storage.tables import StatusListRow
from keys.keyring import KeyRing


@dataclass(frozen=True)
class Published:
    body: bytes
    # Names the content, not the bytes: a status list re-signed in another worker has another
    # ECDSA signature over the same header and payload, and the same tag.
    tag: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class _SignedList:
    version: int
    iat: datetime
    document: Published


def _tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class StatusListTokens:
    def __init__(self, lifetime: timedelta) -> None:
        self._lifetime = lifetime
        self._latest: dict[str, _SignedList] = {}

    def token(
        self,
        db: Database,
        name: str,
        *,
        now: datetime,
        sign: Callable[[Session, StatusListRow], str],
    ) -> Published:
        """The list's token for ``now`` (minute-aligned by the caller), signed by ``sign`` only
        when no token of this content version and minute is kept."""
        try:
            with db.transaction() as session:
                row = list_by_name(session, name)
                kept = self._latest.get(name)
                if kept is not None and kept.version == row.version and kept.iat == now:
                    return kept.document
                token = sign(session, row)
                version = row.version
        except DatabaseUnavailable:
            kept = self._latest.get(name)
            expires = kept.document.expires_at if kept is not None else None
            if kept is None or expires is None or now >= expires:
                raise
            return kept.document
        document = Published(
            token.encode(), _tag(token.rsplit(".", 1)[0].encode()), now + self._lifetime
        )
        # Two threads may sign the same version at once: either token is right. A slower
        # thread storing an older version only costs a re-signing at the next request.
        self._latest[name] = _SignedList(version, now, document)
        return document


class JwksDocuments:
    def __init__(self) -> None:
        self._latest: dict[str, tuple[KeyRing, Published]] = {}

    def document(self, db: Database, rings: issuers.KeyRings, slug: str) -> Published:
        kept = self._latest.get(slug)
        if kept is not None:
            ring = rings.open(slug)
            if ring is kept[0]:
                return kept[1]
        else:
            with db.transaction() as session:
                ring = issuers.load_issuer(session, rings, slug).ring
        # The bytes JSONResponse would send, so the ETag names what the client received.
        body = json.dumps(
            ring.jwks(), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()
        document = Published(body, _tag(body))
        self._latest[slug] = (ring, document)
        return document
