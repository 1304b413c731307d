"""The signature algorithms the package accepts, and the key types each one requires.

Only two JWS algorithms are allowed: ES256 (ECDSA over P-256 with SHA-256) and EdDSA
(Ed25519). Keeping the list this short, and tying each algorithm to exactly one key
type, is what rules out algorithm-confusion attacks further up.
"""

from __future__ import annotations

from typing import Final, Literal, TypeGuard

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from keys.errors import BadSignature, UnsupportedAlgorithm

__all__ = [
    "ALGORITHMS",
    "ES256_SIGNATURE_SIZE",
    "Algorithm",
    "PrivateKey",
    "PublicKey",
    "alg_for_public_key",
    "es256_der_from_raw",
    "es256_raw_from_der",
    "generate_private_key",
    "is_algorithm",
    "require_algorithm",
    "require_key_for_alg",
]

Algorithm = Literal["ES256", "EdDSA"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("ES256", "EdDSA")

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_P256_COORDINATE_SIZE: Final = 32
ES256_SIGNATURE_SIZE: Final = 2 * _P256_COORDINATE_SIZE


def is_algorithm(alg: object) -> TypeGuard[Algorithm]:
    return isinstance(alg, str) and alg in ALGORITHMS


def require_algorithm(alg: object) -> Algorithm:
    """Return ``alg`` if it is on the allow-list, else raise :class:`UnsupportedAlgorithm`."""
    if not is_algorithm(alg):
        allowed = ", ".join(ALGORITHMS)
        raise UnsupportedAlgorithm(f"algorithm {alg!r} is not allowed (allowed: {allowed})")
    return alg


def alg_for_public_key(public_key: object) -> Algorithm:
    """The one algorithm a key may be used with; other key types are unsupported."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return "ES256"
        raise UnsupportedAlgorithm(f"EC curve {public_key.curve.name} is not supported")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise UnsupportedAlgorithm(f"key type {type(public_key).__name__} is not supported")


def require_key_for_alg(public_key: object, alg: str) -> PublicKey:
    """Check that ``public_key`` is the key type ``alg`` requires; raise BadSignature if not.

    A mismatch is reported as a bad signature rather than a configuration problem because
    the algorithm usually comes from an attacker-controlled JWS or COSE header.
    """
    wanted = require_algorithm(alg)
    if wanted == "ES256" and isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return public_key
    elif wanted == "EdDSA" and isinstance(public_key, ed25519.Ed25519PublicKey):
        return public_key
    raise BadSignature(f"algorithm {wanted} does not fit a {_describe(public_key)}")


def _describe(public_key: object) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name} key"
    return f"{type(public_key).__name__}"


def generate_private_key(alg: str) -> PrivateKey:
    if require_algorithm(alg) == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def es256_raw_from_der(der_signature: bytes) -> bytes:
    """DER ``Ecdsa-Sig-Value`` → the fixed-size r||s form JWS and COSE use."""
    r, s = decode_dss_signature(der_signature)
    return r.to_bytes(_P256_COORDINATE_SIZE, "big") + s.to_bytes(_P256_COORDINATE_SIZE, "big")


# DER of ECDSA-Sig-Value (SEQUENCE of two INTEGERs) for 32-byte r and s: an INTEGER whose first
# byte has its high bit set gets a 0x00 byte in front. Indexed by (r high bit) + 2 (s high bit).
# Built from byte prefixes it costs a third of encode_dss_signature (every JWS verify calls it).
_DER_HEADS: Final = (
    b"\x30\x44\x02\x20",
    b"\x30\x45\x02\x21\x00",
    b"\x30\x45\x02\x20",
    b"\x30\x46\x02\x21\x00",
)
_DER_MIDS: Final = (b"\x02\x20", b"\x02\x20", b"\x02\x21\x00", b"\x02\x21\x00")


def es256_der_from_raw(raw_signature: bytes) -> bytes:
    """Fixed-size r||s → DER ``Ecdsa-Sig-Value`` (what X.509 and OpenSSL want)."""
    if len(raw_signature) != ES256_SIGNATURE_SIZE:
        raise BadSignature(
            f"ES256 signature must be {ES256_SIGNATURE_SIZE} bytes, got {len(raw_signature)}"
        )
    r_first, s_first = raw_signature[0], raw_signature[_P256_COORDINATE_SIZE]
    if not r_first or not s_first:  # 1 in 128: minimal DER drops leading zero bytes
        r = int.from_bytes(raw_signature[:_P256_COORDINATE_SIZE], "big")
        s = int.from_bytes(raw_signature[_P256_COORDINATE_SIZE:], "big")
        return encode_dss_signature(r, s)
    form = (r_first >> 7) | (s_first >> 7) << 1
    middle = _DER_MIDS[form]
    return (
        _DER_HEADS[form]
        + raw_signature[:_P256_COORDINATE_SIZE]
        + middle
        + raw_signature[_P256_COORDINATE_SIZE:]
    )
