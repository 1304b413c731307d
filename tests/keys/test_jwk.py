from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc.jwk import ECKey, OKPKey

from keys.errors import InvalidJwk, UnsupportedAlgorithm
from keys.jwk import public_jwk, public_key_from_jwk, thumbprint

# RFC 7638 §3.1, the worked example (an RSA key): JWK members and expected thumbprint.
RFC7638_RSA_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
    "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
    "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# RFC 8037 Appendix A.3: thumbprint of the Ed25519 key of A.2.
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_rfc7638_example_vector() -> None:
    jwk = {"kty": "RSA", "n": RFC7638_RSA_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert thumbprint(jwk) == RFC7638_THUMBPRINT


def test_rfc8037_ed25519_thumbprint_vector() -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    assert thumbprint(jwk) == RFC8037_THUMBPRINT
    assert isinstance(public_key_from_jwk(jwk), ed25519.Ed25519PublicKey)


def test_ec_thumbprint_matches_joserfc() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    jwk = public_jwk(key)
    assert set(jwk) == {"kty", "crv", "x", "y"}
    assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256")
    assert thumbprint(jwk) == ECKey.import_key(dict[str, str | list[str]](jwk)).thumbprint()


def test_okp_thumbprint_matches_joserfc() -> None:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    jwk = public_jwk(key)
    assert jwk.keys() == {"kty", "crv", "x"}
    assert thumbprint(jwk) == OKPKey.import_key(dict[str, str | list[str]](jwk)).thumbprint()


def test_thumbprint_ignores_optional_members() -> None:
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert thumbprint({**jwk, "kid": "x", "use": "sig", "alg": "ES256"}) == thumbprint(jwk)


@pytest.mark.parametrize(
    "private_key",
    [ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()],
    ids=["P-256", "Ed25519"],
)
def test_public_key_round_trip(private_key: ec.EllipticCurvePrivateKey) -> None:
    public = private_key.public_key()
    again = public_key_from_jwk(public_jwk(public))
    assert public_jwk(again) == public_jwk(public)


def test_private_member_is_refused() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = ECKey.import_key(private).as_dict(private=True)
    assert "d" in jwk
    with pytest.raises(InvalidJwk, match="private"):
        public_key_from_jwk(jwk)


def test_rsa_key_is_refused() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        public_key_from_jwk({"kty": "RSA", "n": RFC7638_RSA_N, "e": "AQAB"})


def test_other_curves_are_refused() -> None:
    p384 = ECKey.import_key(ec.generate_private_key(ec.SECP384R1()).public_key()).as_dict()
    with pytest.raises(UnsupportedAlgorithm):
        public_key_from_jwk(p384)
    with pytest.raises(UnsupportedAlgorithm):
        public_key_from_jwk({"kty": "OKP", "crv": "X25519", "x": RFC8037_X})
    with pytest.raises(UnsupportedAlgorithm):
        public_key_from_jwk({"kty": "oct"})
    # A secret key is refused for carrying a private member before its kty is considered.
    with pytest.raises(InvalidJwk, match="private"):
        public_key_from_jwk({"kty": "oct", "k": "c2VjcmV0"})


def test_alg_must_fit_the_key() -> None:
    jwk = public_jwk(ed25519.Ed25519PrivateKey.generate().public_key())
    assert public_key_from_jwk({**jwk, "alg": "EdDSA", "use": "sig"})
    with pytest.raises(UnsupportedAlgorithm):
        public_key_from_jwk({**jwk, "alg": "ES256"})
    with pytest.raises(InvalidJwk):
        public_key_from_jwk({**jwk, "use": "enc"})


def test_point_not_on_curve_is_refused() -> None:
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(InvalidJwk, match="curve"):
        public_key_from_jwk({**jwk, "y": jwk["x"]})


@pytest.mark.parametrize("bad_x", [RFC8037_X + "=", RFC8037_X[:-2], "!" + RFC8037_X[1:], 7])
def test_bad_encodings_are_refused(bad_x: object) -> None:
    with pytest.raises(InvalidJwk):
        public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": bad_x})
