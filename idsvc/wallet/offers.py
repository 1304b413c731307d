"""Credential offers with the pre-authorized code grant (OpenID4VCI 1.0 §4.1, §6.1), and the
access tokens they are redeemed for.

An offer is made at a desk or the console for one person who may hold the phone credential
(active, a stored photo, contract not ended). It carries a pre-authorized code (32 random
bytes, base64url) in the QR and a 6-digit transaction code read out separately, so a
photographed QR alone gets nothing. Both are stored only as SHA-256 (the transaction code
with the offer's id, so equal codes of two offers hash apart). An offer lives
``IDSVC_WALLET_OFFER_MINUTES`` and moves ``offered`` → ``redeemed`` (an access token was given)
→ ``issued`` (the credential was issued with that token); ``MAX_TX_ATTEMPTS`` wrong
transaction codes burn it (``burned``).

Every state change is one conditional UPDATE on the state it leaves (``... WHERE
state = 'offered'``) whose row count decides: two workers redeeming one code at once, or
spending one access token twice, get exactly one success between them.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Table, case, select, update
from sqlalchemy.orm import Session

from idsvc.audit import chain as audit
from idsvc.credentials.issuance import credential_expiry, eligible_servant
from idsvc.errors import HolderNotEligible, PhotoMissing, WalletOfferRefused, WalletRequestRefused
from idsvc.formats.openid4vci import offer_uri
from idsvc.register import photos
from idsvc.staff.secrets import new_token, token_hash
from idsvc.storage.bulk import changed_rows
from idsvc.storage.wallet_tables import WalletOfferRow
from idsvc.wallet.phone_credential import CONFIGURATIONS

TX_CODE_LENGTH: Final = 6
TX_CODE_DESCRIPTION: Final = "The 6-digit code the issuing desk read out to you"
MAX_TX_ATTEMPTS: Final = 5
ACCESS_TOKEN_TTL: Final = timedelta(minutes=5)
# What we hand out is 43 characters; a longer value was not made here (no hashing of megabytes).
MAX_CODE_CHARS: Final = 128

_OFFERS = cast(Table, WalletOfferRow.__table__)


@dataclass(frozen=True)
class Offer:
    """What the holder gets: the offer (QR or link) and, separately, the transaction code."""

    offer_id: str
    employee_id: str
    offer_uri: str
    tx_code: str
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """The answer of ``idsvc wallet offer --json`` and of the API: these three only."""
        return {
            "offer_uri": self.offer_uri,
            "tx_code": self.tx_code,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class AccessToken:
    """The token endpoint's answer (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


def _tx_hash(offer_id: str, tx_code: str) -> str:
    return token_hash(f"{offer_id}:{tx_code}")


def _refuse_offer(session: Session, employee_id: str, now: datetime) -> None:
    """Raise ``WalletOfferRefused`` unless the register lets the person hold the phone
    credential now: the card's own rules (active, contract not ended) and a stored photo
    (the credential carries it). The person stays locked until the transaction ends."""
    try:
        servant = eligible_servant(session, employee_id)
        # Only its refusal matters here: the credential's exp is decided when it is issued.
        credential_expiry(servant, now, timedelta(0))
    except HolderNotEligible as exc:
        raise WalletOfferRefused(f"no phone credential offer: {exc}") from None
    try:
        photos.photo_info(session, employee_id)
    except PhotoMissing:
        raise WalletOfferRefused(
            f"no phone credential offer: {employee_id} has no photo in the register, and the "
            "phone credential carries it: take one first (`idsvc photo`, or at a desk)"
        ) from None


def create_offer(
    session: Session,
    employee_id: str,
    *,
    credential_issuer: str,
    lifetime: timedelta,
    actor: str,
    now: datetime,
) -> Offer:
    """A new single-use offer for ``employee_id``; audited (``wallet.offer``) without either
    code. ``WalletOfferRefused`` (or ``UnknownEmployee``) when the person cannot have one."""
    _refuse_offer(session, employee_id, now)
    offer_id = str(uuid.uuid4())
    code = new_token()
    tx_code = "".join(secrets.choice("0123456789") for _ in range(TX_CODE_LENGTH))
    expires_at = now + lifetime
    uri = offer_uri(
        credential_issuer=credential_issuer,
        configuration_ids=list(CONFIGURATIONS),
        pre_authorized_code=code,
        tx_code_length=TX_CODE_LENGTH,
        tx_code_description=TX_CODE_DESCRIPTION,
    )
    session.add(
        WalletOfferRow(
            id=offer_id,
            employee_id=employee_id,
            code_hash=token_hash(code),
            tx_code_hash=_tx_hash(offer_id, tx_code),
            created_at=now,
            expires_at=expires_at,
            created_by=actor[:128],
            attempts=0,
            state="offered",
        )
    )
    audit.record(
        session,
        at=now,
        actor=actor,
        action="wallet.offer",
        target_type="civil_servant",
        target_id=employee_id,
        details={"offer_id": offer_id, "expires_at": expires_at.isoformat()},
    )
    return Offer(offer_id, employee_id, uri, tx_code, expires_at)


_INVALID_CODE = "the pre-authorized code is unknown, already used or expired"


def redeem(
    session: Session, *, code: str, tx_code: str | None, now: datetime
) -> AccessToken | WalletRequestRefused:
    """The token endpoint's work for one pre-authorized code. A refusal is *returned*, not
    raised, so that the caller commits what it counted (a wrong transaction code spends an
    attempt, the fifth burns the offer) before answering ``invalid_grant``."""
    if not code or len(code) > MAX_CODE_CHARS:
        return WalletRequestRefused("invalid_grant", _INVALID_CODE)
    row = session.execute(
        select(_OFFERS.c.id, _OFFERS.c.tx_code_hash).where(
            _OFFERS.c.code_hash == token_hash(code),
            _OFFERS.c.state == "offered",
            _OFFERS.c.expires_at > now,
        )
    ).first()
    if row is None:
        return WalletRequestRefused("invalid_grant", _INVALID_CODE)
    offer_id, tx_code_hash = row
    given = tx_code if tx_code is not None and len(tx_code) <= MAX_CODE_CHARS else ""
    if not hmac.compare_digest(_tx_hash(offer_id, given), tx_code_hash):
        return _wrong_tx_code(session, offer_id, now)
    token = new_token()
    won = _rowcount(
        session,
        update(_OFFERS)
        .where(_OFFERS.c.id == offer_id, _OFFERS.c.state == "offered", _OFFERS.c.expires_at > now)
        .values(
            state="redeemed",
            access_token_hash=token_hash(token),
            token_expires_at=now + ACCESS_TOKEN_TTL,
        ),
    )
    if not won:  # another worker redeemed it (or burned it) between our read and this write
        return WalletRequestRefused("invalid_grant", _INVALID_CODE)
    audit.record(
        session,
        at=now,
        actor="wallet",
        action="wallet.redeem",
        target_type="wallet_offer",
        target_id=offer_id,
        details={},
    )
    return AccessToken(token, int(ACCESS_TOKEN_TTL.total_seconds()))


def _wrong_tx_code(session: Session, offer_id: str, now: datetime) -> WalletRequestRefused:
    # One statement counts the attempt and burns at the limit: two wrong guesses at once are
    # both counted, and nobody gets a sixth.
    burn = _OFFERS.c.attempts + 1 >= MAX_TX_ATTEMPTS
    session.execute(
        update(_OFFERS)
        .where(_OFFERS.c.id == offer_id, _OFFERS.c.state == "offered")
        .values(
            attempts=_OFFERS.c.attempts + 1,
            state=case((burn, "burned"), else_=_OFFERS.c.state),
        )
    )
    state, attempts = session.execute(
        select(_OFFERS.c.state, _OFFERS.c.attempts).where(_OFFERS.c.id == offer_id)
    ).one()
    if state == "burned":
        audit.record(
            session,
            at=now,
            actor="wallet",
            action="wallet.offer_burned",
            target_type="wallet_offer",
            target_id=offer_id,
            details={"attempts": attempts},
        )
        return WalletRequestRefused(
            "invalid_grant",
            f"wrong transaction code {MAX_TX_ATTEMPTS} times: this offer is withdrawn; ask the "
            "desk for a new one",
        )
    left = MAX_TX_ATTEMPTS - attempts
    return WalletRequestRefused(
        "invalid_grant", f"wrong transaction code ({left} attempt{'s' * (left != 1)} left)"
    )


def _rowcount(session: Session, statement: Any) -> int:
    return changed_rows(session.execute(statement))


def spend_access_token(session: Session, access_token: str, now: datetime) -> WalletOfferRow:
    """The offer whose access token this is, moved to ``issued``: a token buys one credential.

    ``WalletRequestRefused("invalid_token")`` (RFC 6750 §3.1: expired, revoked or otherwise
    invalid) for an unknown or expired token and for one already spent, so a second credential
    request with the same token is a 401 like any other dead token. The caller's transaction
    rolls the spending back if the request then fails (a stale nonce lets the wallet retry)."""
    refused = WalletRequestRefused("invalid_token", "the access token is unknown, used or expired")
    if not access_token or len(access_token) > MAX_CODE_CHARS:
        raise refused
    hashed = token_hash(access_token)
    won = _rowcount(
        session,
        update(_OFFERS)
        .where(
            _OFFERS.c.access_token_hash == hashed,
            _OFFERS.c.state == "redeemed",
            _OFFERS.c.token_expires_at > now,
        )
        .values(state="issued"),
    )
    if not won:
        raise refused
    row = session.execute(
        select(WalletOfferRow).where(WalletOfferRow.access_token_hash == hashed)
    ).scalar_one()
    return row


def check_access_token(session: Session, access_token: str, now: datetime) -> None:
    """``invalid_token`` unless the token can still buy a credential (read only)."""
    live = (
        access_token
        and len(access_token) <= MAX_CODE_CHARS
        and session.execute(
            select(_OFFERS.c.id).where(
                _OFFERS.c.access_token_hash == token_hash(access_token),
                _OFFERS.c.state == "redeemed",
                _OFFERS.c.token_expires_at > now,
            )
        ).first()
    )
    if not live:
        raise WalletRequestRefused("invalid_token", "the access token is unknown, used or expired")
