"""idsvc.formats.jws: real signatures, independent JOSE checks (joserfc) on both sides, attacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwk
from joserfc import jws as jrfc

from idsvc.formats.jws import (
    BadSignature,
    JwsError,
    JwsSigner,
    MalformedJws,
    PublicKey,
    UnknownKey,
    UnsupportedAlgorithm,
    VerifiedJws,
    sign_compact,
    verify_compact,
)

# joserfc follows RFC 9864, which prefers "Ed25519" to the polymorphic "EdDSA" name.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

TYP = "idsvc-credential+jwt"
LAO_NAME = "ສົມພອນ ແກ້ວມະນີ"
CLAIMS: dict[str, Any] = {
    "iss": "https://id.example.gov/issuers/la",
    "sub": "LA-MOHA-000101",
    "iat": 1_790_000_000,
    "exp": 1_947_680_000,
    "name_local": LAO_NAME,
    "name_latin": "Somphone Keomany",
    "status": {"status_list": {"idx": 7, "uri": "https://id.example.gov/sl/1"}},
}


class EcSigner:
    alg = "ES256"

    def __init__(self, kid: str = "ec-1") -> None:
        self.kid = kid
        self.private = ec.generate_private_key(ec.SECP256R1())

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private.public_key()

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class EdSigner:
    alg = "EdDSA"

    def __init__(self, kid: str = "ed-1") -> None:
        self.kid = kid
        self.private = ed25519.Ed25519PrivateKey.generate()

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self.private.public_key()

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def forge(
    header: dict[str, Any] | bytes,
    payload: dict[str, Any] | bytes,
    sign: Callable[[bytes], bytes] | None,
) -> str:
    """A token built byte by byte, so that hostile shapes get a genuine signature."""
    raw_h = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw_p = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(raw_h)}.{b64(raw_p)}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


def fixed(key: PublicKey) -> Callable[[dict[str, Any]], PublicKey]:
    return lambda _header: key


@pytest.fixture(scope="module")
def es() -> EcSigner:
    return EcSigner()


@pytest.fixture(scope="module")
def ed() -> EdSigner:
    return EdSigner()


@pytest.fixture(params=["ES256", "EdDSA"])
def signer(request: pytest.FixtureRequest, es: EcSigner, ed: EdSigner) -> EcSigner | EdSigner:
    return es if request.param == "ES256" else ed


def test_test_signers_satisfy_the_protocol(es: EcSigner, ed: EdSigner) -> None:
    signers: list[JwsSigner] = [es, ed]  # mypy checks the structural match
    assert [s.alg for s in signers] == ["ES256", "EdDSA"]


# --- round trip and format ---------------------------------------------------------------


def test_round_trip(signer: EcSigner | EdSigner) -> None:
    token = sign_compact(CLAIMS, signer, typ=TYP)
    result = verify_compact(token, key_for=fixed(signer.public_key()), expected_typ=TYP)
    assert result == VerifiedJws(
        header={"alg": signer.alg, "kid": signer.kid, "typ": TYP}, payload=CLAIMS
    )


def test_header_is_alg_kid_typ_then_extra_headers(es: EcSigner) -> None:
    token = sign_compact(CLAIMS, es, typ=TYP, extra_headers={"x5t#S256": "abc"})
    header = json.loads(b64d(token.split(".")[0]))
    assert header == {"alg": "ES256", "kid": "ec-1", "typ": TYP, "x5t#S256": "abc"}
    assert list(header) == ["alg", "kid", "typ", "x5t#S256"]


@pytest.mark.parametrize("name", ["alg", "kid", "typ", "crit"])
def test_extra_headers_cannot_override_reserved(es: EcSigner, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        sign_compact(CLAIMS, es, typ=TYP, extra_headers={name: "none"})


def test_payload_is_compact_utf8_not_ascii_escaped(es: EcSigner) -> None:
    token = sign_compact(CLAIMS, es, typ=TYP)
    raw = b64d(token.split(".")[1])
    assert LAO_NAME.encode("utf-8") in raw
    assert b"\\u" not in raw
    assert b", " not in raw and b": " not in raw
    escaped = json.dumps(CLAIMS, separators=(",", ":")).encode()
    assert len(raw) < len(escaped)


def test_no_base64_padding_in_output(signer: EcSigner | EdSigner) -> None:
    for n in range(6):  # every payload length mod 3
        token = sign_compact({"p": "x" * n}, signer, typ=TYP)
        assert "=" not in token


def test_signer_returning_der_is_refused(es: EcSigner) -> None:
    class DerSigner(EcSigner):
        def sign(self, data: bytes) -> bytes:
            return self.private.sign(data, ec.ECDSA(hashes.SHA256()))

    with pytest.raises(ValueError, match="expected 64"):
        sign_compact(CLAIMS, DerSigner(), typ=TYP)


def test_signer_with_unsupported_alg_is_refused() -> None:
    class RsaSigner(EcSigner):
        alg = "RS256"

    with pytest.raises(ValueError, match="not supported"):
        sign_compact(CLAIMS, RsaSigner(), typ=TYP)


def test_nan_payload_cannot_be_signed(es: EcSigner) -> None:
    with pytest.raises(ValueError):
        sign_compact({"x": float("nan")}, es, typ=TYP)


# --- interoperability with joserfc --------------------------------------------------------


def test_joserfc_verifies_our_tokens(signer: EcSigner | EdSigner) -> None:
    token = sign_compact(CLAIMS, signer, typ=TYP)
    pem = signer.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = (jwk.ECKey if signer.alg == "ES256" else jwk.OKPKey).import_key(pem)
    obj = jrfc.deserialize_compact(token, key, algorithms=[signer.alg])
    assert obj.protected == {"alg": signer.alg, "kid": signer.kid, "typ": TYP}
    assert json.loads(obj.payload) == CLAIMS


def test_we_verify_joserfc_tokens(signer: EcSigner | EdSigner) -> None:
    pem = signer.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = (jwk.ECKey if signer.alg == "ES256" else jwk.OKPKey).import_key(pem)
    payload = json.dumps(CLAIMS, ensure_ascii=False).encode()
    token = jrfc.serialize_compact(
        {"alg": signer.alg, "kid": "theirs", "typ": TYP}, payload, key, algorithms=[signer.alg]
    )
    result = verify_compact(token, key_for=fixed(signer.public_key()), expected_typ=TYP)
    assert result.payload == CLAIMS
    assert result.header["kid"] == "theirs"


def test_key_for_sees_the_header(es: EcSigner) -> None:
    seen: list[dict[str, Any]] = []

    def key_for(header: dict[str, Any]) -> PublicKey:
        seen.append(header)
        return es.public_key()

    verify_compact(sign_compact(CLAIMS, es, typ=TYP), key_for=key_for, expected_typ=TYP)
    assert seen == [{"alg": "ES256", "kid": "ec-1", "typ": TYP}]


# --- tampering and signatures -------------------------------------------------------------


def test_tampered_payload(signer: EcSigner | EdSigner) -> None:
    h, _, s = sign_compact(CLAIMS, signer, typ=TYP).split(".")
    evil = b64(json.dumps({**CLAIMS, "sub": "LA-MOHA-999999"}).encode())
    with pytest.raises(BadSignature):
        verify_compact(f"{h}.{evil}.{s}", key_for=fixed(signer.public_key()), expected_typ=TYP)


def test_tampered_header(signer: EcSigner | EdSigner) -> None:
    _, p, s = sign_compact(CLAIMS, signer, typ=TYP).split(".")
    h = b64(json.dumps({"alg": signer.alg, "kid": "other", "typ": TYP}).encode())
    with pytest.raises(BadSignature):
        verify_compact(f"{h}.{p}.{s}", key_for=fixed(signer.public_key()), expected_typ=TYP)


def test_tampered_signature(signer: EcSigner | EdSigner) -> None:
    h, p, s = sign_compact(CLAIMS, signer, typ=TYP).split(".")
    raw = bytearray(b64d(s))
    raw[10] ^= 1
    with pytest.raises(BadSignature):
        verify_compact(
            f"{h}.{p}.{b64(bytes(raw))}", key_for=fixed(signer.public_key()), expected_typ=TYP
        )


def test_wrong_key(signer: EcSigner | EdSigner) -> None:
    other = type(signer)()
    token = sign_compact(CLAIMS, signer, typ=TYP)
    with pytest.raises(BadSignature):
        verify_compact(token, key_for=fixed(other.public_key()), expected_typ=TYP)


@pytest.mark.parametrize("size", [0, 63, 65, 72])
def test_signature_of_wrong_length(signer: EcSigner | EdSigner, size: int) -> None:
    h, p, _ = sign_compact(CLAIMS, signer, typ=TYP).split(".")
    s = b64(b"\x01" * size)
    with pytest.raises(BadSignature):
        verify_compact(f"{h}.{p}.{s}", key_for=fixed(signer.public_key()), expected_typ=TYP)


def test_der_signature_is_refused_for_es256(es: EcSigner) -> None:
    token = forge(
        {"alg": "ES256", "typ": TYP},
        CLAIMS,
        lambda data: es.private.sign(data, ec.ECDSA(hashes.SHA256())),
    )
    with pytest.raises(BadSignature):
        verify_compact(token, key_for=fixed(es.public_key()), expected_typ=TYP)


def test_zero_signature_is_refused(es: EcSigner) -> None:
    token = forge({"alg": "ES256", "typ": TYP}, CLAIMS, lambda _d: bytes(64))
    with pytest.raises(BadSignature):
        verify_compact(token, key_for=fixed(es.public_key()), expected_typ=TYP)


def test_every_der_form_of_r_and_s_verifies(es: EcSigner) -> None:
    """r and s become DER INTEGERs from byte prefixes, whose form depends on each one's first
    byte (high bit set: a 0x00 in front; zero: leading zeros dropped). Sign until each form
    of r and of s has verified, and a wrong DER for any form would fail here."""
    key = es.public_key()
    forms: set[tuple[str, str]] = set()

    def form(byte: int) -> str:
        return "zero" if byte == 0 else "high" if byte >= 0x80 else "low"

    for n in range(20_000):
        claims = {**CLAIMS, "jti": str(n)}
        token = sign_compact(claims, es, typ=TYP)
        signature = b64d(token.rsplit(".", 1)[1])
        assert verify_compact(token, key_for=fixed(key), expected_typ=TYP).payload == claims
        forms.add(("r", form(signature[0])))
        forms.add(("s", form(signature[32])))
        if len(forms) == 6:
            break
    assert forms == {(part, f) for part in "rs" for f in ("zero", "high", "low")}


def test_tampered_signature_in_each_der_form_is_refused(es: EcSigner) -> None:
    token = sign_compact(CLAIMS, es, typ=TYP)
    h, p, s = token.split(".")
    good = b64d(s)
    for first in (0x00, 0x01, 0x7F, 0x80, 0xFF):
        for at in (0, 32):
            bad = bytearray(good)
            if bad[at] == first:
                continue
            bad[at] = first
            forged = f"{h}.{p}.{b64(bytes(bad))}"
            with pytest.raises(BadSignature):
                verify_compact(forged, key_for=fixed(es.public_key()), expected_typ=TYP)


def test_payload_is_not_parsed_before_the_signature_checks(es: EcSigner) -> None:
    token = forge({"alg": "ES256", "typ": TYP}, b"{not json", lambda _d: bytes(64))
    with pytest.raises(BadSignature):
        verify_compact(token, key_for=fixed(es.public_key()), expected_typ=TYP)


# --- algorithm attacks --------------------------------------------------------------------


def test_alg_none(es: EcSigner) -> None:
    for alg in ("none", "None", "NONE"):
        token = forge({"alg": alg, "typ": TYP}, CLAIMS, None)
        with pytest.raises(UnsupportedAlgorithm):
            verify_compact(token, key_for=fixed(es.public_key()), expected_typ=TYP)


def test_hs256_with_the_public_key_as_secret(es: EcSigner) -> None:
    """The classic confusion: an HMAC keyed with the issuer's published public key."""
    pub = es.public_key()
    for secret in (
        pub.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint),
    ):

        def hs256(data: bytes, secret: bytes = secret) -> bytes:
            return hmac.digest(secret, data, hashlib.sha256)

        token = forge({"alg": "HS256", "kid": es.kid, "typ": TYP}, CLAIMS, hs256)
        with pytest.raises(UnsupportedAlgorithm):
            verify_compact(token, key_for=fixed(pub), expected_typ=TYP)
        # Even a careless caller who allow-lists HS256 does not get it.
        with pytest.raises(UnsupportedAlgorithm):
            verify_compact(
                token,
                key_for=fixed(pub),
                allowed_algs=frozenset({"HS256", "ES256"}),
                expected_typ=TYP,
            )


def test_rs256_is_refused() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = forge(
        {"alg": "RS256", "typ": TYP},
        CLAIMS,
        lambda data: private.sign(data, padding.PKCS1v15(), hashes.SHA256()),
    )
    with pytest.raises(UnsupportedAlgorithm):
        verify_compact(token, key_for=lambda _h: None, expected_typ=TYP)


def test_eddsa_header_on_an_ec_key(es: EcSigner, ed: EdSigner) -> None:
    token = sign_compact(CLAIMS, ed, typ=TYP)
    with pytest.raises(UnsupportedAlgorithm, match="Ed25519"):
        verify_compact(token, key_for=fixed(es.public_key()), expected_typ=TYP)


def test_es256_header_on_an_ed25519_key(es: EcSigner, ed: EdSigner) -> None:
    token = sign_compact(CLAIMS, es, typ=TYP)
    with pytest.raises(UnsupportedAlgorithm, match="P-256"):
        verify_compact(token, key_for=fixed(ed.public_key()), expected_typ=TYP)


def test_es256_header_on_a_p384_key(es: EcSigner) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    token = sign_compact(CLAIMS, es, typ=TYP)
    with pytest.raises(UnsupportedAlgorithm):
        verify_compact(token, key_for=fixed(p384), expected_typ=TYP)


def test_allow_list_narrows(es: EcSigner) -> None:
    token = sign_compact(CLAIMS, es, typ=TYP)
    with pytest.raises(UnsupportedAlgorithm):
        verify_compact(
            token,
            key_for=fixed(es.public_key()),
            allowed_algs=frozenset({"EdDSA"}),
            expected_typ=TYP,
        )


def test_key_is_not_looked_up_for_a_refused_alg(es: EcSigner) -> None:
    calls: list[dict[str, Any]] = []

    def key_for(header: dict[str, Any]) -> PublicKey:
        calls.append(header)
        return es.public_key()

    with pytest.raises(UnsupportedAlgorithm):
        verify_compact(forge({"alg": "none"}, CLAIMS, None), key_for=key_for, expected_typ=None)
    assert calls == []


# --- unknown keys -------------------------------------------------------------------------


def test_key_for_returns_none(es: EcSigner) -> None:
    with pytest.raises(UnknownKey):
        verify_compact(sign_compact(CLAIMS, es, typ=TYP), key_for=lambda _h: None, expected_typ=TYP)


def test_key_for_raises(es: EcSigner) -> None:
    keys: dict[str, PublicKey] = {}

    def key_for(header: dict[str, Any]) -> PublicKey:
        return keys[header["kid"]]

    with pytest.raises(UnknownKey) as info:
        verify_compact(sign_compact(CLAIMS, es, typ=TYP), key_for=key_for, expected_typ=TYP)
    assert isinstance(info.value.__cause__, KeyError)


# --- malformed input ----------------------------------------------------------------------


def good_token(es: EcSigner) -> str:
    return sign_compact(CLAIMS, es, typ=TYP)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.rsplit(".", 1)[0], "three parts"),
        (lambda t: t + ".AAAA", "three parts"),
        (lambda t: "", "three parts"),
        (lambda t: t + "=", "padding"),
        (lambda t: t.replace(".", "=.", 1), "padding"),
        (lambda t: "+" + t, "alphabet"),
        (lambda t: "/" + t, "alphabet"),
        (lambda t: " " + t, "alphabet"),
        (lambda t: t + "\n", "alphabet"),
        (lambda t: "é" + t, "alphabet"),
        (lambda t: "\u0660" + t, "alphabet"),  # an Arabic-Indic digit: \w would pass it
        (lambda t: "A" + t, "length"),  # header length ≡ 1 (mod 4) after adding one char
        # Characters the strict decoder of each segment refuses (no regex pass sees them).
        (lambda t: t.replace(".", ". ", 1), "alphabet"),
        (lambda t: t.replace(".", ".\x00", 1), "alphabet"),
        (lambda t: t.rsplit(".", 1)[0] + ".A*" + t.rsplit(".", 1)[1][2:], "alphabet"),
        (lambda t: t[:-2] + "." + t[-1:], "three parts"),
        (lambda t: t.replace(".", "~.", 1), "alphabet"),
    ],
)
def test_malformed_shape(es: EcSigner, mutate: Callable[[str], str], message: str) -> None:
    token = good_token(es)
    mutated = mutate(token)
    if message == "length":  # make sure the header really became 1 mod 4
        while len(mutated.split(".")[0]) % 4 != 1:
            mutated = "A" + mutated
    with pytest.raises(MalformedJws, match=message):
        verify_compact(mutated, key_for=fixed(es.public_key()), expected_typ=TYP)


def test_non_canonical_base64_signature(es: EcSigner) -> None:
    """64 signature bytes → 86 chars; the last one has 4 unused bits that must be zero."""
    h, p, s = good_token(es).split(".")
    assert len(s) == 86 and len(s) % 4 == 2
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = s[:-1] + alphabet[alphabet.index(s[-1]) | 1]
    assert b64d(twin) == b64d(s)  # a lenient decoder sees the same signature
    with pytest.raises(MalformedJws, match="non-canonical"):
        verify_compact(f"{h}.{p}.{twin}", key_for=fixed(es.public_key()), expected_typ=TYP)


def test_not_a_string(es: EcSigner) -> None:
    with pytest.raises(MalformedJws):
        verify_compact(
            good_token(es).encode(),  # type: ignore[arg-type]
            key_for=fixed(es.public_key()),
            expected_typ=TYP,
        )


def test_oversize(es: EcSigner) -> None:
    token = good_token(es)
    with pytest.raises(MalformedJws, match="longer"):
        verify_compact(token, key_for=fixed(es.public_key()), expected_typ=TYP, max_length=100)
    big = sign_compact({"pad": "x" * 20_000}, es, typ=TYP)
    with pytest.raises(MalformedJws, match="longer"):
        verify_compact(big, key_for=fixed(es.public_key()), expected_typ=TYP)


@pytest.mark.parametrize(
    "header",
    [
        b"not json",
        b'["alg","ES256"]',
        b'"ES256"',
        b"null",
        b'{"alg":"ES256","typ":"' + TYP.encode() + b'","alg":"ES256"}',
        b'{"alg":"ES256","typ":"' + TYP.encode() + b'"} trailing',
        '{"alg":"ES256"}'.encode("utf-16"),
        b'{"alg":"ES256","typ":"\xff"}',
        b'{"alg":"ES256","x":NaN}',
        b"[" * 5000 + b"]" * 5000,
    ],
    ids=[
        "not-json",
        "array",
        "string",
        "null",
        "duplicate-alg",
        "trailing",
        "utf16",
        "bad-utf8",
        "nan",
        "deep",
    ],
)
def test_malformed_header(es: EcSigner, header: bytes) -> None:
    token = forge(header, CLAIMS, es.sign)
    with pytest.raises(MalformedJws):
        verify_compact(token, key_for=fixed(es.public_key()), expected_typ=TYP)


def test_duplicate_member_is_named(es: EcSigner) -> None:
    header = b'{"alg":"ES256","kid":"a","kid":"b","typ":"' + TYP.encode() + b'"}'
    with pytest.raises(MalformedJws, match="duplicate member 'kid'"):
        verify_compact(
            forge(header, CLAIMS, es.sign), key_for=fixed(es.public_key()), expected_typ=TYP
        )


@pytest.mark.parametrize(
    "header",
    [{"typ": TYP}, {"alg": None, "typ": TYP}, {"alg": ["ES256"], "typ": TYP}],
    ids=["missing", "null", "list"],
)
def test_alg_missing_or_not_a_string(es: EcSigner, header: dict[str, Any]) -> None:
    with pytest.raises(MalformedJws, match="alg"):
        verify_compact(
            forge(header, CLAIMS, es.sign), key_for=fixed(es.public_key()), expected_typ=TYP
        )


def test_kid_must_be_a_string(es: EcSigner) -> None:
    header = {"alg": "ES256", "kid": ["a"], "typ": TYP}
    with pytest.raises(MalformedJws, match="kid"):
        verify_compact(
            forge(header, CLAIMS, es.sign), key_for=fixed(es.public_key()), expected_typ=TYP
        )


def test_crit_is_refused(es: EcSigner) -> None:
    header = {"alg": "ES256", "typ": TYP, "crit": ["b64"], "b64": False}
    with pytest.raises(MalformedJws, match="crit"):
        verify_compact(
            forge(header, CLAIMS, es.sign), key_for=fixed(es.public_key()), expected_typ=TYP
        )


def test_typ_mismatch_and_missing(es: EcSigner) -> None:
    token = sign_compact(CLAIMS, es, typ="statuslist+jwt")
    with pytest.raises(MalformedJws, match="typ"):
        verify_compact(token, key_for=fixed(es.public_key()), expected_typ=TYP)
    untyped = forge({"alg": "ES256"}, CLAIMS, es.sign)
    with pytest.raises(MalformedJws, match="typ"):
        verify_compact(untyped, key_for=fixed(es.public_key()), expected_typ=TYP)
    assert verify_compact(untyped, key_for=fixed(es.public_key()), expected_typ=None).payload


@pytest.mark.parametrize(
    "payload",
    [
        b"[1,2,3]",
        b'"claims"',
        b'{"sub":"a","sub":"b"}',
        b'{"exp":Infinity}',
        b"\xff\xfe{}",
        b"",
    ],
    ids=["array", "string", "duplicate-sub", "infinity", "bad-utf8", "empty"],
)
def test_malformed_payload_with_a_valid_signature(es: EcSigner, payload: bytes) -> None:
    token = forge({"alg": "ES256", "typ": TYP}, payload, es.sign)
    with pytest.raises(MalformedJws, match="payload"):
        verify_compact(token, key_for=fixed(es.public_key()), expected_typ=TYP)


def test_nested_duplicate_is_refused(es: EcSigner) -> None:
    payload = b'{"status":{"status_list":{"idx":1,"idx":2,"uri":"u"}}}'
    token = forge({"alg": "ES256", "typ": TYP}, payload, es.sign)
    with pytest.raises(MalformedJws, match="duplicate member 'idx'"):
        verify_compact(token, key_for=fixed(es.public_key()), expected_typ=TYP)


def test_one_exception_tree() -> None:
    for exc in (MalformedJws, UnsupportedAlgorithm, UnknownKey, BadSignature):
        assert issubclass(exc, JwsError)
