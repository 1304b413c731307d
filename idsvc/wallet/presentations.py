"""An official asks a phone for its credential (OpenID4VP 1.0), and reads the answer.

1. ``create``: the official's page asks for some claims, required or optional (by default the
   names and the photo, and optionally the ministry and the position: the holder may untick
   those). The DCQL query says which are optional by ``claim_sets`` (OpenID4VP §6.4.1).
   A request gets a random id, ``nonce`` and ``state`` and a poll token (32 random bytes each,
   base64url; the poll token is stored only as its SHA-256), and lives ``LIFETIME``. The page
   shows ``openid4vp://?client_id=...&request_uri=...`` as a QR and keeps the poll token.
2. ``request_object``: the wallet fetches the signed request from ``request_uri``: a JWT
   (``oauth-authz-req+jwt``) with ``x5c`` = [the verifier certificate, the issuer CA], client id
   ``x509_hash:...`` (``idsvc.wallet.verifier_key``), a DCQL query for the claims, ``direct_post``
   to ``response_uri``.
3. ``answer``: the wallet posts ``vp_token`` and ``state``. The state must match (else nothing
   is stored). A presentation that leaves out a required claim does not answer the query: the
   request fails, like an unreadable ``vp_token``, and the failure names the claims missing
   (``missing``). Otherwise the presentation is verified by the shared rules
   (``idsvc.verification.presented``: KB-JWT ``aud`` = our client id, ``nonce`` = this request's),
   and the result stored by one ``UPDATE ... WHERE status = 'pending'``: of two answers racing
   on two workers exactly one is stored, the other is refused. The check enters the who-checked
   log in the same transaction, in the name of whoever created the request, so the holder sees
   it on their own page. A wallet's OpenID4VP error (form ``error``) ends the request as
   ``failed`` with that error, and so does a ``vp_token`` that cannot be read.
4. ``result``: only the holder of the poll token reads the answer; a wrong token is answered
   as an unknown request (the id is in the QR, readable over the official's shoulder).

Every refusal towards the wallet is a ``PresentationRefused`` carrying an OAuth error code
(``invalid_request``): the route answers it in the spec's ``{"error", "error_description"}``.
"""

from __future__ import annotations

import hmac
import re
import threading
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from idsvc import DEFAULT_ISSUER
from idsvc.audit.who_checked import CheckedBy, CheckRecord, record_check
from idsvc.credentials import issuers
from idsvc.credentials.infrastructure import Infrastructure
from idsvc.formats import openid4vp, sd_jwt
from idsvc.formats.credentials import DISCLOSABLE
from idsvc.staff.secrets import new_token, token_hash, token_matches
from idsvc.storage.bulk import changed_rows
from idsvc.storage.client_tables import ApiClientRow
from idsvc.storage.wallet_tables import PresentationRequestRow
from idsvc.verification.online import holder_for
from idsvc.verification.presented import verify_presentation
from idsvc.verification.use_cases import DbHolders, DbStatus, LocalTrust
from idsvc.wallet.phone_credential import vct_of
from idsvc.wallet.verifier_key import VerifierKey, verifier_key
from keys.ca import IssuerCA

LIFETIME: Final = timedelta(minutes=5)
QUERY_ID: Final = "civil_servant"
ANONYMOUS: Final = "anonymous"

# What an official may ask for: the phone credential's selectively disclosable claims
# (``idsvc.formats.credentials.DISCLOSABLE``); the default is what a face check needs, and where the
# person works if they agree to show it.
DEFAULT_CLAIMS: Final = ("name", "name_latin", "photo")
DEFAULT_OPTIONAL: Final = ("ministry", "position")
MAX_OPTIONAL: Final = openid4vp.MAX_OPTIONAL_CLAIMS

# Ids are UUIDs: anything else is unknown without a query.
_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# OAuth error codes are printable ASCII without '"' and '\' (RFC 6749 §5.2): a wallet's error
# is stored and shown only in that alphabet, and short.
_ERROR_TEXT = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")
_MAX_DESCRIPTION = 200


class ClaimsRefused(ValueError):
    """The claims asked for cannot make a request; ``code`` and ``title`` for the API."""

    code = "UNKNOWN_CLAIM"
    title = "claim cannot be asked for"


class UnknownClaim(ClaimsRefused):
    """A claim that the phone credential does not disclose was asked for (or none at all)."""


class ClaimRequiredAndOptional(ClaimsRefused):
    code = "CLAIM_REQUIRED_AND_OPTIONAL"
    title = "a claim cannot be both required and optional"


class TooManyOptionalClaims(ClaimsRefused):
    code = "TOO_MANY_OPTIONAL_CLAIMS"
    title = f"at most {MAX_OPTIONAL} optional claims"


@dataclass(frozen=True)
class AskedClaims:
    """What a request asks for: claims the holder must disclose, and claims they may."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    def stored(self) -> dict[str, list[str]]:
        """The row's ``claims`` JSON."""
        return {"required": list(self.required), "optional": list(self.optional)}

    @classmethod
    def from_stored(cls, stored: dict[str, list[str]]) -> AskedClaims:
        return cls(tuple(stored["required"]), tuple(stored.get("optional", ())))

    def missing(self, disclosed: Collection[str]) -> list[str]:
        """The required claims not among ``disclosed``, in the order asked."""
        return [name for name in self.required if name not in disclosed]


class UnknownPresentationRequest(LookupError):
    """No such request (or, for the poll, not this poll token's)."""


class PresentationRefused(Exception):
    """An answer or a request-object fetch refused; ``error`` is the OAuth error code."""

    def __init__(self, description: str, error: str = "invalid_request") -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class CreatedRequest:
    id: str
    openid4vp_uri: str
    request_uri: str
    expires_at: datetime
    poll_token: str


@dataclass(frozen=True)
class RequestView:
    id: str
    status: str  # pending, answered, failed, expired (pending past its end)
    expires_at: datetime
    result: dict[str, Any] | None


def _known(claims: Sequence[str]) -> tuple[str, ...]:
    unknown = [c for c in claims if c not in DISCLOSABLE]
    if unknown:
        raise UnknownClaim(
            f"claim {unknown[0][:40]!r} cannot be asked for; ask for some of: "
            + ", ".join(DISCLOSABLE)
        )
    return tuple(dict.fromkeys(claims))


def checked_claims(
    claims: Sequence[str] | None, optional: Sequence[str] | None = None
) -> AskedClaims:
    """The claims to ask for, in the order given. Neither given: the defaults; only
    ``optional`` given: the default required ones with these optional; only ``claims``: these,
    all required. ``ClaimsRefused`` for a claim we never disclose, none required, a claim both
    required and optional, or more than ``MAX_OPTIONAL`` optional."""
    if claims is None and optional is None:
        return AskedClaims(DEFAULT_CLAIMS, DEFAULT_OPTIONAL)
    required = _known(DEFAULT_CLAIMS if claims is None else claims)
    maybe = _known(optional or ())
    if not required:
        raise UnknownClaim("ask for at least one claim that the holder must disclose")
    both = [c for c in maybe if c in required]
    if both:
        raise ClaimRequiredAndOptional(
            f"claim {both[0]!r} is both in claims (required) and in optional: name it once"
        )
    if len(maybe) > MAX_OPTIONAL:
        # The DCQL query lists every combination of them (2^n claim sets).
        raise TooManyOptionalClaims(
            f"{len(maybe)} optional claims asked for; at most {MAX_OPTIONAL}"
        )
    return AskedClaims(required, maybe)


def _missing(asked: AskedClaims, presentation: str) -> list[str]:
    """The required claims the presentation has no disclosure for. Only the names are read
    here; whether the disclosures are genuine is the verification's business. One that cannot
    be parsed is left to the verification too (``MALFORMED``)."""
    try:
        parsed = sd_jwt.parse(presentation.strip())
    except sd_jwt.SdJwtError:
        return []
    return asked.missing({d.name for d in parsed.disclosures})


def _wallet_error(error: str, description: str | None) -> dict[str, Any]:
    """A wallet's error as stored and shown: only the OAuth error alphabet, bounded."""
    code = error if _ERROR_TEXT.fullmatch(error) else "invalid_request"
    body: dict[str, Any] = {"error": code}
    if description:
        text = "".join(ch for ch in description if ch.isprintable())[:_MAX_DESCRIPTION]
        if text:
            body["error_description"] = text
    return body


class Presentations:
    """The presentation requests of this deployment (the API's ``Wallet`` methods use it)."""

    def __init__(self, infra: Infrastructure) -> None:
        self._infra = infra
        self._lock = threading.Lock()
        self._key: VerifierKey | None = None

    # -- the verifier's key ---------------------------------------------------------------
    def verifier_key(self, now: datetime) -> VerifierKey:
        """The request-signing key, read once per process and again near its renewal."""
        with self._lock:
            key = self._key
            if key is None or not key.usable(now):
                key = self._key = verifier_key(
                    self._infra.settings.keys_dir,
                    ca=self._issuer_ca,
                    uri=self._infra.settings.public_url,
                    now=now,
                )
            return key

    def _issuer_ca(self) -> IssuerCA:
        with self._infra.db.transaction() as session:
            issuer = self._infra.issuer(session, DEFAULT_ISSUER)
        return self._infra.ca(issuer)

    def _urls(self, request_id: str) -> tuple[str, str]:
        base = (
            f"{self._infra.settings.public_url.rstrip('/')}/v1/presentation-requests/{request_id}"
        )
        return base + "/request", base + "/response"

    # -- the official's side --------------------------------------------------------------
    def create(
        self,
        claims: Sequence[str] | None,
        *,
        optional: Sequence[str] | None = None,
        requested_by: str,
        now: datetime,
    ) -> CreatedRequest:
        asked = checked_claims(claims, optional)
        self._infra.require_ready()
        key = self.verifier_key(now)
        request_id, poll_token = str(uuid.uuid4()), new_token()
        expires_at = now + LIFETIME
        with self._infra.db.transaction() as session:
            session.add(
                PresentationRequestRow(
                    id=request_id,
                    nonce=new_token(),
                    state_token=new_token(),
                    requested_by=requested_by[:128],
                    poll_token_hash=token_hash(poll_token),
                    claims=asked.stored(),
                    created_at=now,
                    expires_at=expires_at,
                    status="pending",
                    result=None,
                    answered_at=None,
                )
            )
            # Keep the table small: a request that ended a day ago serves no one (its check
            # stays in the who-checked log).
            session.execute(
                delete(PresentationRequestRow).where(
                    PresentationRequestRow.expires_at < now - timedelta(days=1)
                )
            )
        request_uri, _ = self._urls(request_id)
        return CreatedRequest(
            id=request_id,
            openid4vp_uri=openid4vp.authorization_uri(
                client_id=key.client_id, request_uri=request_uri
            ),
            request_uri=request_uri,
            expires_at=expires_at,
            poll_token=poll_token,
        )

    def result(self, request_id: str, poll_token: str | None, *, now: datetime) -> RequestView:
        """The request as its poll-token holder sees it; ``UnknownPresentationRequest`` for an
        unknown id or a wrong or missing token alike."""
        row = self._row(request_id)
        if row is None or not poll_token or not token_matches(poll_token, row.poll_token_hash):
            raise UnknownPresentationRequest(request_id)
        status = row.status
        if status == "pending" and row.expires_at <= now:
            status = "expired"
        return RequestView(row.id, status, row.expires_at, row.result)

    # -- the wallet's side ----------------------------------------------------------------
    def _row(self, request_id: str) -> PresentationRequestRow | None:
        if not _REQUEST_ID.fullmatch(request_id):
            return None
        self._infra.require_ready()
        with self._infra.db.transaction() as session:
            row = session.get(PresentationRequestRow, request_id)
            if row is not None:
                session.expunge(row)
            return row

    def _pending(self, request_id: str, now: datetime) -> PresentationRequestRow:
        row = self._row(request_id)
        if row is None:
            raise UnknownPresentationRequest(request_id)
        if row.status != "pending":
            raise PresentationRefused("this request has already been answered")
        if row.expires_at <= now:
            raise PresentationRefused("this request has expired: ask the official for a new one")
        return row

    def request_object(self, request_id: str, *, now: datetime) -> str:
        """The signed request object (``application/oauth-authz-req+jwt``)."""
        row = self._pending(request_id, now)
        key = self.verifier_key(now)
        _, response_uri = self._urls(row.id)
        asked = AskedClaims.from_stored(row.claims)
        claims = openid4vp.request_object_claims(
            client_id=key.client_id,
            response_uri=response_uri,
            nonce=row.nonce,
            state=row.state_token,
            dcql=openid4vp.dcql_query(
                asked.required,
                optional=asked.optional,
                query_id=QUERY_ID,
                vct=vct_of(self._infra.settings.public_url),
            ),
            now=now,
            lifetime=row.expires_at - now,
        )
        return openid4vp.sign_request_object(claims, key.signer, x5c=key.chain)

    def answer(
        self,
        request_id: str,
        *,
        state: str | None,
        vp_token: str | None,
        error: str | None,
        error_description: str | None,
        now: datetime,
    ) -> dict[str, Any]:
        """Store the wallet's answer (or its error) once; return what was stored."""
        row = self._pending(request_id, now)
        if not state or not hmac.compare_digest(
            state.encode("utf-8"), row.state_token.encode("utf-8")
        ):
            raise PresentationRefused("state does not match the request")
        if error is not None:
            failure = _wallet_error(error, error_description)
            self._store(row, "failed", failure, None, now)
            return failure
        try:
            presentation = openid4vp.parse_vp_token(vp_token or "", query_id=QUERY_ID)
        except ValueError as exc:
            failure = {"error": "invalid_request", "error_description": str(exc)[:200]}
            self._store(row, "failed", failure, None, now)
            raise PresentationRefused(failure["error_description"]) from None
        missing = _missing(AskedClaims.from_stored(row.claims), presentation)
        if missing:
            # It does not answer the query (DCQL: every claim of one claim set): like an
            # unreadable vp_token, the request fails, saying what the official did not get.
            listed = ", ".join(missing)
            description = f"the presentation leaves out claims the request requires: {listed}"
            stored = {"error": "invalid_request", "error_description": description}
            self._store(row, "failed", {**stored, "missing": missing}, None, now)
            raise PresentationRefused(description)
        body, check = self._verify(row, presentation, now)
        self._store(row, "answered", body, check, now)
        return body

    def _verify(
        self, row: PresentationRequestRow, presentation: str, now: datetime
    ) -> tuple[dict[str, Any], CheckRecord]:
        key = self.verifier_key(now)
        asked = AskedClaims.from_stored(row.claims)
        with self._infra.db.transaction() as session:
            trust = LocalTrust(issuers.load_issuers(session, self._infra.rings))
            presented = verify_presentation(
                presentation,
                trust=trust,
                status=DbStatus(session),
                holders=DbHolders(session),
                audience=key.client_id,
                nonce=row.nonce,
                now=now,
                vct=vct_of(self._infra.settings.public_url),
                wanted=(*asked.required, *asked.optional),
            )
        result = presented.result
        body = result.as_dict()
        # The anonymous view of what was disclosed: the claims asked for (the required ones
        # and the optional ones the holder gave), nothing more.
        body["holder"] = holder_for(result, frozenset())
        body["checked_at"] = now.isoformat()
        body["disclosed"] = presented.disclosed
        check = CheckRecord(
            kind="verification",
            employee_id=result.holder.get("employee_id") if result.holder else None,
            credential_id=result.credential_id,
            result=result.status,
            reasons=[str(r) for r in result.reasons],
        )
        return body, check

    def _store(
        self,
        row: PresentationRequestRow,
        status: str,
        body: dict[str, Any],
        check: CheckRecord | None,
        now: datetime,
    ) -> None:
        with self._infra.db.transaction() as session:
            done = session.execute(
                update(PresentationRequestRow)
                .where(
                    PresentationRequestRow.id == row.id,
                    PresentationRequestRow.status == "pending",
                )
                .values(status=status, result=body, answered_at=now)
            )
            if changed_rows(done) != 1:
                # Another worker stored an answer first: this one changes nothing.
                raise PresentationRefused("this request has already been answered")
            if check is not None:
                record_check(session, [check], by=self._requester(session, row), now=now)

    @staticmethod
    def _requester(session: Session, row: PresentationRequestRow) -> CheckedBy:
        if row.requested_by == ANONYMOUS:
            return CheckedBy(None, None, None)
        name = session.execute(
            select(ApiClientRow.name).where(ApiClientRow.id == row.requested_by)
        ).scalar_one_or_none()
        return CheckedBy(row.requested_by, name, None)
