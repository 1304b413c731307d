"""The Claim 169 codec (idsvc/formats/claim169.py) against docs/claim169.md, with real keys.

Layers are taken apart with zlib and cbor2 here, not with the codec, so the profile (tags,
header, keys, types) is checked from the outside. Hostile input: every single-character change
of the QR text, every single-byte change of the signed COSE bytes, oversized text,
decompression bombs, and hypothesis-generated base45, zlib and CBOR all end in a typed
``Claim169Error``, never another exception.
"""

from __future__ import annotations

import io
import uuid
import zlib
from datetime import date
from pathlib import Path
from typing import Any, cast

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from idsvc.formats import claim169
from idsvc.formats.base45 import ALPHABET, b45decode, b45encode
from idsvc.formats.claim169 import (
    BadSignature,
    Claim169Error,
    Face,
    MalformedClaim169,
    PrintedCredential,
    UnknownKey,
    UnsupportedAlgorithm,
)
from keys.file_signer import FileSigner
from keys.jwk import b64url_decode
from tests.support.settings import PASSPHRASE

ISS = "https://id.mcs.gov.kh/issuers/default"
CREDENTIAL = PrintedCredential(
    credential_id="0b8f6a52-3d1e-4c57-9a55-6f2e2f5d9c11",
    issuer=ISS,
    issued_at=1_795_000_000,
    expires_at=1_952_000_000,
    employee_id="KH-MCS-010002",
    name_latin="Sok Chantha",
    name_local="សុខ ចាន់ថា",
    sex="F",
    date_of_birth=None,
    ministry="Ministry of Civil Service",
    position="Officer",
    category="civil_servant",
    card_serial="7G2K9QW4XD1M",
    status_uri="https://id.mcs.gov.kh/status-lists/3f9a0c1d2e4b5a69",
    status_idx=40_961,
)


@pytest.fixture(scope="module", params=["ES256", "EdDSA"])
def signer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> FileSigner:
    folder: Path = tmp_path_factory.mktemp(request.param)
    return FileSigner.generate_in(folder, request.param, PASSPHRASE.encode())


def key_of(signer: FileSigner) -> Any:
    return lambda hint: signer.public_key() if hint == claim169.kid_hint(signer.kid) else None


def crockford_bytes(serial: str) -> bytes:
    """A card serial as the QR carries it, worked out with int(..., 32), not with the codec."""
    standard = serial.translate(str.maketrans("ABCDEFGHJKMNPQRSTVWXYZ", "ABCDEFGHIJKLMNOPQRSTUV"))
    return int(standard, 32).to_bytes(8, "big")


def layers(text: str) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, Any], bytes]:
    """(protected header, unprotected header, CWT claims, signature), taken apart by hand."""
    cose = cbor2.loads(zlib.decompress(b45decode(text)))
    assert isinstance(cose, cbor2.CBORTag) and cose.tag == 18
    protected, unprotected, payload, signature = cose.value
    return cbor2.loads(protected), dict(unprotected), cbor2.loads(payload), signature


def test_round_trip_and_profile(signer: FileSigner) -> None:
    text = claim169.encode(CREDENTIAL, signer)
    assert set(text) <= set(ALPHABET)
    verified = claim169.verify(text, key_for=key_of(signer))
    assert verified.credential == CREDENTIAL
    assert (verified.alg, verified.kid_hint) == (signer.alg, claim169.kid_hint(signer.kid))
    assert verified.credential.valid_from == CREDENTIAL.issued_at

    protected, unprotected, claims, signature = layers(text)
    # The kid is a hint: the first 8 bytes of the 32-byte RFC 7638 thumbprint.
    kid_hint = b64url_decode(signer.kid)[:8]
    assert protected == {1: {"ES256": -7, "EdDSA": -8}[signer.alg], 4: kid_hint}
    assert unprotected == {}
    assert len(signature) == 64
    assert zlib.decompress(b45decode(text))  # zlib with its header (0x78), not raw deflate
    assert b45decode(text)[0] == 0x78
    assert claims[1] == ISS
    assert (claims[4], claims[6]) == (1_952_000_000, 1_795_000_000)  # no nbf: it is iat
    assert claims[7] == uuid.UUID(CREDENTIAL.credential_id).bytes
    assert claims[169] == {
        1: "KH-MCS-010002",
        4: "Sok Chantha",
        9: 2,
        19: "សុខ ចាន់ថា",
        20: "khm",
    }
    # A list where idsvc serves lists on the issuer's host: its name's 8 bytes, not the URI.
    assert claims[-65537] == {
        1: "Ministry of Civil Service",
        3: "Officer",
        5: 1,
        6: crockford_bytes("7G2K9QW4XD1M"),
        7: 40_961,
        8: bytes.fromhex("3f9a0c1d2e4b5a69"),
    }
    assert crockford_bytes("7G2K9QW4XD1M")[0] < 0x10  # 60 bits
    assert set(claims) == {1, 4, 6, 7, 169, -65537}


def test_nbf_is_written_only_when_it_is_not_iat(signer: FileSigner) -> None:
    later = PrintedCredential(**{**_fields(CREDENTIAL), "not_before": 1_795_000_600})
    text = claim169.encode(later, signer)
    assert layers(text)[2][5] == 1_795_000_600
    verified = claim169.verify(text, key_for=key_of(signer)).credential
    assert verified == later and verified.valid_from == 1_795_000_600


def test_card_serial_must_be_crockford(signer: FileSigner) -> None:
    for serial in ("7G2K9QW4XD1", "7G2K9QW4XD1L", "7g2k9qw4xd1m"):
        bad = PrintedCredential(**{**_fields(CREDENTIAL), "card_serial": serial})
        with pytest.raises(ValueError, match="Crockford"):
            claim169.encode(bad, signer)


def test_kid_hints_select_one_key_or_none() -> None:
    kid = "k" * 43
    twin = "k" * 10 + "n" + "A" * 32  # same first 8 bytes (10 characters and 4 bits)
    other = "Q" * 43
    assert claim169.kid_hint(kid) == claim169.kid_hint(twin)
    hints = claim169.keys_by_hint({kid: 1, twin: 2, other: 3, "not-a-thumbprint": 4})
    assert hints == {claim169.kid_hint(other): 3}
    with pytest.raises(ValueError, match="thumbprint"):
        claim169.kid_hint("short")


def test_date_of_birth_is_yyyymmdd_and_only_when_given(signer: FileSigner) -> None:
    with_dob = PrintedCredential(**{**_fields(CREDENTIAL), "date_of_birth": date(1988, 2, 28)})
    text = claim169.encode(with_dob, signer)
    assert layers(text)[2][169][8] == "19880228"
    assert claim169.verify(text, key_for=key_of(signer)).credential.date_of_birth == date(
        1988, 2, 28
    )
    assert 8 not in layers(claim169.encode(CREDENTIAL, signer))[2][169]


@pytest.mark.parametrize(
    ("name", "language"),
    [("ສົມພອນ ແກ້ວມະນີ", "lao"), ("ព្រុំ សុខា", "khm"), ("Somphone", None)],
)
def test_secondary_language_from_the_script(name: str, language: str | None) -> None:
    assert claim169.language_of(name) == language


def test_latin_only_name_has_no_secondary_fields(signer: FileSigner) -> None:
    plain = PrintedCredential(**{**_fields(CREDENTIAL), "name_local": "Sok Chantha", "sex": None})
    identity = layers(claim169.encode(plain, signer))[2][169]
    assert set(identity) == {1, 4}


@pytest.mark.parametrize(
    ("uri", "written"),
    [
        # idsvc's shape of list URI elsewhere: the name, and the base against iss (10).
        ("http://127.0.0.1:8000/status-lists/00ff", {8: b"\x00\xff", 10: "http://127.0.0.1:8000/"}),
        ("https://id.mcs.gov.kh/idsvc/status-lists/3f9a", {8: b"\x3f\x9a", 10: "/idsvc/"}),
        # Any other shape: the URI as a reference against iss (9), absolute on another host.
        ("https://lists.example.org/l/7", {9: "https://lists.example.org/l/7"}),
        ("https://id.mcs.gov.kh/status-lists/3F9A", {9: "/status-lists/3F9A"}),
        ("https://id.mcs.gov.kh/status-lists/3f9", {9: "/status-lists/3f9"}),
        ("https://id.mcs.gov.kh/lists/3f9a0c1d2e4b5a69", {9: "/lists/3f9a0c1d2e4b5a69"}),
        ("https://id.mcs.gov.kh/status-lists/3f9a?v=2", {9: "/status-lists/3f9a?v=2"}),
    ],
)
def test_status_list_uris_of_other_shapes(
    signer: FileSigner, uri: str, written: dict[int, Any]
) -> None:
    other = PrintedCredential(**{**_fields(CREDENTIAL), "status_uri": uri})
    text = claim169.encode(other, signer)
    card = layers(text)[2][-65537]
    assert {k: v for k, v in card.items() if k in (8, 9, 10)} == written
    assert claim169.verify(text, key_for=key_of(signer)).credential.status_uri == uri


def _webp_face() -> bytes:
    out = io.BytesIO()
    Image.new("L", (48, 62), 128).save(out, "WEBP", quality=40)
    return out.getvalue()


def test_face_is_claim_62_biometrics(signer: FileSigner) -> None:
    face = _webp_face()
    with_face = PrintedCredential(**{**_fields(CREDENTIAL), "face": Face(face)})
    text = claim169.encode(with_face, signer)
    assert layers(text)[2][169][62] == [{0: face, 1: 0, 2: 4}]  # image, WEBP
    assert claim169.verify(text, key_for=key_of(signer)).credential.face == Face(face)


def test_face_over_the_limit_is_refused_when_signing(signer: FileSigner) -> None:
    big = b"\xff\xd8\xff" + bytes(claim169.MAX_FACE_BYTES)
    with pytest.raises(ValueError, match="too big"):
        claim169.encode(PrintedCredential(**{**_fields(CREDENTIAL), "face": Face(big)}), signer)


def _fields(credential: PrintedCredential) -> dict[str, Any]:
    return {name: getattr(credential, name) for name in PrintedCredential.__slots__}


# --- refusals -----------------------------------------------------------------------------------


def test_unknown_kid(signer: FileSigner) -> None:
    text = claim169.encode(CREDENTIAL, signer)
    with pytest.raises(UnknownKey):
        claim169.verify(text, key_for=lambda kid: None)
    with pytest.raises(UnknownKey):
        claim169.verify(text, key_for=lambda kid: cast(dict[str, Any], {})[kid])


def test_key_of_the_other_type_is_a_bad_signature(tmp_path: Path, signer: FileSigner) -> None:
    other = FileSigner.generate_in(tmp_path, "EdDSA" if signer.alg == "ES256" else "ES256",
                                   PASSPHRASE.encode())  # fmt: skip
    text = claim169.encode(CREDENTIAL, signer)
    with pytest.raises(BadSignature):
        claim169.verify(text, key_for=lambda kid: other.public_key())


def _recompose(
    protected: bytes, unprotected: Any, payload: bytes, signature: bytes, tag: int = 18
) -> str:
    cose = cbor2.dumps(cbor2.CBORTag(tag, [protected, unprotected, payload, signature]))
    return b45encode(zlib.compress(cose))


def _parts(text: str) -> tuple[bytes, Any, bytes, bytes]:
    protected, unprotected, payload, signature = cbor2.loads(zlib.decompress(b45decode(text))).value
    return protected, unprotected, payload, signature


def test_cwt_tag_61_around_the_sign1_is_accepted(signer: FileSigner) -> None:
    cose = zlib.decompress(b45decode(claim169.encode(CREDENTIAL, signer)))
    wrapped = b45encode(zlib.compress(b"\xd8\x3d" + cose))  # tag 61
    assert claim169.verify(wrapped, key_for=key_of(signer)).credential == CREDENTIAL


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ({1: -7}, MalformedClaim169),  # no kid
        ({1: -35, 4: bytes(8)}, UnsupportedAlgorithm),  # ES384
        ({1: "ES256", 4: bytes(8)}, UnsupportedAlgorithm),
        ({1: [-7], 4: bytes(8)}, UnsupportedAlgorithm),
        ({1: -7, 4: "kid"}, MalformedClaim169),
        ({1: -7, 4: bytes(7)}, MalformedClaim169),
        ({1: -7, 4: bytes(32)}, MalformedClaim169),  # the whole thumbprint (profile version 1)
        ({1: -7, 4: bytes(8), 2: [4]}, MalformedClaim169),  # crit
    ],
)
def test_protected_header_outside_the_profile(
    signer: FileSigner, header: dict[int, Any], error: type[Claim169Error]
) -> None:
    _, unprotected, payload, signature = _parts(claim169.encode(CREDENTIAL, signer))
    text = _recompose(cbor2.dumps(header), unprotected, payload, signature)
    with pytest.raises(error):
        claim169.verify(text, key_for=key_of(signer))


def test_payload_changed_after_signing_is_a_bad_signature(signer: FileSigner) -> None:
    protected, unprotected, payload, signature = _parts(claim169.encode(CREDENTIAL, signer))
    claims = cbor2.loads(payload)
    claims[-65537][7] += 1  # point at another status slot
    text = _recompose(protected, unprotected, cbor2.dumps(claims, canonical=True), signature)
    with pytest.raises(BadSignature):
        claim169.verify(text, key_for=key_of(signer))


class _ResigningSigner:
    """Signs whatever we hand it with the real key: to test what is refused *after* the
    signature check (a compromised or buggy issuer, not an attacker)."""

    def __init__(self, signer: FileSigner) -> None:
        self.signer = signer

    def resign(self, claims: Any, *, canonical: bool = True) -> str:
        from idsvc.formats.claim169 import _sig_structure

        protected = cbor2.dumps({1: {"ES256": -7, "EdDSA": -8}[self.signer.alg],
                                 4: b64url_decode(self.signer.kid)[:8]})  # fmt: skip
        payload = cbor2.dumps(claims, canonical=canonical)
        signature = self.signer.sign(_sig_structure(protected, payload))
        return _recompose(protected, {}, payload, signature)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda c: c[169].pop(1), "id"),
        (lambda c: c.__setitem__(1, "http://id.mcs.gov.kh/"), "https"),
        (lambda c: c.__setitem__(4, -5), "exp"),
        (lambda c: c.__setitem__(4, True), "exp"),
        (lambda c: c.__setitem__(7, b"short"), "cti"),
        (lambda c: c[169].__setitem__(8, "1988-02-28"), "YYYYMMDD"),
        (lambda c: c[169].__setitem__(8, "19880230"), "not a date"),
        (lambda c: c[169].__setitem__(9, 7), "gender"),
        (lambda c: c[169].__setitem__(4, "a\x00b"), "NUL"),
        (lambda c: c[169].__setitem__(62, {0: b"x"}), "face"),
        (lambda c: c.__setitem__(5, "1795000000"), "nbf"),
        (lambda c: c[-65537].__setitem__(5, 9), "category"),
        (lambda c: c[-65537].__setitem__(6, "7G2K9QW4XD1M"), "card serial"),  # version 1
        (lambda c: c[-65537].__setitem__(6, b"\x10" + bytes(7)), "60-bit"),
        (lambda c: c[-65537].__setitem__(6, bytes(9)), "60-bit"),
        (lambda c: c[-65537].pop(7), "status index"),
        (lambda c: c[-65537].__setitem__(8, b""), "1-32 bytes"),
        (lambda c: c[-65537].__setitem__(8, "3f9a0c1d2e4b5a69"), "status list name"),
        (lambda c: c[-65537].pop(8), "exactly one"),
        (lambda c: c[-65537].__setitem__(9, "/status-lists/x"), "exactly one"),
        (lambda c: (c[-65537].pop(8), c[-65537].__setitem__(9, "mailto:x@y")), "http"),
        (lambda c: c[-65537].__setitem__(10, "mailto:x@y"), "http"),
        (lambda c: c[-65537].__setitem__(10, b"/"), "base"),
        (lambda c: (c[-65537].pop(8), c[-65537].update({9: "/l/1", 10: "/"})), "without a name"),
        (lambda c: c.pop(-65537), "employment"),
        (lambda c: c.__setitem__(169, ["not", "a", "map"]), "identity"),
    ],
)
def test_signed_but_malformed_claims(signer: FileSigner, change: Any, why: str) -> None:
    claims = layers(claim169.encode(CREDENTIAL, signer))[2]
    change(claims)
    text = _ResigningSigner(signer).resign(claims)
    with pytest.raises(MalformedClaim169, match=why):
        claim169.verify(text, key_for=key_of(signer))


def test_non_deterministic_payload_is_refused(signer: FileSigner) -> None:
    claims = layers(claim169.encode(CREDENTIAL, signer))[2]
    reordered = dict(reversed(list(claims.items())))
    text = _ResigningSigner(signer).resign(reordered, canonical=False)
    with pytest.raises(MalformedClaim169, match="deterministic"):
        claim169.verify(text, key_for=key_of(signer))


def test_every_changed_character_is_refused(signer: FileSigner) -> None:
    text = claim169.encode(CREDENTIAL, signer)
    seen: set[type[Claim169Error]] = set()
    for i, char in enumerate(text):
        swap = ALPHABET[(ALPHABET.index(char) + 1 + i % 44) % 45]
        with pytest.raises(Claim169Error) as caught:
            claim169.verify(text[:i] + swap + text[i + 1 :], key_for=key_of(signer))
        seen.add(type(caught.value))
    # zlib's Adler-32 catches nearly every change first; none gets past as UNKNOWN_KEY.
    assert seen <= {MalformedClaim169, BadSignature}


def test_every_changed_cose_byte_is_refused(signer: FileSigner) -> None:
    """Below zlib: each byte of the COSE structure flipped and re-compressed."""
    cose = zlib.decompress(b45decode(claim169.encode(CREDENTIAL, signer)))
    outcomes: dict[type[Claim169Error], int] = {}
    for i in range(len(cose)):
        tampered = cose[:i] + bytes([cose[i] ^ 0x01]) + cose[i + 1 :]
        with pytest.raises(Claim169Error) as caught:
            claim169.verify(b45encode(zlib.compress(tampered)), key_for=key_of(signer))
        outcomes[type(caught.value)] = outcomes.get(type(caught.value), 0) + 1
    # The kid's bytes name another key (UNKNOWN_KEY); payload and signature bytes fail the
    # signature; structure bytes are malformed.
    assert outcomes[BadSignature] > 100
    assert set(outcomes) <= {MalformedClaim169, BadSignature, UnknownKey, UnsupportedAlgorithm}


def test_oversized_text_is_refused_before_decoding() -> None:
    with pytest.raises(MalformedClaim169, match="longer than 4296"):
        claim169.verify("A" * 4297 + "a", key_for=lambda kid: None)  # not even base45


def test_decompression_bomb_stops_at_the_cap() -> None:
    bomb = zlib.compress(bytes(2_000_000), 9)  # ~2 KB that inflate to 2 MB
    text = b45encode(bomb)
    assert len(text) <= claim169.MAX_TEXT_CHARS
    with pytest.raises(MalformedClaim169, match="more than 8192 bytes"):
        claim169.verify(text, key_for=lambda kid: None)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x1b\x00\x00\x00\x00\x00", "not zlib"),  # what Brotli could look like
        (zlib.compress(b"x")[:-2], "truncated"),
        (zlib.compress(cbor2.dumps(1)) + b"junk", "after the end"),
        (zlib.compress(cbor2.dumps([1, 2, 3, 4])), "COSE_Sign1"),
        (zlib.compress(cbor2.dumps(cbor2.CBORTag(18, [1, 2]))), "array of 4"),
        (zlib.compress(cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b"", "sig"]))), "wrong types"),
        (zlib.compress(b"\x9f\x01\xff"), "not valid CBOR"),  # indefinite length
        (zlib.compress(b"\xa2\x01\x01\x01\x02"), "not valid CBOR"),  # duplicate key
        (zlib.compress(b"\x81" * 40 + b"\x01"), "not valid CBOR"),  # nested too deep
    ],
)
def test_bad_layers_are_malformed(data: bytes, why: str) -> None:
    with pytest.raises(MalformedClaim169, match=why):
        claim169.verify(b45encode(data), key_for=lambda kid: None)


def test_preset_dictionary_is_refused() -> None:
    compressor = zlib.compressobj(zdict=b"dictionary")
    data = compressor.compress(b"abc") + compressor.flush()
    with pytest.raises(MalformedClaim169, match="dictionar"):
        claim169.verify(b45encode(data), key_for=lambda kid: None)


# --- property tests: the decoding paths never fail with anything but Claim169Error ------------

_CBOR_LEAVES = (
    st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=True)
)
_CBOR = st.recursive(
    _CBOR_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.integers(-70000, 200) | st.text(max_size=5), inner, max_size=5)
        | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 18, 24, 30, 37, 61, 258, 999]), inner)
    ),
    max_leaves=25,
)


def _must_be_refused(text: str) -> None:
    try:
        claim169.verify(text, key_for=lambda kid: None)
    except Claim169Error:
        return
    raise AssertionError("accepted without a key")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CBOR)
def test_any_cbor_value_is_a_typed_refusal(value: Any) -> None:
    try:
        encoded = cbor2.dumps(value)
    except (cbor2.CBOREncodeError, ValueError, TypeError):
        return
    _must_be_refused(b45encode(zlib.compress(encoded)))


@settings(max_examples=200, deadline=None)
@given(_CBOR, _CBOR, st.binary(max_size=80), st.binary(max_size=70))
def test_any_sign1_shape_is_a_typed_refusal(
    protected: Any, unprotected: Any, payload: bytes, signature: bytes
) -> None:
    try:
        header = cbor2.dumps(protected)
        text = _recompose(header, unprotected, payload, signature)
    except (cbor2.CBOREncodeError, ValueError, TypeError):
        return
    _must_be_refused(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_zlib_input_is_a_typed_refusal(data: bytes) -> None:
    _must_be_refused(b45encode(data))
    _must_be_refused(b45encode(zlib.compress(data)))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET + "a#%", max_size=120))
def test_any_text_is_a_typed_refusal(text: str) -> None:
    if text:
        _must_be_refused(text)


def test_fragment_round_trip() -> None:
    text = "NCF" + ALPHABET
    fragment = claim169.fragment_of(text)
    assert " " not in fragment and "%20" in fragment and "%25" in fragment
    assert claim169.printed_text_of(f"https://id.mcs.gov.kh/v/x#{fragment}") == text
    assert claim169.looks_printed(text)
    assert not claim169.looks_printed("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
