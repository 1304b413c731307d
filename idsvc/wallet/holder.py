"""The holder's own page: a few minutes of access to one's own record, opened with the phone
credential itself. Nothing to remember: the proof is possession of the credential's key.

1. The phone asks for a nonce (``POST /v1/holder/nonce``, purpose ``holder``, single use).
2. It presents its phone credential with a key-binding JWT whose ``aud`` is
   ``{public_url}/v1/holder`` (``holder_audience``) and whose ``nonce`` is that nonce. The
   presentation is checked by the function that checks it for an official
   (``idsvc.verification.presented``: issuer signature by ``kid``, disclosures, key binding,
   validity, status list, HR status; ``check_presentation``); the nonce is consumed by one
   conditional UPDATE, so a captured presentation cannot open a second session; and the
   credential must be a live ``phone`` credential of the register under its ``jti``, issued to
   the person it names (a revoked, suspended or superseded one opens nothing).
3. The answer is a session token: 32 random bytes, stored only as its SHA-256, valid for
   ``SESSION_LIFETIME``. Every use checks again that the credential is still live, so a phone
   reported lost is shut out at once, not when the session ends.

What the page shows (``record_view``) is the register's row as it is now, never the national
ID number; the person's credentials (``credential_views``); their who-checked log as
``check_view`` words it (the caller's kind and name, never an anonymous caller's address).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idsvc.audit.who_checked import CheckView
from idsvc.errors import (
    HolderCredentialNotLive,
    HolderNonceInvalid,
    HolderProofInvalid,
    HolderSessionInvalid,
)
from idsvc.staff.secrets import new_token, token_hash
from idsvc.storage.bulk import changed_rows
from idsvc.storage.tables import CivilServantRow, CredentialRow
from idsvc.storage.wallet_tables import HolderSessionRow
from idsvc.verification.presented import verify_presentation
from idsvc.verification.rules import HolderSource, Reason, StatusSource, TrustStore
from idsvc.wallet import nonces
from keys.errors import KeysError
from keys.jwk import b64url_decode

HOLDER_PATH: Final = "/v1/holder"
NONCE_PURPOSE: Final = "holder"
SESSION_LIFETIME: Final = timedelta(minutes=5)
PHONE_KIND: Final = "phone"
# Reasons that say the presentation is not the holder's proof (rather than a credential that
# is genuine but not valid now).
_NOT_GENUINE: Final = frozenset(
    {Reason.MALFORMED, Reason.UNKNOWN_KEY, Reason.BAD_SIGNATURE, Reason.HOLDER_BINDING_INVALID}
)
_MAX_TOKEN: Final = 128  # a session token is 43 characters; anything longer is not one


def holder_audience(public_url: str) -> str:
    """The ``aud`` a key-binding JWT must carry to open a session: ``{public_url}/v1/holder``."""
    return public_url.rstrip("/") + HOLDER_PATH


@dataclass(frozen=True)
class Holder:
    """Who a session belongs to."""

    employee_id: str
    credential_id: str


@dataclass(frozen=True)
class HolderSession:
    token: str
    expires_at: datetime
    holder: Holder


@dataclass(frozen=True)
class CheckedPresentation:
    """A presentation whose issuer signature, disclosures and key binding verified."""

    iss: str
    credential_id: str
    employee_id: str
    nonce: str


def _kb_nonce(kb_jwt: str) -> str:
    """The ``nonce`` a KB-JWT claims, read before its signature is checked (the check then
    holds it to exactly this value, and the store to one we issued, once)."""
    try:
        payload = json.loads(b64url_decode(kb_jwt.split(".")[1]))
    except (ValueError, IndexError, KeysError):  # JSONDecodeError and UnicodeError are ValueErrors
        raise HolderProofInvalid("the key-binding JWT is malformed") from None
    nonce = payload.get("nonce") if isinstance(payload, dict) else None
    if not isinstance(nonce, str) or not 0 < len(nonce) <= 256:
        raise HolderProofInvalid("the key-binding JWT carries no nonce")
    return nonce


def check_presentation(
    text: str,
    *,
    trust: TrustStore,
    status: StatusSource,
    holders: HolderSource,
    audience: str,
    now: datetime,
) -> CheckedPresentation:
    """Verify a presentation of the phone credential for ``audience`` by the one set of rules
    an official's check uses (``idsvc.verification.presented``). ``HolderProofInvalid`` when it
    is not genuine or not bound to this request; ``HolderCredentialNotLive`` when it is genuine
    but not valid now (revoked, suspended, expired, holder inactive). The nonce is returned
    unconsumed: the caller consumes it."""
    if not isinstance(text, str):
        raise HolderProofInvalid("the presentation must be text")
    kb_jwt = text.strip().rpartition("~")[2]
    if not kb_jwt:
        raise HolderProofInvalid("the presentation has no key-binding JWT")
    nonce = _kb_nonce(kb_jwt)
    checked = verify_presentation(
        text, trust=trust, status=status, holders=holders, audience=audience, nonce=nonce, now=now
    ).result
    codes = ", ".join(str(r) for r in checked.reasons)
    if any(r in _NOT_GENUINE for r in checked.reasons):
        raise HolderProofInvalid(f"the presentation does not verify ({codes})")
    if not checked.valid:
        raise HolderCredentialNotLive(f"the phone credential is not valid now ({codes})")
    employee_id = (checked.holder or {}).get("employee_id")
    if checked.credential_id is None or employee_id is None or checked.issuer is None:
        raise HolderProofInvalid("the credential names no jti or sub")  # pragma: no cover
    return CheckedPresentation(checked.issuer, checked.credential_id, employee_id, nonce)


def _live_phone_credential(session: Session, credential_id: str, employee_id: str) -> CredentialRow:
    row = session.get(CredentialRow, credential_id)
    if row is None or row.kind != PHONE_KIND or row.employee_id != employee_id:
        raise HolderCredentialNotLive("the credential is not a phone credential of this register")
    if row.state != "live":
        raise HolderCredentialNotLive(f"the phone credential is {row.state}")
    return row


def open_session(
    session: Session,
    presentation: str,
    *,
    trust: TrustStore,
    status: StatusSource,
    holders: HolderSource,
    audience: str,
    now: datetime,
) -> HolderSession:
    """Check the presentation, consume its nonce, and open a session for its holder."""
    checked = check_presentation(
        presentation, trust=trust, status=status, holders=holders, audience=audience, now=now
    )
    if not nonces.consume(session, checked.nonce, NONCE_PURPOSE, now):
        raise HolderNonceInvalid()
    row = _live_phone_credential(session, checked.credential_id, checked.employee_id)
    if row.expires_at <= now:
        raise HolderCredentialNotLive("the phone credential has expired")
    token = new_token()
    expires_at = now + SESSION_LIFETIME
    session.add(
        HolderSessionRow(
            token_hash=token_hash(token),
            employee_id=row.employee_id,
            credential_id=row.id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return HolderSession(token, expires_at, Holder(row.employee_id, row.id))


def holder_of(session: Session, token: str, *, now: datetime) -> Holder:
    """The holder of a session token still valid at ``now``, whose credential is still live."""
    if not token or len(token) > _MAX_TOKEN:
        raise HolderSessionInvalid()
    row = session.get(HolderSessionRow, token_hash(token))
    if row is None or row.expires_at <= now:
        raise HolderSessionInvalid()
    _live_phone_credential(session, row.credential_id, row.employee_id)
    return Holder(row.employee_id, row.credential_id)


def delete_expired_sessions(session: Session, *, now: datetime) -> int:
    """Delete sessions past their end (the sweeper); return how many."""
    done = session.execute(delete(HolderSessionRow).where(HolderSessionRow.expires_at <= now))
    return changed_rows(done)


def _day(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def record_view(row: CivilServantRow) -> dict[str, Any]:
    """The record as the register holds it now: what the holder may check. Not the national ID
    number (kept only to find duplicates), nor the register's bookkeeping."""
    return {
        "employee_id": row.employee_id,
        "name_local": row.name_local,
        "name_latin": row.name_latin,
        "sex": row.sex,
        "date_of_birth": _day(row.date_of_birth),
        "ministry": row.ministry,
        "ministry_local": row.ministry_local,
        "unit": row.unit,
        "position": row.position,
        "position_local": row.position_local,
        "grade": row.grade,
        "category": row.category,
        "status": row.status,
        "status_date": _day(row.status_date),
        "hire_date": _day(row.hire_date),
        "contract_end": _day(row.contract_end),
    }


def credential_views(session: Session, employee_id: str) -> list[dict[str, Any]]:
    """The person's credentials, card and phone, newest first; issuances that never went live
    (abandoned) are left out: they were never in anyone's hands."""
    rows = session.scalars(
        select(CredentialRow)
        .where(CredentialRow.employee_id == employee_id, CredentialRow.state != "abandoned")
        .order_by(CredentialRow.issued_at.desc(), CredentialRow.id)
    )
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "state": r.state,
            "issued_at": r.issued_at.isoformat(),
            "expires_at": r.expires_at.isoformat(),
        }
        for r in rows
    ]


def check_view(check: CheckView) -> dict[str, Any]:
    """One row of the who-checked log as the holder sees it: when, the kind of check, the kind
    of caller and, for an API client (a bank, a ministry), its name; the result. An anonymous
    caller's address is the caller's personal data, not the holder's: it is left out."""
    return {
        "checked_at": check.checked_at.isoformat(),
        "kind": check.kind,
        "caller": "anonymous" if check.client_id is None else "client",
        "by": check.client_name,
        "result": check.result,
        "reasons": list(check.reasons),
    }


def check_views(checks: Sequence[CheckView]) -> list[dict[str, Any]]:
    return [check_view(c) for c in checks]
