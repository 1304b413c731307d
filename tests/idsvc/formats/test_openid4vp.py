"""idsvc.formats.openid4vp: the verifier's signed request, its DCQL query, the vp_token."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwk as jrfc_jwk
from joserfc import jws as jrfc

from idsvc.formats import openid4vp
from idsvc.formats.jws import verify_compact
from idsvc.formats.openid4vp import (
    REQUEST_TYP,
    authorization_uri,
    dcql_query,
    parse_vp_token,
    request_object_claims,
    sign_request_object,
    x509_hash_client_id,
)
from idsvc.formats.sd_jwt import MAX_SD_JWT_CHARS
from keys.file_signer import FileSigner

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
VCT = "https://id.mcs.gov.kh/v1/wallet/types/civil-servant"
RESPONSE_URI = "https://id.mcs.gov.kh/v1/presentation-requests/4b1f/response"
REQUEST_URI = "https://id.mcs.gov.kh/v1/presentation-requests/4b1f/request"
PRESENTATION = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln~WyJhIiwgImIiLCAiYyJd~eyJhbGciOiJFUzI1NiJ9.e30.c2ln"


@pytest.fixture(scope="module")
def verifier() -> tuple[FileSigner, bytes]:
    """The verifier's key and its self-signed certificate (DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "verifier.mcs.gov.kh")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    signer = FileSigner(key, path=Path("never-written.pem"))
    return signer, cert.public_bytes(serialization.Encoding.DER)


def test_x509_hash_client_id_is_the_b64url_sha256_of_the_der_leaf() -> None:
    der = b"\x30\x03\x02\x01\x01"
    digest = hashlib.sha256(der).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert x509_hash_client_id(der) == f"x509_hash:{expected}"
    assert "=" not in x509_hash_client_id(der)


def test_dcql_query_asks_for_one_sd_jwt_vc_with_exactly_these_claims() -> None:
    assert dcql_query(["name", "name_latin", "photo"], vct=VCT) == {
        "credentials": [
            {
                "id": "civil_servant",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [VCT]},
                "claims": [{"path": ["name"]}, {"path": ["name_latin"]}, {"path": ["photo"]}],
            }
        ]
    }
    other = dcql_query(["grade"], vct=VCT, query_id="q1", credential_format="vc+sd-jwt")
    assert other["credentials"][0]["id"] == "q1"
    assert other["credentials"][0]["format"] == "vc+sd-jwt"


@pytest.mark.parametrize(("claims", "reason"), [([], "non-empty"), (["a", "a"], "duplicates")])
def test_dcql_query_refuses_bad_claim_lists(claims: list[str], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        dcql_query(claims, vct=VCT)


def test_optional_claims_are_claim_sets_every_combination_most_wanted_first() -> None:
    dcql = dcql_query(["name", "photo"], optional=["ministry", "position"], vct=VCT)
    (query,) = dcql["credentials"]
    # The shape of OpenID4VP 1.0 §6.4.1's example: claims with ids, claim_sets of those ids.
    assert query["claims"] == [
        {"id": "name", "path": ["name"]},
        {"id": "photo", "path": ["photo"]},
        {"id": "ministry", "path": ["ministry"]},
        {"id": "position", "path": ["position"]},
    ]
    assert query["claim_sets"] == [
        ["name", "photo", "ministry", "position"],
        ["name", "photo", "ministry"],
        ["name", "photo", "position"],
        ["name", "photo"],
    ]
    assert (query["id"], query["format"], query["meta"]) == (
        "civil_servant",
        "dc+sd-jwt",
        {"vct_values": [VCT]},
    )
    # Whatever the holder leaves out of the optional ones, what is left is a set.
    (four,) = dcql_query(["name"], optional=["a", "b", "c", "d"], vct=VCT)["credentials"]
    sets = four["claim_sets"]
    assert len(sets) == 16 and len({frozenset(s) for s in sets}) == 16
    assert all(s[0] == "name" for s in sets)
    assert [len(s) for s in sets] == sorted((len(s) for s in sets), reverse=True)
    ids = {c["id"] for c in four["claims"]}
    assert all(set(s) <= ids for s in sets)


@pytest.mark.parametrize(
    ("claims", "optional", "reason"),
    [
        ([], ["name"], "non-empty"),
        (["name"], ["name"], "both required and optional"),
        (["name"], ["a", "b", "c", "d", "e"], "at most 4 optional"),
        (["name"], ["a.b"], "cannot be a DCQL claim id"),
        (["name"], [""], "non-empty"),
    ],
)
def test_dcql_query_refuses_bad_optional_claims(
    claims: list[str], optional: list[str], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        dcql_query(claims, optional=optional, vct=VCT)


def _claims(client_id: str) -> dict[str, object]:
    return request_object_claims(
        client_id=client_id,
        response_uri=RESPONSE_URI,
        nonce="n-0S6_WzA2Mj",
        state="af0ifjsldkj",
        dcql=dcql_query(["name"], vct=VCT),
        now=NOW,
        lifetime=timedelta(minutes=5),
    )


def test_request_object_claims_ask_for_a_direct_post_answer() -> None:
    claims = _claims("x509_hash:abc")
    assert claims["client_id"] == "x509_hash:abc"
    assert claims["response_type"] == "vp_token"
    assert claims["response_mode"] == "direct_post"
    assert claims["response_uri"] == RESPONSE_URI
    assert claims["aud"] == "https://self-issued.me/v2"
    assert claims["nonce"] == "n-0S6_WzA2Mj" and claims["state"] == "af0ifjsldkj"
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["exp"] == int(NOW.timestamp()) + 300
    assert claims["client_metadata"] == {
        "vp_formats_supported": {
            "dc+sd-jwt": {"sd-jwt_alg_values": ["ES256", "EdDSA"], "kb-jwt_alg_values": ["ES256"]}
        }
    }


def test_a_wallet_can_check_the_signed_request(verifier: tuple[FileSigner, bytes]) -> None:
    """What a wallet does with x509_hash (OpenID4VP §5.9.3), with joserfc for the JWS."""
    signer, der = verifier
    client_id = x509_hash_client_id(der)
    token = sign_request_object(_claims(client_id), signer, x5c=[der])

    header_b64 = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    assert header["typ"] == REQUEST_TYP == "oauth-authz-req+jwt"
    leaf = base64.b64decode(header["x5c"][0], validate=True)  # standard base64, RFC 7515 §4.1.6
    assert leaf == der
    assert (
        client_id
        == "x509_hash:"
        + base64.urlsafe_b64encode(hashlib.sha256(leaf).digest()).rstrip(b"=").decode()
    )
    cert = x509.load_der_x509_certificate(leaf)
    pem = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    registry = jrfc.JWSRegistry(algorithms=["ES256"])
    registry.max_header_length = 4096  # joserfc's default (512) is below any header with x5c
    obj = jrfc.deserialize_compact(token, jrfc_jwk.ECKey.import_key(pem), registry=registry)
    assert json.loads(obj.payload)["client_id"] == client_id
    ours = verify_compact(token, key_for=lambda _h: signer.public_key(), expected_typ=REQUEST_TYP)
    assert ours.payload["dcql_query"]["credentials"][0]["meta"]["vct_values"] == [VCT]


def test_sign_request_object_needs_a_leaf(verifier: tuple[FileSigner, bytes]) -> None:
    with pytest.raises(ValueError, match="leaf"):
        sign_request_object(_claims("x509_hash:abc"), verifier[0], x5c=[])


def test_authorization_uri_is_a_request_by_reference() -> None:
    client_id = "x509_hash:QG9T4pPQ1Pg0t8LQZy8iBfYiWP6OBfsMKaQGmB2Eq_o"
    uri = authorization_uri(client_id=client_id, request_uri=REQUEST_URI)
    assert uri.startswith("openid4vp://?client_id=x509_hash%3AQG9T")
    parts = urlsplit(uri)
    assert parts.scheme == "openid4vp"
    assert parse_qs(parts.query, strict_parsing=True) == {
        "client_id": [client_id],
        "request_uri": [REQUEST_URI],
    }


def test_parse_vp_token_takes_the_one_presentation() -> None:
    answer = json.dumps({"civil_servant": [PRESENTATION]})
    assert parse_vp_token(answer, query_id="civil_servant") == PRESENTATION
    assert (
        parse_vp_token(json.dumps({"q": [PRESENTATION]}), query_id="q") == PRESENTATION
    )  # §8.1: an array of presentations per credential query
    assert parse_vp_token(json.dumps({"q": PRESENTATION}), query_id="q") == PRESENTATION


@pytest.mark.parametrize(
    ("form_value", "reason"),
    [
        ("", "missing"),
        ("not json", "not valid UTF-8 JSON"),
        (json.dumps([PRESENTATION]), "not a JSON object"),
        (json.dumps({"other": [PRESENTATION]}), "exactly the credential query 'q'"),
        (json.dumps({"q": [PRESENTATION], "x": [PRESENTATION]}), "exactly the credential query"),
        (json.dumps({"q": [PRESENTATION, PRESENTATION]}), "exactly one presentation"),
        (json.dumps({"q": []}), "exactly one presentation"),
        (json.dumps({"q": [42]}), "not a string"),
        (json.dumps({"q": {"vp": PRESENTATION}}), "not a string"),
        ('{"q": ["a"], "q": ["b"]}', "duplicate member 'q'"),
        (json.dumps({"q": ["A" * (MAX_SD_JWT_CHARS + 2000)]}), "longer than"),
    ],
)
def test_parse_vp_token_refusals(form_value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_vp_token(form_value, query_id="q")


def test_module_constants_are_the_specs() -> None:
    assert openid4vp.CLIENT_ID_PREFIX == "x509_hash:"
    assert openid4vp.SELF_ISSUED_AUDIENCE == "https://self-issued.me/v2"


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(st.text(max_size=200))
def test_parse_vp_token_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_vp_token(text, query_id="q")
