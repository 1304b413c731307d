"""Public keys as JSON Web Keys (RFC 7517/7518, RFC 8037) and their RFC 7638 thumbprints.

Only public EC P-256 and OKP Ed25519 keys are read or written. A JWK carrying a private
member is refused rather than silently stripped: it means someone is about to publish
a private key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keys.algorithms import PublicKey, alg_for_public_key
from keys.errors import InvalidJwk, UnsupportedAlgorithm

__all__ = [
    "PublicKey",
    "b64url_decode",
    "b64url_encode",
    "public_jwk",
    "public_key_from_jwk",
    "thumbprint",
]

_P256_SIZE: Final = 32
_ED25519_SIZE: Final = 32

# RFC 7638 §3.2: only the required members of each key type enter the thumbprint.
_THUMBPRINT_MEMBERS: Final[Mapping[str, tuple[str, ...]]] = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}

# Private members of EC/OKP (d), RSA (d, p, q, dp, dq, qi, oth) and symmetric (k) keys.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding, as JOSE requires; anything else raises InvalidJwk."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidJwk("value is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidJwk("value is not unpadded base64url") from None
    # Reject non-canonical encodings (stray low bits) so one key has one JWK.
    if b64url_encode(data) != text:
        raise InvalidJwk("value is not canonical base64url")
    return data


def public_jwk(public_key: object) -> dict[str, str]:
    """The public JWK of an EC P-256 or Ed25519 key (no ``kid``, ``alg`` or ``use``)."""
    alg = alg_for_public_key(public_key)
    if alg == "ES256":
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        numbers = public_key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url_encode(numbers.x.to_bytes(_P256_SIZE, "big")),
            "y": b64url_encode(numbers.y.to_bytes(_P256_SIZE, "big")),
        }
    assert isinstance(public_key, ed25519.Ed25519PublicKey)
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: base64url (unpadded) SHA-256 of the canonical required members.

    RSA is accepted here (only to hash its members, never to use the key) so the procedure
    can be checked against the RFC's own example, which is an RSA key.
    """
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise UnsupportedAlgorithm(f"no thumbprint for key type {kty!r}")
    canonical: dict[str, str] = {}
    for name in members:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidJwk(f"JWK member {name!r} is missing or not a string")
        canonical[name] = value
    # Members are already in lexicographic order; sort_keys keeps that true if they change.
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64url_encode(hashlib.sha256(text.encode("utf-8")).digest())


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """Read a public EC P-256 or OKP Ed25519 JWK; everything else is refused.

    ``alg`` and ``use``, when present, must agree with the key (ES256/EdDSA, sig).
    """
    if not isinstance(jwk, Mapping):
        raise InvalidJwk("JWK must be a JSON object")
    private = sorted(_PRIVATE_MEMBERS.intersection(jwk))
    if private:
        raise InvalidJwk(f"JWK carries private member(s) {private}; only public keys are accepted")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    key: PublicKey
    if kty == "EC" and crv == "P-256":
        x = _coordinate(jwk, "x", _P256_SIZE)
        y = _coordinate(jwk, "y", _P256_SIZE)
        try:
            key = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            ).public_key()
        except ValueError:
            raise InvalidJwk("EC point is not on curve P-256") from None
    elif kty == "OKP" and crv == "Ed25519":
        if "y" in jwk:
            raise InvalidJwk("OKP JWK must not have a 'y' member")
        key = ed25519.Ed25519PublicKey.from_public_bytes(_coordinate(jwk, "x", _ED25519_SIZE))
    else:
        raise UnsupportedAlgorithm(
            f"JWK kty={kty!r} crv={crv!r} is not allowed (only EC P-256 and OKP Ed25519)"
        )
    expected_alg = alg_for_public_key(key)
    if "alg" in jwk and jwk["alg"] != expected_alg:
        raise UnsupportedAlgorithm(f"JWK alg {jwk['alg']!r} does not fit a {kty} {crv} key")
    if "use" in jwk and jwk["use"] != "sig":
        raise InvalidJwk(f"JWK use {jwk['use']!r} is not 'sig'")
    return key


def _coordinate(jwk: Mapping[str, Any], name: str, size: int) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise InvalidJwk(f"JWK member {name!r} is missing or not a string")
    data = b64url_decode(value)
    if len(data) != size:
        raise InvalidJwk(f"JWK member {name!r} must be {size} bytes, got {len(data)}")
    return data
