"""What an issuer key looks like to the rest of idsvc, and how its signatures are checked.

A :class:`Signer` produces the raw signature bytes JWS (RFC 7515/7518) and COSE
(RFC 9053) expect: 64-byte r||s for ES256, 64 bytes for EdDSA. Whether the private key
lives in an encrypted file or in an HSM is invisible behind it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from keys.algorithms import (
    ALGORITHMS,
    ES256_SIGNATURE_SIZE,
    Algorithm,
    PublicKey,
    es256_der_from_raw,
    require_key_for_alg,
)
from keys.errors import BadSignature

__all__ = ["ALGORITHMS", "Algorithm", "PublicKey", "Signer", "verify_signature"]

_EDDSA_SIGNATURE_SIZE = 64


@runtime_checkable
class Signer(Protocol):
    """An issuer private key that can sign but never hands out its key material."""

    @property
    def kid(self) -> str:
        """RFC 7638 thumbprint of the public key."""
        ...

    @property
    def alg(self) -> Algorithm:
        """``"ES256"`` or ``"EdDSA"``."""
        ...

    def public_key(self) -> PublicKey: ...

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (not a digest) and return the raw JWS/COSE signature."""
        ...


def verify_signature(public_key: object, alg: str, data: bytes, signature: bytes) -> None:
    """Verify a raw JWS/COSE signature; raise :class:`BadSignature` if it does not verify.

    ``alg`` must be on the allow-list (else :class:`~keys.errors.UnsupportedAlgorithm`)
    and must fit the key type: an Ed25519 key never verifies an ES256 signature and
    vice versa, whatever a token header claims.
    """
    key = require_key_for_alg(public_key, alg)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != ES256_SIGNATURE_SIZE:
                raise BadSignature(f"ES256 signature must be {ES256_SIGNATURE_SIZE} bytes")
            key.verify(es256_der_from_raw(signature), data, ec.ECDSA(hashes.SHA256()))
        else:
            if len(signature) != _EDDSA_SIGNATURE_SIZE:
                raise BadSignature(f"EdDSA signature must be {_EDDSA_SIGNATURE_SIZE} bytes")
            key.verify(signature, data)
    except InvalidSignature:
        raise BadSignature("signature does not verify") from None
