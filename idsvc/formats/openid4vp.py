"""OpenID4VP 1.0: the verifier's signed request (by reference), its DCQL query, the answer.

The official's page shows ``openid4vp://?client_id=...&request_uri=...``; the wallet fetches
the request object from ``request_uri``: a JWT with header ``typ: oauth-authz-req+jwt`` and the
verifier's certificate chain in ``x5c``, signed by the leaf's key. The client identifier has
the prefix ``x509_hash:`` (§5.9.3): the base64url SHA-256 of the DER leaf certificate, so a
wallet checks it against ``x5c`` without any registry. The claims ask, by DCQL (§6), for one
SD-JWT VC of our type with only the claims the official needs, and for the answer by
``direct_post`` to ``response_uri``: a form with ``vp_token`` (a JSON object: the credential
query id → an array of presentations, §8.1) and ``state``.

Pure: no clock (``now`` is a parameter), no key store (the signer is passed in).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from idsvc.formats.jws import JwsSigner, MalformedJws, sign_compact, strict_json
from idsvc.formats.sd_jwt import MAX_SD_JWT_CHARS
from keys.jwk import b64url_encode

__all__ = [
    "CLIENT_ID_PREFIX",
    "MAX_OPTIONAL_CLAIMS",
    "REQUEST_TYP",
    "SD_JWT_VC_FORMAT",
    "SELF_ISSUED_AUDIENCE",
    "authorization_uri",
    "dcql_query",
    "parse_vp_token",
    "request_object_claims",
    "sign_request_object",
    "x509_hash_client_id",
]

REQUEST_TYP: Final = "oauth-authz-req+jwt"
CLIENT_ID_PREFIX: Final = "x509_hash:"
SD_JWT_VC_FORMAT: Final = "dc+sd-jwt"
SELF_ISSUED_AUDIENCE: Final = "https://self-issued.me/v2"  # §5.8: aud of a signed request
AUTHORIZATION_SCHEME: Final = "openid4vp"

# DCQL claim ids (§6.3): alphanumeric, underscore or hyphen. ``claim_sets`` lists every
# combination of the optional claims (2^n of them): a few keep the request object small.
_CLAIM_ID: Final = re.compile(r"[A-Za-z0-9_-]+")
MAX_OPTIONAL_CLAIMS: Final = 4

# A vp_token carries one presentation (an SD-JWT with the photo, at most MAX_SD_JWT_CHARS) in
# a small JSON object; anything much larger is refused before it is parsed.
MAX_VP_TOKEN_CHARS: Final = MAX_SD_JWT_CHARS + 1024

# What the verifier accepts, told to the wallet in client_metadata.vp_formats_supported.
_VP_FORMATS: Final = {
    SD_JWT_VC_FORMAT: {"sd-jwt_alg_values": ["ES256", "EdDSA"], "kb-jwt_alg_values": ["ES256"]}
}


def x509_hash_client_id(leaf_der: bytes) -> str:
    """``x509_hash:<base64url SHA-256 of the DER leaf certificate>`` (§5.9.3)."""
    return CLIENT_ID_PREFIX + b64url_encode(hashlib.sha256(leaf_der).digest())


def dcql_query(
    claims: Sequence[str],
    *,
    optional: Sequence[str] = (),
    query_id: str = "civil_servant",
    vct: str,
    credential_format: str = SD_JWT_VC_FORMAT,
) -> dict[str, Any]:
    """One credential query: an SD-JWT VC of type ``vct`` with these top-level claims.

    ``claims`` are required; ``optional`` ones the holder may leave out. Without optional
    claims the query lists the claims alone (§6.4.1: every claim listed is then asked for).
    With them, each claim gets an ``id`` (its name) and ``claim_sets`` lists the acceptable
    combinations, the most wanted first (§6.4.1: a wallet answers with the first one it can
    and will satisfy): every combination of the optional claims, largest first, so whichever
    of them the holder unticks, what is left is one of the sets.

    Holder binding stays required (the DCQL default): the answer must carry a KB-JWT.
    """
    required, extra = list(claims), list(optional)
    names = required + extra
    if not required or any(type(n) is not str or not n for n in names):
        raise ValueError("claims must be a non-empty list of claim names")
    if len(set(names)) != len(names):
        raise ValueError("claims has duplicates (or a claim both required and optional)")
    if len(extra) > MAX_OPTIONAL_CLAIMS:
        raise ValueError(f"at most {MAX_OPTIONAL_CLAIMS} optional claims")
    query: dict[str, Any] = {
        "id": query_id,
        "format": credential_format,
        "meta": {"vct_values": [vct]},
        "claims": [{"path": [name]} for name in names],
    }
    if extra:
        bad = [n for n in names if not _CLAIM_ID.fullmatch(n)]
        if bad:
            raise ValueError(f"claim {bad[0][:40]!r} cannot be a DCQL claim id")
        query["claims"] = [{"id": name, "path": [name]} for name in names]
        query["claim_sets"] = [
            required + list(chosen)
            for size in range(len(extra), -1, -1)
            for chosen in itertools.combinations(extra, size)
        ]
    return {"credentials": [query]}


def request_object_claims(
    *,
    client_id: str,
    response_uri: str,
    nonce: str,
    state: str,
    dcql: dict[str, Any],
    now: datetime,
    lifetime: timedelta,
    client_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The request object's claims for a ``direct_post`` answer (§5.8 for aud, §8.2)."""
    iat = int(now.timestamp())
    return {
        "iss": client_id,
        "aud": SELF_ISSUED_AUDIENCE,
        "client_id": client_id,
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": response_uri,
        "nonce": nonce,
        "state": state,
        "dcql_query": dcql,
        "client_metadata": (
            client_metadata
            if client_metadata is not None
            else {"vp_formats_supported": _VP_FORMATS}
        ),
        "iat": iat,
        "exp": iat + int(lifetime.total_seconds()),
    }


def sign_request_object(claims: dict[str, Any], signer: JwsSigner, *, x5c: Sequence[bytes]) -> str:
    """The signed request object; ``x5c`` is the DER chain, leaf first (RFC 7515 §4.1.6:
    standard base64 with padding, not base64url)."""
    if not x5c:
        raise ValueError("x5c needs at least the leaf certificate")
    chain = [base64.b64encode(der).decode("ascii") for der in x5c]
    return sign_compact(claims, signer, typ=REQUEST_TYP, extra_headers={"x5c": chain})


def authorization_uri(*, client_id: str, request_uri: str) -> str:
    """``openid4vp://?client_id=...&request_uri=...`` (the request by reference)."""
    return (
        f"{AUTHORIZATION_SCHEME}://?client_id={quote(client_id, safe='')}"
        f"&request_uri={quote(request_uri, safe='')}"
    )


def parse_vp_token(form_value: str, *, query_id: str) -> str:
    """The one presentation answering credential query ``query_id``; ValueError otherwise.

    §8.1: ``vp_token`` is a JSON object whose keys are credential query ids and whose values
    are arrays of presentations. A bare string value (drafts before 1.0) is accepted as well.
    """
    if type(form_value) is not str or not form_value:
        raise ValueError("vp_token is missing")
    if len(form_value) > MAX_VP_TOKEN_CHARS:
        raise ValueError(f"vp_token longer than {MAX_VP_TOKEN_CHARS} characters")
    try:
        token = strict_json(form_value.encode("utf-8"), "vp_token")
    except MalformedJws as exc:
        raise ValueError(str(exc)) from None
    if type(token) is not dict:
        raise ValueError("vp_token is not a JSON object")
    if set(token) != {query_id}:
        raise ValueError(f"vp_token must answer exactly the credential query {query_id!r}")
    value = token[query_id]
    if type(value) is list:
        if len(value) != 1:
            raise ValueError("vp_token must carry exactly one presentation")
        value = value[0]
    if type(value) is not str or not value:
        raise ValueError("the presentation in vp_token is not a string")
    return value
