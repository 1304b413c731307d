"""idsvc.formats.sd_jwt: RFC 9901 vectors, the OpenWallet Foundation's sd-jwt both ways, attacks."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from idsvc.formats import sd_jwt
from idsvc.formats.jws import BadSignature, MalformedJws, sign_compact
from idsvc.formats.sd_jwt import SdJwtError
from keys.file_signer import FileSigner
from keys.jwk import public_jwk

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
AUD = "x509_hash:QG9T4pPQ1Pg0t8LQZy8iBfYiWP6OBfsMKaQGmB2Eq_o"
NONCE = "n-0S6_WzA2Mj-4kq"
TYP = "dc+sd-jwt"
KHMER_NAME = "សុខ ចន្ថា"
LAO_MINISTRY = "ກະຊວງພາຍໃນ"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signer(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> FileSigner:
    return FileSigner(key, path=Path("never-written.pem"))  # the path is only a label


@pytest.fixture(scope="module", params=["ES256", "EdDSA"])
def issuer(request: pytest.FixtureRequest) -> FileSigner:
    if request.param == "ES256":
        return _signer(ec.generate_private_key(ec.SECP256R1()))
    return _signer(ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def holder() -> FileSigner:
    return _signer(ec.generate_private_key(ec.SECP256R1()))


def _claims(holder: FileSigner) -> dict[str, Any]:
    return {
        "iss": "https://id.mcs.gov.kh",
        "sub": "KH-MCS-010002",
        "jti": "6c1b3a55-43c1-4a0e-9d0b-2f5b8a1c9e11",
        "vct": "https://id.mcs.gov.kh/v1/wallet/types/civil-servant",
        "iat": 1_796_000_000,
        "nbf": 1_796_000_000,
        "exp": 1_827_536_000,
        "cnf": {"jwk": public_jwk(holder.public_key())},
        "status": {"status_list": {"idx": 4711, "uri": "https://id.mcs.gov.kh/v1/status/1"}},
        "name": KHMER_NAME,
        "name_latin": "Sok Chantha",
        "ministry": "Ministry of Civil Service",
        "ministry_local": LAO_MINISTRY,
        "grade": "A1",
        "birthdate": "1984-03-12",
    }


DISCLOSABLE = ("name", "name_latin", "ministry", "ministry_local", "grade", "birthdate")


def _issue(issuer: FileSigner, holder: FileSigner, **kwargs: Any) -> str:
    return sd_jwt.issue_sd_jwt(_claims(holder), DISCLOSABLE, issuer, typ=TYP, **kwargs)


def _verified_claims(text: str, issuer: FileSigner) -> dict[str, Any]:
    parsed = sd_jwt.parse(text)
    verified = sd_jwt.verify_issuer_jwt(
        parsed, key_for=lambda _h: issuer.public_key(), typs=[TYP, "vc+sd-jwt"]
    )
    return sd_jwt.disclosed_claims(verified.payload, parsed.disclosures)


def _presentation(
    issued: str, holder: FileSigner, names: list[str], *, nonce: str = NONCE, now: datetime = NOW
) -> sd_jwt.SdJwt:
    kept = sd_jwt.parse(issued).keep(names)
    kb = sd_jwt.make_kb_jwt(kept.without_kb(), holder, aud=AUD, nonce=nonce, now=now)
    return sd_jwt.SdJwt(jwt=kept.jwt, disclosures=kept.disclosures, kb_jwt=kb)


def _check(presented: sd_jwt.SdJwt, holder: FileSigner, **overrides: Any) -> None:
    assert presented.kb_jwt is not None
    args: dict[str, Any] = {
        "sd_jwt_without_kb": presented.without_kb(),
        "aud": AUD,
        "nonce": NONCE,
        "now": NOW,
        "max_age": timedelta(minutes=5),
    }
    args.update(overrides)
    sd_jwt.check_kb_jwt(presented.kb_jwt, public_jwk(holder.public_key()), **args)


# -- RFC 9901's own examples ----------------------------------------------------------------------

# RFC 9901 §5.1 (Example SD-JWT, issuance): the disclosures of given_name and family_name and
# the SHA-256 digests the issuer JWT's _sd array lists for them.
RFC_GIVEN_NAME = "WyIyR0xDNDJzS1F2ZUNmR2ZyeU5STjl3IiwgImdpdmVuX25hbWUiLCAiSm9obiJd"
RFC_GIVEN_NAME_DIGEST = "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4"
RFC_FAMILY_NAME = "WyJlbHVWNU9nM2dTTklJOEVZbnN4QV9BIiwgImZhbWlseV9uYW1lIiwgIkRvZSJd"
RFC_FAMILY_NAME_DIGEST = "TGf4oLbgwd5JQaHyKVQZU9UdGE0w5rtDsrZzfUaomLo"


@pytest.mark.parametrize(
    ("salt", "name", "value", "encoded", "digest"),
    [
        ("2GLC42sKQveCfGfryNRN9w", "given_name", "John", RFC_GIVEN_NAME, RFC_GIVEN_NAME_DIGEST),
        ("eluV5Og3gSNII8EYnsxA_A", "family_name", "Doe", RFC_FAMILY_NAME, RFC_FAMILY_NAME_DIGEST),
        # RFC 9901 §4.2.1: the UTF-8 spelling of ["_26bc4LT-ac6q2KI6cBW5es", "family_name",
        # "Möbius"] (the one we write: Lao and Khmer stay at their UTF-8 size).
        (
            "_26bc4LT-ac6q2KI6cBW5es",
            "family_name",
            "Möbius",
            "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0",
            None,
        ),
    ],
)
def test_make_disclosure_reproduces_the_rfc_examples(
    salt: str, name: str, value: str, encoded: str, digest: str | None
) -> None:
    made = sd_jwt.make_disclosure(name, value, salt=salt)
    assert made.encoded == encoded
    if digest is not None:
        assert made.digest == digest


def test_digest_is_over_the_ascii_text_as_in_rfc_section_4_2_3(
    issuer: FileSigner, holder: FileSigner
) -> None:
    # RFC 9901 §4.2.3: the digest of this disclosure (salt "6qMQvRL5haj", family_name "Möbius").
    encoded = "WyI2cU1RdlJMNWhhaiIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
    jwt = sign_compact({"_sd": ["x"], "_sd_alg": "sha-256"}, issuer, typ=TYP)
    parsed = sd_jwt.parse(f"{jwt}~{encoded}~")
    (disclosure,) = parsed.disclosures
    assert disclosure.digest == "uutlBuYeMDyjLLTpf6Jxi7yNkEF35jdyWMn9U7b_RYY"
    assert (disclosure.salt, disclosure.name, disclosure.value) == (
        "6qMQvRL5haj",
        "family_name",
        "Möbius",
    )


def test_parse_reads_the_rfc_disclosures_and_keeps_their_escaped_spelling(
    issuer: FileSigner,
) -> None:
    # RFC 9901 §4.2.1: the same claim with "\u00f6" escaped: another text, another digest,
    # the same value. The encoded text is kept as received, since the digest is over it.
    escaped = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNXHUwMGY2Yml1cyJd"
    digests = [RFC_GIVEN_NAME_DIGEST, RFC_FAMILY_NAME_DIGEST]
    jwt = sign_compact({"_sd": digests, "_sd_alg": "sha-256"}, issuer, typ=TYP)
    parsed = sd_jwt.parse(f"{jwt}~{RFC_GIVEN_NAME}~{RFC_FAMILY_NAME}~{escaped}~")
    assert [(d.name, d.value) for d in parsed.disclosures] == [
        ("given_name", "John"),
        ("family_name", "Doe"),
        ("family_name", "Möbius"),
    ]
    assert parsed.disclosures[2].encoded == escaped
    assert parsed.kb_jwt is None
    two = sd_jwt.SdJwt(jwt=jwt, disclosures=parsed.disclosures[:2], kb_jwt=None)
    assert sd_jwt.disclosed_claims({"_sd": digests, "_sd_alg": "sha-256"}, two.disclosures) == {
        "given_name": "John",
        "family_name": "Doe",
    }


# -- what we issue, read back by us ---------------------------------------------------------------


def test_issue_hides_each_disclosable_claim_behind_a_sorted_digest(
    issuer: FileSigner, holder: FileSigner
) -> None:
    issued = _issue(issuer, holder, decoys=3)
    assert issued.endswith("~")
    parsed = sd_jwt.parse(issued)
    verified = sd_jwt.verify_issuer_jwt(parsed, key_for=lambda _h: issuer.public_key(), typs=[TYP])
    payload = verified.payload
    assert verified.header == {"alg": issuer.alg, "kid": issuer.kid, "typ": TYP}
    assert not set(DISCLOSABLE) & set(payload)
    assert payload["_sd_alg"] == "sha-256"
    assert len(payload["_sd"]) == len(DISCLOSABLE) + 3  # three decoys among them
    assert payload["_sd"] == sorted(payload["_sd"])
    assert {d.digest for d in parsed.disclosures} < set(payload["_sd"])
    assert len({d.salt for d in parsed.disclosures}) == len(DISCLOSABLE)  # fresh salt each
    assert sd_jwt.disclosed_claims(payload, parsed.disclosures) == _claims(holder)


def test_issue_refuses_to_hide_what_a_verifier_must_see(
    issuer: FileSigner, holder: FileSigner
) -> None:
    for name in ("iss", "exp", "cnf", "status", "vct", "_sd"):
        with pytest.raises(ValueError, match="must stay visible"):
            sd_jwt.issue_sd_jwt(_claims(holder), [name], issuer, typ=TYP)


def test_keep_discloses_only_the_holders_choice(issuer: FileSigner, holder: FileSigner) -> None:
    issued = _issue(issuer, holder)
    kept = sd_jwt.parse(issued).keep(["name", "grade"])
    assert [d.name for d in kept.disclosures] == ["name", "grade"]
    assert kept.without_kb().count("~") == 3
    claims = _verified_claims(kept.serialize(), issuer)
    assert claims["name"] == KHMER_NAME and claims["grade"] == "A1"
    assert not {"name_latin", "ministry", "birthdate"} & set(claims)
    assert claims["sub"] == "KH-MCS-010002"


def test_a_presentation_with_kb_jwt_passes(issuer: FileSigner, holder: FileSigner) -> None:
    presented = _presentation(_issue(issuer, holder), holder, ["name"])
    text = presented.serialize()
    assert not text.endswith("~")
    again = sd_jwt.parse(text)
    assert again == presented
    _check(again, holder)
    assert presented.kb_jwt is not None
    header = json.loads(base64.urlsafe_b64decode(presented.kb_jwt.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "typ": "kb+jwt"}  # no kid: the key is the one in cnf


def test_sd_hash_is_sha256_of_everything_up_to_the_last_tilde() -> None:
    text = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln~WyJhIiwgImIiLCAiYyJd~"
    assert sd_jwt.sd_hash(text) == _b64(hashlib.sha256(text.encode("ascii")).digest())


# -- the independent implementation checks what we make, and we read what it makes ----------------


def _jwcrypto_public(signer: FileSigner) -> JWK:
    pem = signer.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return JWK.from_pem(pem)


def test_sd_jwt_python_verifies_what_we_issue(issuer: FileSigner, holder: FileSigner) -> None:
    issued = _issue(issuer, holder, decoys=2)
    key = _jwcrypto_public(issuer)
    verifier = SDJWTVerifier(issued, lambda _iss, _header: key)
    assert verifier.get_verified_payload() == _claims(holder)


def test_sd_jwt_python_verifies_our_presentation_and_kb_jwt(
    issuer: FileSigner, holder: FileSigner
) -> None:
    presented = _presentation(_issue(issuer, holder), holder, ["name", "ministry_local"])
    key = _jwcrypto_public(issuer)
    verifier = SDJWTVerifier(
        presented.serialize(), lambda _i, _h: key, expected_aud=AUD, expected_nonce=NONCE
    )
    payload = verifier.get_verified_payload()
    assert payload["name"] == KHMER_NAME and payload["ministry_local"] == LAO_MINISTRY
    assert "grade" not in payload
    # And it does check: our KB-JWT for another nonce is refused by it as well.
    with pytest.raises(ValueError, match="nonce"):
        SDJWTVerifier(
            presented.serialize(), lambda _i, _h: key, expected_aud=AUD, expected_nonce="other"
        )


def test_we_verify_an_sd_jwt_and_kb_jwt_issued_by_sd_jwt_python() -> None:
    issuer_key = JWK.generate(kty="EC", crv="P-256")
    holder_key = JWK.generate(kty="EC", crv="P-256")
    user_claims = {
        "iss": "https://issuer.example",
        "vct": "https://issuer.example/types/x",
        SDObj("given_name"): "Erika",
        SDObj("family_name"): "Mustermann",
        SDObj("address"): {SDObj("locality"): "Vientiane", "country": "LA"},
    }
    issuance = SDJWTIssuer(
        user_claims,
        issuer_key,
        holder_key,
        add_decoy_claims=True,
        extra_header_parameters={"typ": TYP},
    ).sd_jwt_issuance
    holder = SDJWTHolder(issuance)
    aud, nonce = "https://verifier.example", "xyz-123-nonce"
    holder.create_presentation(
        {"given_name": True, "address": {"locality": True}},
        nonce=nonce,
        aud=aud,
        holder_key=holder_key,
    )
    parsed = sd_jwt.parse(holder.sd_jwt_presentation)
    issuer_public = serialization.load_pem_public_key(issuer_key.export_to_pem())
    assert isinstance(issuer_public, ec.EllipticCurvePublicKey)
    verified = sd_jwt.verify_issuer_jwt(parsed, key_for=lambda _h: issuer_public, typs=[TYP])
    claims = sd_jwt.disclosed_claims(verified.payload, parsed.disclosures)
    assert claims["given_name"] == "Erika"
    assert claims["address"] == {"locality": "Vientiane", "country": "LA"}  # nested _sd
    assert "family_name" not in claims
    assert parsed.kb_jwt is not None
    sd_jwt.check_kb_jwt(
        parsed.kb_jwt,
        claims["cnf"]["jwk"],
        sd_jwt_without_kb=parsed.without_kb(),
        aud=aud,
        nonce=nonce,
        now=datetime.now(UTC),  # the library stamps iat from the real clock
        max_age=timedelta(minutes=5),
    )


# -- bad input: each refused with its own reason --------------------------------------------------


def _swap_disclosure(issued: str, index: int, replacement: str) -> str:
    parts = issued.split("~")
    parts[1 + index] = replacement
    return "~".join(parts)


def test_a_tampered_disclosure_is_not_in_the_jwt(issuer: FileSigner, holder: FileSigner) -> None:
    issued = _issue(issuer, holder)
    original = sd_jwt.parse(issued).disclosures[4]
    assert original.name == "grade"
    forged = sd_jwt.make_disclosure("grade", "S1", salt=original.salt)  # same salt, new value
    with pytest.raises(SdJwtError) as caught:
        _verified_claims(_swap_disclosure(issued, 4, forged.encoded), issuer)
    assert (caught.value.code, caught.value.reason) == (
        "bad_disclosure",
        "disclosure of 'grade' is not in the JWT",
    )


def test_a_disclosure_from_another_credential_is_refused(
    issuer: FileSigner, holder: FileSigner
) -> None:
    mine = _issue(issuer, holder)
    someone_else = sd_jwt.parse(_issue(issuer, holder)).disclosures[0]
    with pytest.raises(SdJwtError, match="disclosure of 'name' is not in the JWT") as caught:
        _verified_claims(_swap_disclosure(mine, 0, someone_else.encoded), issuer)
    assert caught.value.code == "bad_disclosure"


def test_a_repeated_disclosure_is_refused(issuer: FileSigner, holder: FileSigner) -> None:
    issued = _issue(issuer, holder)
    first = sd_jwt.parse(issued).disclosures[0].encoded
    with pytest.raises(SdJwtError, match="given twice") as caught:
        _verified_claims(issued + first + "~", issuer)
    assert caught.value.code == "bad_disclosure"


def _signed_with_sd(issuer: FileSigner, payload: dict[str, Any], *encoded: str) -> str:
    return sign_compact(payload, issuer, typ=TYP) + "~" + "".join(e + "~" for e in encoded)


def test_a_digest_listed_twice_is_refused(issuer: FileSigner) -> None:
    d = sd_jwt.make_disclosure("grade", "A1")
    text = _signed_with_sd(issuer, {"_sd": [d.digest, d.digest], "_sd_alg": "sha-256"}, d.encoded)
    with pytest.raises(SdJwtError, match="more than once") as caught:
        _verified_claims(text, issuer)
    assert caught.value.code == "bad_disclosure"


def test_a_disclosure_may_not_overwrite_a_visible_claim(issuer: FileSigner) -> None:
    d = sd_jwt.make_disclosure("sub", "KH-MCS-999999")
    payload = {"sub": "KH-MCS-010002", "_sd": [d.digest], "_sd_alg": "sha-256"}
    with pytest.raises(SdJwtError, match="claim 'sub' is given twice"):
        _verified_claims(_signed_with_sd(issuer, payload, d.encoded), issuer)


@pytest.mark.parametrize(
    ("disclosure", "code", "reason"),
    [
        (["salt", "_sd", "x"], "bad_disclosure", "reserved name '_sd'"),
        (["salt", "...", "x"], "bad_disclosure", "reserved name '...'"),
        (["salt", "DE"], "bad_disclosure", "array element"),
        (["salt", "a", "b", "c"], "malformed", r"not \[salt, name, value\]"),
        ({"salt": "a"}, "malformed", "not a JSON array"),
        (["salt", 7, "x"], "malformed", "must be strings"),
    ],
)
def test_disclosures_of_the_wrong_shape(
    issuer: FileSigner, disclosure: Any, code: str, reason: str
) -> None:
    encoded = _b64(json.dumps(disclosure).encode())
    text = _signed_with_sd(issuer, {"_sd_alg": "sha-256"}, encoded)
    with pytest.raises(SdJwtError, match=reason) as caught:
        sd_jwt.parse(text)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'["s", "n", {"a": 1, "a": 2}]', "duplicate member 'a'"),
        (b'["s", "n", NaN]', "not valid UTF-8 JSON"),
        (b'["s", "n", "\xff"]', "not valid UTF-8 JSON"),
    ],
)
def test_disclosure_json_is_strict(issuer: FileSigner, raw: bytes, reason: str) -> None:
    text = _signed_with_sd(issuer, {"_sd_alg": "sha-256"}, _b64(raw))
    with pytest.raises(SdJwtError, match=reason) as caught:
        sd_jwt.parse(text)
    assert caught.value.code == "malformed"


def test_shape_of_the_whole(issuer: FileSigner, holder: FileSigner) -> None:
    issued = _issue(issuer, holder)
    jwt = issued.split("~")[0]
    d = issued.split("~")[1]
    cases = {
        jwt: "no '~' after the issuer JWT",
        f"{jwt}~~{d}~": "disclosure 0 is empty",
        f"{jwt}~{d}=~": "character outside base64url",
        f"{jwt}~{d[:-1]}~": "not canonical base64url",
        f"abc~{d}~": "not a compact JWS",
        f"{jwt}~{d}~not-a-jwt": "not a KB-JWT",
        f"{jwt}~{d}~ ": "character outside base64url",
        jwt + "~" + "~".join([d] * (sd_jwt.MAX_DISCLOSURES + 1)) + "~": "more than 64",
        jwt + "~" + "A" * sd_jwt.MAX_SD_JWT_CHARS + "~": "longer than",
    }
    for text, reason in cases.items():
        with pytest.raises(SdJwtError, match=reason) as caught:
            sd_jwt.parse(text)
        assert caught.value.code == "malformed", reason


def test_only_sha_256_digests(issuer: FileSigner) -> None:
    d = sd_jwt.make_disclosure("grade", "A1")
    text = _signed_with_sd(issuer, {"_sd": [d.digest], "_sd_alg": "sha-512"}, d.encoded)
    with pytest.raises(SdJwtError, match="_sd_alg 'sha-512' is not supported"):
        _verified_claims(text, issuer)


def test_the_issuer_jwt_is_checked(issuer: FileSigner, holder: FileSigner) -> None:
    issued = _issue(issuer, holder)
    parsed = sd_jwt.parse(issued)
    with pytest.raises(MalformedJws, match="unexpected typ"):
        sd_jwt.verify_issuer_jwt(parsed, key_for=lambda _h: issuer.public_key(), typs=["JWT"])
    other = _signer(ec.generate_private_key(ec.SECP256R1())).public_key()
    if issuer.alg == "ES256":
        with pytest.raises(BadSignature):
            sd_jwt.verify_issuer_jwt(parsed, key_for=lambda _h: other, typs=[TYP])


# -- the KB-JWT -----------------------------------------------------------------------------------


def test_kb_jwt_refusals(issuer: FileSigner, holder: FileSigner) -> None:
    issued = _issue(issuer, holder)
    presented = _presentation(issued, holder, ["name", "grade"])
    fewer = sd_jwt.SdJwt(presented.jwt, presented.disclosures[:1], presented.kb_jwt)
    cases: list[tuple[sd_jwt.SdJwt, dict[str, Any], str]] = [
        # the verifier's own presentation text differs from what the holder signed
        (fewer, {}, "sd_hash does not match"),
        (presented, {"nonce": "another-nonce"}, "nonce is not the one asked for"),
        (presented, {"aud": "x509_hash:someone-else"}, "aud is not this verifier"),
        (presented, {"now": NOW + timedelta(minutes=6)}, "iat is stale"),
        (presented, {"now": NOW - timedelta(minutes=2)}, "iat is in the future"),
    ]
    for case, overrides, reason in cases:
        with pytest.raises(SdJwtError, match=reason) as caught:
            _check(case, holder, **overrides)
        assert caught.value.code == "kb_invalid"


def test_kb_jwt_signed_by_another_key(issuer: FileSigner, holder: FileSigner) -> None:
    thief = _signer(ec.generate_private_key(ec.SECP256R1()))
    presented = _presentation(_issue(issuer, holder), thief, ["name"])
    with pytest.raises(SdJwtError, match="signature does not verify"):
        _check(presented, holder)


def _forged_kb(header: dict[str, Any], payload: dict[str, Any], signature: bytes) -> str:
    h = _b64(json.dumps(header).encode())
    p = _b64(json.dumps(payload).encode())
    return f"{h}.{p}.{_b64(signature)}"


@pytest.mark.parametrize("alg", ["none", "HS256", "EdDSA", "ES384"])
def test_kb_jwt_alg_other_than_es256(issuer: FileSigner, holder: FileSigner, alg: str) -> None:
    kept = sd_jwt.parse(_issue(issuer, holder)).keep(["name"])
    payload = {"iat": int(NOW.timestamp()), "aud": AUD, "nonce": NONCE}
    payload["sd_hash"] = sd_jwt.sd_hash(kept.without_kb())
    header = {"alg": alg, "typ": "kb+jwt"}
    signing_input = _forged_kb(header, payload, b"").rsplit(".", 1)[0].encode()
    # HS256 keyed with the holder's public JWK: the classic algorithm-confusion forgery.
    mac_key = json.dumps(public_jwk(holder.public_key())).encode()
    signature = hmac.new(mac_key, signing_input, "sha256").digest() if alg == "HS256" else b""
    forged = sd_jwt.SdJwt(kept.jwt, kept.disclosures, _forged_kb(header, payload, signature))
    with pytest.raises(SdJwtError, match="alg is not ES256") as caught:
        _check(forged, holder)
    assert caught.value.code == "kb_invalid"


def test_kb_jwt_with_another_typ(issuer: FileSigner, holder: FileSigner) -> None:
    kept = sd_jwt.parse(_issue(issuer, holder)).keep(["name"])
    claims = {"iat": int(NOW.timestamp()), "aud": AUD, "nonce": NONCE}
    claims["sd_hash"] = sd_jwt.sd_hash(kept.without_kb())
    token = sign_compact(claims, holder, typ="JWT", include_kid=False)
    with pytest.raises(SdJwtError, match="KB-JWT malformed: unexpected typ"):
        _check(sd_jwt.SdJwt(kept.jwt, kept.disclosures, token), holder)


def test_kb_jwt_without_a_claim(issuer: FileSigner, holder: FileSigner) -> None:
    kept = sd_jwt.parse(_issue(issuer, holder)).keep(["name"])
    full = {
        "iat": int(NOW.timestamp()),
        "aud": AUD,
        "nonce": NONCE,
        "sd_hash": sd_jwt.sd_hash(kept.without_kb()),
    }
    for missing, reason in [
        ("iat", "iat missing"),
        ("aud", "aud"),
        ("nonce", "nonce"),
        ("sd_hash", "sd_hash"),
    ]:
        claims = {k: v for k, v in full.items() if k != missing}
        token = sign_compact(claims, holder, typ="kb+jwt", include_kid=False)
        with pytest.raises(SdJwtError, match=reason):
            _check(sd_jwt.SdJwt(kept.jwt, kept.disclosures, token), holder)


def test_holder_key_must_be_a_public_p256_jwk(issuer: FileSigner, holder: FileSigner) -> None:
    presented = _presentation(_issue(issuer, holder), holder, ["name"])
    assert presented.kb_jwt is not None
    leaked = dict(public_jwk(holder.public_key()), d="AAAA")  # a wallet that leaks its key
    edwards = public_jwk(ed25519.Ed25519PrivateKey.generate().public_key())
    for jwk, reason in [
        (leaked, "private member"),
        (edwards, "not a P-256 key"),
        ({"kty": "RSA", "n": "AQAB", "e": "AQAB"}, "not usable"),
    ]:
        with pytest.raises(SdJwtError, match=reason) as caught:
            sd_jwt.check_kb_jwt(
                presented.kb_jwt,
                dict(jwk),
                sd_jwt_without_kb=presented.without_kb(),
                aud=AUD,
                nonce=NONCE,
                now=NOW,
                max_age=timedelta(minutes=5),
            )
        assert caught.value.code == "kb_invalid"


def test_an_oversized_kb_jwt_is_refused_before_any_crypto(
    issuer: FileSigner, holder: FileSigner
) -> None:
    presented = _presentation(_issue(issuer, holder), holder, ["name"])
    huge = sd_jwt.SdJwt(presented.jwt, presented.disclosures, "e30." + "A" * 5000 + ".AA")
    with pytest.raises(SdJwtError, match="longer than 4096"):
        _check(huge, holder)


def test_make_kb_jwt_guards_its_inputs(holder: FileSigner) -> None:
    with pytest.raises(ValueError, match="last '~'"):
        sd_jwt.make_kb_jwt("a.b.c~d", holder, aud=AUD, nonce=NONCE, now=NOW)
    edwards = _signer(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(ValueError, match="ES256"):
        sd_jwt.make_kb_jwt("a.b.c~", edwards, aud=AUD, nonce=NONCE, now=NOW)


# -- arbitrary input: only SdJwtError comes out --------------------------------------------------

PROPERTY = settings(max_examples=200, derandomize=True, database=None, deadline=None)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@PROPERTY
@given(st.text(alphabet="AQgw_-.~eyJ0", max_size=200))
def test_parse_raises_only_its_own_error_on_any_text(text: str) -> None:
    with contextlib.suppress(SdJwtError):
        sd_jwt.parse(text)


@PROPERTY
@given(_JSON, st.lists(st.tuples(st.text(max_size=6), _JSON), max_size=4))
def test_disclosed_claims_raises_only_its_own_error(
    payload: Any, named: list[tuple[str, Any]]
) -> None:
    reserved = ("_sd", "...", "_sd_alg")
    disclosures = [sd_jwt.make_disclosure(n, v) for n, v in named if n not in reserved]
    if not isinstance(payload, dict):
        payload = {"_sd": payload}  # an _sd of any JSON type
    elif isinstance(payload.get("_sd", []), list):
        payload["_sd"] = [d.digest for d in disclosures] + payload.get("_sd", [])
    with contextlib.suppress(SdJwtError):
        sd_jwt.disclosed_claims(payload, disclosures)
