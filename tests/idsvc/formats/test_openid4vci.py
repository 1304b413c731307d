"""idsvc.formats.openid4vci: the offer URI and the holder's key proof (OpenID4VCI 1.0)."""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwk as jrfc_jwk
from joserfc import jws as jrfc

from idsvc.formats import openid4vci
from idsvc.formats.jws import sign_compact
from idsvc.formats.openid4vci import (
    PRE_AUTHORIZED_GRANT,
    PROOF_TYP,
    OfferError,
    ProofError,
    check_proof,
    make_proof,
    offer_uri,
    parse_offer_uri,
)
from keys.file_signer import FileSigner
from keys.jwk import public_jwk

ISSUER = "https://id.mcs.gov.kh"
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
NONCE = "wKI4LT17ac15ES9bw8ac4"
CONFIGURATIONS = ["civil_servant_sd_jwt", "civil_servant_vc_sd_jwt"]
DESCRIPTION = "Code read out at the desk / ລະຫັດຈາກໂຕະ"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@pytest.fixture(scope="module")
def wallet() -> FileSigner:
    return FileSigner(ec.generate_private_key(ec.SECP256R1()), path=Path("never-written.pem"))


def _jwk(signer: FileSigner) -> dict[str, Any]:
    return dict(public_jwk(signer.public_key()))


def _proof(wallet: FileSigner, **claims: Any) -> str:
    body: dict[str, Any] = {"aud": ISSUER, "iat": int(NOW.timestamp()), "nonce": NONCE}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return sign_compact(
        body, wallet, typ=PROOF_TYP, extra_headers={"jwk": _jwk(wallet)}, include_kid=False
    )


# -- the offer -----------------------------------------------------------------------------------


def _offer() -> str:
    return offer_uri(
        credential_issuer=ISSUER,
        configuration_ids=CONFIGURATIONS,
        pre_authorized_code="SplxlOBeZQQYbYS6WxSbIA",
        tx_code_length=6,
        tx_code_description=DESCRIPTION,
    )


def test_offer_uri_is_the_offer_by_value_of_section_4_1_1() -> None:
    uri = _offer()
    assert uri.startswith("openid-credential-offer://?credential_offer=%7B")
    assert "+" not in uri and " " not in uri  # spaces as %20: decodeURIComponent keeps '+'
    # Read back with the standard library alone, not with our parser.
    (name, value), *rest = parse_qsl(urlsplit(uri).query)
    assert name == "credential_offer" and rest == []
    assert json.loads(value) == {
        "credential_issuer": ISSUER,
        "credential_configuration_ids": CONFIGURATIONS,
        "grants": {
            PRE_AUTHORIZED_GRANT: {
                "pre-authorized_code": "SplxlOBeZQQYbYS6WxSbIA",
                "tx_code": {"input_mode": "numeric", "length": 6, "description": DESCRIPTION},
            }
        },
    }
    assert json.loads(unquote(uri.split("=", 1)[1])) == json.loads(value)


def test_parse_offer_uri_reads_what_offer_uri_makes() -> None:
    offer = parse_offer_uri(_offer())
    assert offer["credential_issuer"] == ISSUER
    grant = offer["grants"][PRE_AUTHORIZED_GRANT]
    assert grant["tx_code"]["description"] == DESCRIPTION


def test_parse_offer_uri_takes_a_universal_link_too() -> None:
    query = _offer().split("?", 1)[1]
    assert parse_offer_uri(f"https://wallet.example/offer?{query}")["credential_issuer"] == ISSUER


def _uri_of(offer: Any) -> str:
    return "openid-credential-offer://?credential_offer=" + quote(json.dumps(offer), safe="")


def _good_offer() -> dict[str, Any]:
    return json.loads(unquote(_offer().split("=", 1)[1]))  # type: ignore[no-any-return]


def _with(path: list[str], value: Any) -> dict[str, Any]:
    offer = _good_offer()
    target = offer
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return offer


_DELETE = object()
_GRANT = ["grants", PRE_AUTHORIZED_GRANT]


@pytest.mark.parametrize(
    ("offer", "reason"),
    [
        (_with(["credential_issuer"], "ftp://id.mcs.gov.kh"), "http\\(s\\) URL"),
        (_with(["credential_issuer"], "https://id.mcs.gov.kh?x=1"), "no query or fragment"),
        (_with(["credential_configuration_ids"], []), "non-empty array"),
        (_with(["credential_configuration_ids"], ["a", "a"]), "duplicates"),
        (_with(["credential_configuration_ids"], [7]), "non-empty array of strings"),
        (_with(["grants"], _DELETE), "grants must be an object"),
        (_with(_GRANT, _DELETE), "no pre-authorized code grant"),
        (_with([*_GRANT, "pre-authorized_code"], ""), "non-empty string"),
        (_with([*_GRANT, "tx_code"], "123456"), "tx_code must be an object"),
        (_with([*_GRANT, "tx_code", "input_mode"], "voice"), "numeric or text"),
        (_with([*_GRANT, "tx_code", "length"], 0), "integer from 1 to 64"),
        (_with([*_GRANT, "tx_code", "length"], True), "integer from 1 to 64"),
        (_with([*_GRANT, "tx_code", "description"], "x" * 301), "<= 300"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_malformed_offers_are_refused(offer: Any, reason: str) -> None:
    with pytest.raises(OfferError, match=reason):
        parse_offer_uri(_uri_of(offer))


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("openid-credential-offer://?x=1", "no credential_offer parameter"),
        ("openid-credential-offer://", "no credential_offer parameter"),
        (
            "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fid.mcs.gov.kh%2Fo%2F1",
            "by reference",
        ),
        ("openid-credential-offer://?credential_offer=%7B%7D&credential_offer=%7B%7D", "once"),
        ("openid-credential-offer://?credential_offer=%7Bnot-json", "not valid UTF-8 JSON"),
        (
            "openid-credential-offer://?credential_offer="
            + quote('{"credential_issuer":"https://a","credential_issuer":"https://b"}'),
            "duplicate member 'credential_issuer'",
        ),
        ("openid-credential-offer://?credential_offer=" + "A" * 5000, "longer than 4096"),
    ],
)
def test_malformed_offer_uris_are_refused(uri: str, reason: str) -> None:
    with pytest.raises(OfferError, match=reason):
        parse_offer_uri(uri)


def test_offer_uri_refuses_to_make_what_it_would_not_read() -> None:
    with pytest.raises(OfferError, match="<= 300"):
        offer_uri(
            credential_issuer=ISSUER,
            configuration_ids=CONFIGURATIONS,
            pre_authorized_code="code",
            tx_code_length=6,
            tx_code_description="x" * 301,
        )


# -- the key proof ---------------------------------------------------------------------------------


def test_a_good_proof_gives_the_holder_key_and_nonce(wallet: FileSigner) -> None:
    token = make_proof(wallet, _jwk(wallet), audience=ISSUER, nonce=NONCE, now=NOW)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "typ": PROOF_TYP, "jwk": _jwk(wallet)}  # no kid
    checked = check_proof(token, audience=ISSUER, now=NOW + timedelta(seconds=30))
    assert checked.jwk == _jwk(wallet)
    assert checked.nonce == NONCE
    assert checked.iat == NOW


def test_a_proof_made_by_joserfc_is_accepted(wallet: FileSigner) -> None:
    """A wallet's proof from another JOSE implementation, with extra jwk members (kid, use)."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = jrfc_jwk.ECKey.import_key(pem)
    public = dict(key.as_dict(private=False), use="sig")
    body = {"aud": ISSUER, "iat": int(NOW.timestamp()), "nonce": NONCE, "iss": "wallet-app"}
    token = jrfc.serialize_compact(
        {"alg": "ES256", "typ": PROOF_TYP, "jwk": public},
        json.dumps(body).encode(),
        key,
        algorithms=["ES256"],
    )
    checked = check_proof(token, audience=ISSUER, now=NOW)
    assert checked.jwk == public_jwk(private.public_key())  # canonical members only
    assert checked.nonce == NONCE


@pytest.mark.parametrize(
    ("claims", "now", "code", "reason"),
    [
        ({"aud": "https://evil.example"}, NOW, "invalid_proof", "aud is not this credential"),
        ({"aud": [ISSUER]}, NOW, "invalid_proof", "aud is not this credential"),
        ({}, NOW + timedelta(minutes=5, seconds=1), "invalid_proof", "iat is stale"),
        ({}, NOW - timedelta(minutes=5, seconds=1), "invalid_proof", "iat is in the future"),
        ({"iat": "1796000000"}, NOW, "invalid_proof", "iat missing or not an integer"),
        ({"nonce": None}, NOW, "invalid_proof", "no nonce: ask the nonce endpoint"),
        ({"nonce": 42}, NOW, "invalid_nonce", "not a c_nonce"),
        ({"nonce": ""}, NOW, "invalid_nonce", "not a c_nonce"),
        ({"nonce": "n" * 257}, NOW, "invalid_nonce", "not a c_nonce"),
    ],
)
def test_proof_claims_are_checked(
    wallet: FileSigner, claims: dict[str, Any], now: datetime, code: str, reason: str
) -> None:
    with pytest.raises(ProofError, match=reason) as caught:
        check_proof(_proof(wallet, **claims), audience=ISSUER, now=now)
    assert caught.value.code == code


def _raw(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    h = _b64(json.dumps(header).encode())
    p = _b64(json.dumps(payload).encode())
    return f"{h}.{p}.{_b64(signature)}"


def _body() -> dict[str, Any]:
    return {"aud": ISSUER, "iat": int(NOW.timestamp()), "nonce": NONCE}


def test_alg_none_and_hs256_are_refused(wallet: FileSigner) -> None:
    jwk = _jwk(wallet)
    unsigned = _raw({"alg": "none", "typ": PROOF_TYP, "jwk": jwk}, _body())
    header = {"alg": "HS256", "typ": PROOF_TYP, "jwk": jwk}
    signing_input = _raw(header, _body()).rsplit(".", 1)[0]
    mac = hmac.new(json.dumps(jwk).encode(), signing_input.encode(), "sha256").digest()
    for token in (unsigned, f"{signing_input}.{_b64(mac)}"):
        with pytest.raises(ProofError, match="proof alg must be ES256") as caught:
            check_proof(token, audience=ISSUER, now=NOW)
        assert caught.value.code == "invalid_proof"


def test_an_ed25519_proof_is_refused() -> None:
    signer = FileSigner(ed25519.Ed25519PrivateKey.generate(), path=Path("never-written.pem"))
    token = sign_compact(
        _body(), signer, typ=PROOF_TYP, extra_headers={"jwk": _jwk(signer)}, include_kid=False
    )
    with pytest.raises(ProofError, match="proof alg must be ES256"):
        check_proof(token, audience=ISSUER, now=NOW)


def test_a_private_key_in_the_jwk_header_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())  # a wallet that leaks its own private key
    signer = FileSigner(key, path=Path("never-written.pem"))
    d = key.private_numbers().private_value.to_bytes(32, "big")
    leaked = dict(public_jwk(key.public_key()), d=_b64(d))
    token = sign_compact(
        _body(), signer, typ=PROOF_TYP, extra_headers={"jwk": leaked}, include_kid=False
    )
    with pytest.raises(ProofError, match="the proof's jwk carries a private key") as caught:
        check_proof(token, audience=ISSUER, now=NOW)
    assert caught.value.code == "invalid_proof"


def test_the_header_must_carry_the_key_as_jwk_only(wallet: FileSigner) -> None:
    jwk = _jwk(wallet)
    cases: list[tuple[dict[str, Any], bool, str]] = [
        ({"jwk": jwk}, True, "jwk only"),  # kid next to jwk (sign_compact adds the kid)
        ({"jwk": jwk, "x5c": ["MIIB"]}, False, "jwk only"),
        ({}, False, "no jwk object"),
        ({"jwk": "not-an-object"}, False, "no jwk object"),
        ({"jwk": {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}}, False, "not usable"),
    ]
    for extra, with_kid, reason in cases:
        token = sign_compact(
            _body(), wallet, typ=PROOF_TYP, extra_headers=extra, include_kid=with_kid
        )
        with pytest.raises(ProofError, match=reason) as caught:
            check_proof(token, audience=ISSUER, now=NOW)
        assert caught.value.code == "invalid_proof"


def test_a_proof_signed_by_another_key_than_its_jwk(wallet: FileSigner) -> None:
    other = FileSigner(ec.generate_private_key(ec.SECP256R1()), path=Path("never-written.pem"))
    token = sign_compact(
        _body(), other, typ=PROOF_TYP, extra_headers={"jwk": _jwk(wallet)}, include_kid=False
    )
    with pytest.raises(ProofError, match="signature does not verify"):
        check_proof(token, audience=ISSUER, now=NOW)


def test_a_proof_of_another_type(wallet: FileSigner) -> None:
    for typ in ("JWT", "dpop+jwt", "kb+jwt"):
        token = sign_compact(
            _body(), wallet, typ=typ, extra_headers={"jwk": _jwk(wallet)}, include_kid=False
        )
        with pytest.raises(ProofError, match="typ must be openid4vci-proof\\+jwt"):
            check_proof(token, audience=ISSUER, now=NOW)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "missing"),
        ("a.b", "malformed"),
        ("e30.e30.e30=", "malformed: base64url padding"),
        ("A" * 4097, "longer than 4096"),
    ],
)
def test_malformed_or_oversized_proofs(token: str, reason: str) -> None:
    with pytest.raises(ProofError, match=reason) as caught:
        check_proof(token, audience=ISSUER, now=NOW)
    assert caught.value.code == "invalid_proof"


def test_check_proof_needs_an_aware_now(wallet: FileSigner) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_proof(_proof(wallet), audience=ISSUER, now=NOW.replace(tzinfo=None))


def test_module_constants_are_the_specs() -> None:
    assert openid4vci.PROOF_TYP == "openid4vci-proof+jwt"
    assert openid4vci.PRE_AUTHORIZED_GRANT == "urn:ietf:params:oauth:grant-type:pre-authorized_code"


PROPERTY = settings(max_examples=200, derandomize=True, database=None, deadline=None)


@PROPERTY
@given(st.text(max_size=300))
def test_parse_offer_uri_raises_only_offer_error(text: str) -> None:
    with contextlib.suppress(OfferError):
        parse_offer_uri("openid-credential-offer://?credential_offer=" + quote(text))
    with contextlib.suppress(OfferError):
        parse_offer_uri(text)


@PROPERTY
@given(st.text(alphabet="AQgw_-.eyJ0", max_size=300))
def test_check_proof_raises_only_proof_error(text: str) -> None:
    with contextlib.suppress(ProofError):
        check_proof(text, audience=ISSUER, now=NOW)
