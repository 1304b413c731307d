from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from keys.errors import BadSignature, UnsupportedAlgorithm
from keys.signer import ALGORITHMS, verify_signature

DATA = b"header.payload"


def _es256(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_algorithms_allow_list() -> None:
    assert ALGORITHMS == ("ES256", "EdDSA")


def test_es256_raw_signature_verifies() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signature = _es256(key, DATA)
    verify_signature(key.public_key(), "ES256", DATA, signature)
    with pytest.raises(BadSignature):
        verify_signature(key.public_key(), "ES256", DATA + b"x", signature)


def test_eddsa_signature_verifies() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    verify_signature(key.public_key(), "EdDSA", DATA, key.sign(DATA))
    with pytest.raises(BadSignature):
        verify_signature(key.public_key(), "EdDSA", DATA, bytes(64))


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES384", "Ed25519", "es256", ""])
def test_algorithms_outside_the_allow_list_are_refused(alg: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(UnsupportedAlgorithm):
        verify_signature(key.public_key(), alg, DATA, _es256(key, DATA))


def test_no_algorithm_confusion() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(BadSignature, match="does not fit"):
        verify_signature(ed_key.public_key(), "ES256", DATA, ed_key.sign(DATA))
    with pytest.raises(BadSignature, match="does not fit"):
        verify_signature(ec_key.public_key(), "EdDSA", DATA, _es256(ec_key, DATA))


def test_es256_needs_p256() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(BadSignature):
        verify_signature(key.public_key(), "ES256", DATA, bytes(64))


def test_der_signature_is_not_accepted_for_es256() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.sign(DATA, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(BadSignature):
        verify_signature(key.public_key(), "ES256", DATA, der)
