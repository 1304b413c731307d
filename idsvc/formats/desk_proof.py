"""Desk request proofs: every HTTP request from a remote desk carries a small signed JWT.

Modelled on OAuth DPoP (RFC 9449), with the body bound too. Header ``Desk-Proof: <JWS>``:

    header  {"alg": "ES256", "typ": "desk-proof+jwt", "kid": <RFC 7638 thumbprint of the desk key>}
    payload {"htm": "POST", "htu": "/v1/desk/issuances", "bh": <b64url SHA-256 of the body>,
             "iat": <unix seconds>, "jti": <random, 16-64 characters>}

The centre finds the desk by ``kid`` (the key it recorded at enrolment), checks the signature,
that method, path and body hash are those of the request it is reading, that ``iat`` is within
``MAX_SKEW`` seconds of its clock, and (in the database) that the desk never used this ``jti``
before. A captured proof therefore cannot be replayed, moved to another path, or given another
body; TLS still protects confidentiality. Only ES256 (P-256), the curve every PIV token and
TPM offers, so a desk may later keep its key in hardware.

Pure: no clock, no database; verification raises ``ProofInvalid``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from idsvc.formats.jws import JwsError, JwsSigner, sign_compact, verify_compact
from keys.jwk import PublicKey, b64url_encode

PROOF_TYP = "desk-proof+jwt"
HEADER = "Desk-Proof"
MAX_SKEW = 60
_JTI = re.compile(r"[A-Za-z0-9_-]{16,64}")


class ProofInvalid(Exception):
    """The proof is missing, malformed, signed by another key, stale, or for another request."""


@dataclass(frozen=True)
class DeskProof:
    thumbprint: str
    jti: str
    issued_at: int


def body_hash(body: bytes) -> str:
    return b64url_encode(hashlib.sha256(body).digest())


def sign_proof(
    signer: JwsSigner, *, method: str, path: str, body: bytes, now: datetime, jti: str
) -> str:
    claims = {
        "htm": method.upper(),
        "htu": path,
        "bh": body_hash(body),
        "iat": int(now.timestamp()),
        "jti": jti,
    }
    return sign_compact(claims, signer, typ=PROOF_TYP)


def read_proof(
    token: str,
    *,
    key_for: Callable[[str], PublicKey | None],
    method: str,
    path: str,
    body: bytes,
    now: datetime,
) -> DeskProof:
    """Check everything a proof says except ``jti`` reuse (that needs the database)."""
    kid = ""

    def lookup(header: dict[str, Any]) -> PublicKey | None:
        nonlocal kid
        kid = str(header.get("kid", ""))
        return key_for(kid) if kid else None

    try:
        verified = verify_compact(
            token,
            key_for=lookup,
            allowed_algs=frozenset({"ES256"}),
            expected_typ=PROOF_TYP,
            max_length=2048,
        )
    except JwsError as exc:
        raise ProofInvalid(f"desk proof not accepted ({type(exc).__name__})") from exc
    claims = verified.payload
    if claims.get("htm") != method.upper() or claims.get("htu") != path:
        raise ProofInvalid("desk proof was made for another request (method or path)")
    if claims.get("bh") != body_hash(body):
        raise ProofInvalid("desk proof was made for another request body")
    iat = claims.get("iat")
    if type(iat) is not int or abs(now.timestamp() - iat) > MAX_SKEW:
        raise ProofInvalid(
            f"desk proof is stale or from the future: set the desk's clock (±{MAX_SKEW} s)"
        )
    jti = claims.get("jti")
    if not isinstance(jti, str) or not _JTI.fullmatch(jti):
        raise ProofInvalid("desk proof has no valid jti")
    return DeskProof(thumbprint=kid, jti=jti, issued_at=iat)
