"""OpenID4VCI 1.0: the credential offer (pre-authorized code grant) and the holder's key proof.

The offer goes to the wallet by value (§4.1.1), as a QR or a link::

    openid-credential-offer://?credential_offer=<percent-encoded JSON>
    {"credential_issuer": "https://id.example.gov",
     "credential_configuration_ids": ["civil_servant_sd_jwt", ...],
     "grants": {"urn:ietf:params:oauth:grant-type:pre-authorized_code": {
         "pre-authorized_code": "...",
         "tx_code": {"input_mode": "numeric", "length": 6, "description": "..."}}}}

The key proof (Appendix F.1) is a JWT with header ``typ: openid4vci-proof+jwt``, ``alg``
ES256 and the holder's public key in ``jwk`` (neither ``kid`` nor ``x5c``: the key is the
holder's own, not one we could look up), and claims ``aud`` = the credential issuer
identifier, ``iat``, ``nonce`` = a ``c_nonce`` from the nonce endpoint. :func:`check_proof`
checks all of it except that the nonce is one we issued and unused: that needs the database,
so the caller consumes the nonce and answers ``invalid_nonce`` itself when it is not.

Errors use the spec's vocabulary (§8.3.1.2): a proof that is missing, malformed, badly signed,
for another audience, stale, or without a nonce is ``invalid_proof``; a nonce that is present
but unusable is ``invalid_nonce`` (which tells the wallet to fetch a fresh one and retry).
Pure: no clock (``now`` is a parameter).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import parse_qs, quote, urlsplit

from idsvc.formats.jws import (
    BadSignature,
    JwsError,
    JwsSigner,
    MalformedJws,
    UnknownKey,
    UnsupportedAlgorithm,
    sign_compact,
    strict_json,
    verify_compact,
)
from keys.errors import InvalidJwk, KeysError
from keys.jwk import PublicKey, public_jwk, public_key_from_jwk

__all__ = [
    "OFFER_SCHEME",
    "PRE_AUTHORIZED_GRANT",
    "PROOF_TYP",
    "CheckedProof",
    "OfferError",
    "ProofError",
    "check_proof",
    "make_proof",
    "offer_uri",
    "parse_offer_uri",
]

PROOF_TYP: Final = "openid4vci-proof+jwt"
PRE_AUTHORIZED_GRANT: Final = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
OFFER_SCHEME: Final = "openid-credential-offer"

MAX_OFFER_URI_CHARS: Final = 4096  # a QR code holds under 3 KB anyway
MAX_PROOF_CHARS: Final = 4096  # header with a P-256 jwk + four claims is ~600 characters
MAX_NONCE_CHARS: Final = 256
_MAX_TX_CODE_DESCRIPTION: Final = 300  # §4.1.1: "MUST NOT exceed 300 characters"

ProofErrorCode = Literal["invalid_proof", "invalid_nonce"]


class OfferError(ValueError):
    """A credential offer (URI or object) that does not follow §4.1.1."""


class ProofError(ValueError):
    """A key proof refused; ``code`` is the credential endpoint's error code (§8.3.1.2)."""

    def __init__(self, code: ProofErrorCode, description: str) -> None:
        super().__init__(description)
        self.code: ProofErrorCode = code
        self.description = description


@dataclass(frozen=True, slots=True)
class CheckedProof:
    jwk: dict[str, Any]  # the holder's public key, canonical members only (for cnf.jwk)
    nonce: str
    iat: datetime


# -- the offer ---------------------------------------------------------------------------------


def _offer_object(
    *,
    credential_issuer: str,
    configuration_ids: Sequence[str],
    pre_authorized_code: str,
    tx_code_length: int,
    tx_code_description: str,
) -> dict[str, Any]:
    return {
        "credential_issuer": credential_issuer,
        "credential_configuration_ids": list(configuration_ids),
        "grants": {
            PRE_AUTHORIZED_GRANT: {
                "pre-authorized_code": pre_authorized_code,
                "tx_code": {
                    "input_mode": "numeric",
                    "length": tx_code_length,
                    "description": tx_code_description,
                },
            }
        },
    }


def offer_uri(
    *,
    credential_issuer: str,
    configuration_ids: Sequence[str],
    pre_authorized_code: str,
    tx_code_length: int,
    tx_code_description: str,
) -> str:
    """The offer by value, for a numeric transaction code read out to the holder."""
    offer = _offer_object(
        credential_issuer=credential_issuer,
        configuration_ids=configuration_ids,
        pre_authorized_code=pre_authorized_code,
        tx_code_length=tx_code_length,
        tx_code_description=tx_code_description,
    )
    _check_offer(offer)  # we never hand out an offer our own parser would refuse
    text = json.dumps(offer, separators=(",", ":"), ensure_ascii=False)
    # quote (%20), not urlencode (+): wallets decode with decodeURIComponent, which keeps '+'.
    uri = f"{OFFER_SCHEME}://?credential_offer={quote(text, safe='')}"
    if len(uri) > MAX_OFFER_URI_CHARS:
        raise ValueError("offer URI too long for a QR code")
    return uri


def parse_offer_uri(uri: str) -> dict[str, Any]:
    """The offer object of an offer URI (any scheme: a wallet's universal link works too).

    Only offers by value with the pre-authorized code grant are accepted; OfferError otherwise.
    """
    if type(uri) is not str:
        raise OfferError("offer URI must be a str")
    if len(uri) > MAX_OFFER_URI_CHARS:
        raise OfferError(f"offer URI longer than {MAX_OFFER_URI_CHARS} characters")
    try:
        query = parse_qs(urlsplit(uri).query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise OfferError("offer URI has a malformed query") from None
    if "credential_offer_uri" in query:
        raise OfferError("offers by reference (credential_offer_uri) are not supported")
    values = query.get("credential_offer")
    if values is None:
        raise OfferError("offer URI has no credential_offer parameter")
    if len(values) != 1:
        raise OfferError("credential_offer given more than once")
    try:
        offer = strict_json(values[0].encode("utf-8"), "credential_offer")
    except MalformedJws as exc:
        raise OfferError(str(exc)) from None
    if type(offer) is not dict:
        raise OfferError("credential_offer is not a JSON object")
    _check_offer(offer)
    return offer


def _check_offer(offer: dict[str, Any]) -> None:
    issuer = offer.get("credential_issuer")
    if type(issuer) is not str or urlsplit(issuer).scheme not in ("https", "http"):
        raise OfferError("credential_issuer must be an http(s) URL")
    if urlsplit(issuer).query or urlsplit(issuer).fragment:
        raise OfferError("credential_issuer must have no query or fragment")
    ids = offer.get("credential_configuration_ids")
    if type(ids) is not list or not ids or any(type(i) is not str or not i for i in ids):
        raise OfferError("credential_configuration_ids must be a non-empty array of strings")
    if len(set(ids)) != len(ids):
        raise OfferError("credential_configuration_ids has duplicates")
    grants = offer.get("grants")
    if type(grants) is not dict:
        raise OfferError("grants must be an object")
    grant = grants.get(PRE_AUTHORIZED_GRANT)
    if type(grant) is not dict:
        raise OfferError("no pre-authorized code grant in the offer")
    code = grant.get("pre-authorized_code")
    if type(code) is not str or not code:
        raise OfferError("pre-authorized_code must be a non-empty string")
    if "tx_code" in grant:
        _check_tx_code(grant["tx_code"])


def _check_tx_code(tx_code: object) -> None:
    if type(tx_code) is not dict:
        raise OfferError("tx_code must be an object")
    if tx_code.get("input_mode", "numeric") not in ("numeric", "text"):
        raise OfferError("tx_code input_mode must be numeric or text")
    length = tx_code.get("length")
    if length is not None and (type(length) is not int or not 1 <= length <= 64):
        raise OfferError("tx_code length must be an integer from 1 to 64")
    description = tx_code.get("description")
    if description is not None and (
        type(description) is not str or len(description) > _MAX_TX_CODE_DESCRIPTION
    ):
        raise OfferError(f"tx_code description must be a string of <= {_MAX_TX_CODE_DESCRIPTION}")


# -- the key proof -----------------------------------------------------------------------------


def make_proof(
    signer: JwsSigner, holder_jwk: dict[str, Any], *, audience: str, nonce: str, now: datetime
) -> str:
    """A wallet's key proof (for tests and the training wallet): ES256, ``jwk``, no ``kid``."""
    claims = {"aud": audience, "iat": int(now.timestamp()), "nonce": nonce}
    return sign_compact(
        claims, signer, typ=PROOF_TYP, extra_headers={"jwk": holder_jwk}, include_kid=False
    )


def _header_key(header: dict[str, Any]) -> PublicKey:
    """The proof's own key, from ``jwk``; the reason is kept so that the error can name it."""
    if "kid" in header or "x5c" in header:
        raise ProofError("invalid_proof", "proof header must carry jwk only (no kid, no x5c)")
    jwk = header.get("jwk")
    if type(jwk) is not dict:
        raise ProofError("invalid_proof", "proof header has no jwk object")
    try:
        key = public_key_from_jwk(jwk)
    except InvalidJwk as exc:
        if "private member" in str(exc):
            raise ProofError("invalid_proof", "the proof's jwk carries a private key") from None
        raise ProofError("invalid_proof", f"the proof's jwk is not usable: {exc}") from None
    except KeysError as exc:
        raise ProofError("invalid_proof", f"the proof's jwk is not usable: {exc}") from None
    if jwk.get("kty") != "EC":
        raise ProofError("invalid_proof", "the proof's jwk must be a P-256 key (ES256)")
    return key


def check_proof(
    jwt: str, *, audience: str, now: datetime, max_age: timedelta = timedelta(minutes=5)
) -> CheckedProof:
    """Check a ``jwt`` key proof: signature by its own ``jwk`` (ES256, P-256, public only),
    ``typ``, ``aud`` = ``audience``, ``iat`` within ``max_age`` of ``now`` either way, and a
    nonce present. The caller consumes the nonce (answering ``invalid_nonce`` if unknown)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if type(jwt) is not str or not jwt:
        raise ProofError("invalid_proof", "the proof jwt is missing or not a string")
    if len(jwt) > MAX_PROOF_CHARS:
        raise ProofError("invalid_proof", f"the proof is longer than {MAX_PROOF_CHARS} characters")
    key_problem: ProofError | None = None

    def key_for(header: dict[str, Any]) -> PublicKey:
        nonlocal key_problem
        try:
            return _header_key(header)
        except ProofError as exc:
            key_problem = exc
            raise

    try:
        verified = verify_compact(
            jwt,
            key_for=key_for,
            allowed_algs=frozenset({"ES256"}),
            expected_typ=PROOF_TYP,
            max_length=MAX_PROOF_CHARS,
        )
    except UnknownKey:
        assert key_problem is not None
        raise key_problem from None
    except UnsupportedAlgorithm:
        raise ProofError("invalid_proof", "proof alg must be ES256") from None
    except BadSignature:
        raise ProofError("invalid_proof", "proof signature does not verify") from None
    except MalformedJws as exc:
        if str(exc) == "unexpected typ":
            raise ProofError("invalid_proof", f"proof typ must be {PROOF_TYP}") from None
        raise ProofError("invalid_proof", f"proof is malformed: {exc}") from None
    except JwsError as exc:  # pragma: no cover - every subclass is handled above
        raise ProofError("invalid_proof", str(exc)) from None
    claims = verified.payload
    if claims.get("aud") != audience:
        raise ProofError("invalid_proof", "proof aud is not this credential issuer")
    iat = claims.get("iat")
    if type(iat) is not int:
        raise ProofError("invalid_proof", "proof iat missing or not an integer")
    age = now.timestamp() - iat
    if age > max_age.total_seconds():
        raise ProofError("invalid_proof", "proof iat is stale")
    if -age > max_age.total_seconds():
        raise ProofError("invalid_proof", "proof iat is in the future")
    if "nonce" not in claims:
        raise ProofError("invalid_proof", "proof has no nonce: ask the nonce endpoint for one")
    nonce = claims["nonce"]
    if type(nonce) is not str or not nonce or len(nonce) > MAX_NONCE_CHARS:
        raise ProofError("invalid_nonce", "proof nonce is not a c_nonce of this issuer")
    holder_key = _header_key(verified.header)
    return CheckedProof(
        jwk=dict(public_jwk(holder_key)),
        nonce=nonce,
        iat=datetime.fromtimestamp(iat, UTC),
    )
