"""Single-use nonces: a credential request's key proof (purpose ``vci``, OpenID4VCI's nonce
endpoint) and the holder page's proof of possession (purpose ``holder``).

A nonce is 256 random bits handed to the caller and stored only as its SHA-256, with its
purpose and a short life (``NONCE_TTL``). ``consume`` spends it with one conditional UPDATE
(``... WHERE used_at IS NULL AND expires_at > now``): when two workers race with the same
nonce, the database lets exactly one of them change the row, so a nonce is used once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Literal, cast

from sqlalchemy import Table, delete, update
from sqlalchemy.orm import Session

from idsvc.staff.secrets import new_token, token_hash
from idsvc.storage.bulk import changed_rows
from idsvc.storage.wallet_tables import WalletNonceRow

Purpose = Literal["vci", "holder"]
PURPOSES: Final = frozenset({"vci", "holder"})
NONCE_TTL: Final = timedelta(minutes=5)
# A nonce we hand out is 43 characters; anything much longer was not made here.
MAX_NONCE_CHARS: Final = 256

_NONCES = cast(Table, WalletNonceRow.__table__)


def issue(session: Session, purpose: Purpose, now: datetime) -> str:
    """A fresh nonce for ``purpose``, usable once until ``now + NONCE_TTL``."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown nonce purpose {purpose!r}")
    nonce = new_token()
    session.add(
        WalletNonceRow(
            nonce_hash=token_hash(nonce), purpose=purpose, expires_at=now + NONCE_TTL, used_at=None
        )
    )
    session.flush()
    return nonce


def consume(session: Session, nonce: str, purpose: Purpose, now: datetime) -> bool:
    """Spend ``nonce``: True if it was ours, for ``purpose``, unused and not expired; it is
    then used (for good once the transaction commits). False for anything else."""
    if type(nonce) is not str or not nonce or len(nonce) > MAX_NONCE_CHARS:
        return False
    session.flush()
    result = session.connection().execute(
        update(_NONCES)
        .where(
            _NONCES.c.nonce_hash == token_hash(nonce),
            _NONCES.c.purpose == purpose,
            _NONCES.c.used_at.is_(None),
            _NONCES.c.expires_at > now,
        )
        .values(used_at=now)
    )
    return changed_rows(result) == 1


def purge(session: Session, now: datetime) -> int:
    """Delete the nonces that expired (used or not): they can never be spent again."""
    result = session.connection().execute(delete(_NONCES).where(_NONCES.c.expires_at <= now))
    return changed_rows(result)
