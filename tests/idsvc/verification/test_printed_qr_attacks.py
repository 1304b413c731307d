"""Issue 10, "security in CI": the JWT attacks that apply to the printed Claim 169 QR
(docs/claim169.md), each refused with its stable reason code through ``Services.verify``:
COSE algorithms outside the allow-list (and HMAC keyed with the public key), kid/alg in the
unprotected header never used, a hostile protected header, bytes after the CBOR or after the
zlib stream, a decompression bomb, oversized text. Real keys, real signatures; the COSE layers
are rebuilt here with cbor2 and zlib, not with the codec under test."""

from __future__ import annotations

import hashlib
import hmac
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from idsvc.formats.base45 import b45decode, b45encode
from idsvc.formats.claim169 import MAX_INFLATED_BYTES, MAX_TEXT_CHARS
from idsvc.services import Services
from idsvc.verification.rules import Reason
from keys.jwk import b64url_decode, public_jwk, thumbprint
from tests.support.jwt_forgery import raw_es256
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

ACTIVE = "LA-MOHA-000101"
ES256, EDDSA, ES384, HMAC256 = -7, -8, -35, 5


@dataclass
class Printed:
    service: Services
    qr_text: str
    kid: bytes  # as the issuer writes it in the protected header (the whole kid or its hint)
    sign: Callable[[bytes], bytes]
    public_pem: bytes
    payload: bytes  # the CWT claims as the issuer signed them
    protected: bytes


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Printed]:
    home: Path = tmp_path_factory.mktemp("qr")
    svc = make_service(make_settings(home, f"sqlite:///{home / 'idsvc.sqlite3'}"))
    svc.credentials.init(now=NOW, actor="test-admin")
    svc.register.import_hr(
        SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="test", now=NOW
    )
    qr_text = svc.credentials.issue(ACTIVE, actor="desk", now=NOW).qr_text
    assert qr_text
    with svc.infra.db.transaction() as session:
        issuer = svc.infra.issuer(session)
        signer = svc.infra.signer(issuer)
        public = issuer.ring.public_keys()[signer.kid]
    assert signer.alg == "ES256"
    cose = cbor2.loads(zlib.decompress(b45decode(qr_text)))
    protected, _, payload, _ = cose.value
    yield Printed(
        svc,
        qr_text,
        cbor2.loads(protected)[4],
        signer.sign,
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        payload,
        protected,
    )
    svc.infra.db.dispose()


def _signed_bytes(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def qr(
    protected: bytes | dict[int, Any],
    payload: bytes,
    sign: Callable[[bytes], bytes],
    *,
    unprotected: dict[Any, Any] | None = None,
    after_cbor: bytes = b"",
    after_zlib: bytes = b"",
) -> str:
    p = protected if isinstance(protected, bytes) else cbor2.dumps(protected, canonical=True)
    signature = sign(_signed_bytes(p, payload))
    cose = cbor2.dumps(cbor2.CBORTag(18, [p, unprotected or {}, payload, signature]))
    return b45encode(zlib.compress(cose + after_cbor, 9) + after_zlib)


def _reasons(printed: Printed, text: str) -> tuple[bool, tuple[Reason, ...]]:
    result = printed.service.verification.verify(text, now=NOW)
    if not result.valid:
        assert result.holder is None
    return result.valid, result.reasons


def _assert_refused(printed: Printed, attacks: list[tuple[str, str, Reason]]) -> None:
    wrong = {
        name: _reasons(printed, text)
        for name, text, expected in attacks
        if _reasons(printed, text) != (False, (expected,))
    }
    assert not wrong, wrong


def test_genuine_and_faithfully_rebuilt_qr_verify(printed: Printed) -> None:
    rebuilt = qr(printed.protected, printed.payload, printed.sign)
    assert _reasons(printed, printed.qr_text) == (True, ())
    assert _reasons(printed, rebuilt) == (True, ())


def test_cose_algorithms_outside_the_allow_list_are_malformed(printed: Printed) -> None:
    mac = lambda data: hmac.new(printed.public_pem, data, hashlib.sha256).digest()  # noqa: E731
    kid = printed.kid
    _assert_refused(
        printed,
        [
            (
                "ES384 signed by the issuer",
                qr({1: ES384, 4: kid}, printed.payload, printed.sign),
                Reason.MALFORMED,
            ),
            (
                "HMAC 256/256 keyed with the public key PEM",
                qr({1: HMAC256, 4: kid}, printed.payload, mac),
                Reason.MALFORMED,
            ),
            (
                "alg as text",
                qr({1: "ES256", 4: kid}, printed.payload, printed.sign),
                Reason.MALFORMED,
            ),
            ("alg missing", qr({4: kid}, printed.payload, printed.sign), Reason.MALFORMED),
            ("alg true", qr({1: True, 4: kid}, printed.payload, printed.sign), Reason.MALFORMED),
        ],
    )


def test_alg_that_does_not_fit_the_key_is_refused(printed: Printed) -> None:
    attacker = ed25519.Ed25519PrivateKey.generate()
    text = qr({1: EDDSA, 4: printed.kid}, printed.payload, attacker.sign)
    assert _reasons(printed, text) == (False, (Reason.BAD_SIGNATURE,))


def test_unprotected_kid_and_alg_are_never_used(printed: Printed) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    attacker_kid = b64url_decode(thumbprint(public_jwk(attacker.public_key())))[: len(printed.kid)]
    mine = raw_es256(attacker)
    _assert_refused(
        printed,
        [
            (
                "attacker's kid protected, issuer's kid unprotected",
                qr(
                    {1: ES256, 4: attacker_kid},
                    printed.payload,
                    mine,
                    unprotected={4: printed.kid, 1: ES256},
                ),
                Reason.UNKNOWN_KEY,
            ),
            (
                "issuer's kid protected, attacker's key in the unprotected header",
                qr(
                    {1: ES256, 4: printed.kid},
                    printed.payload,
                    mine,
                    unprotected={
                        4: attacker_kid,
                        1: HMAC256,
                        -1: public_jwk(attacker.public_key()),
                    },
                ),
                Reason.BAD_SIGNATURE,
            ),
            (
                "kid only in the unprotected header",
                qr({1: ES256}, printed.payload, printed.sign, unprotected={4: printed.kid}),
                Reason.MALFORMED,
            ),
        ],
    )
    # The issuer's own signature with junk in the unprotected header: the junk is ignored.
    ignored = qr(
        printed.protected, printed.payload, printed.sign, unprotected={1: HMAC256, 4: attacker_kid}
    )
    assert _reasons(printed, ignored) == (True, ())


def test_hostile_protected_header_is_malformed(printed: Printed) -> None:
    kid = printed.kid
    dup_alg = b"\xa3\x01\x26\x04\x58\x20" + kid + b"\x01\x27"  # {1: -7, 4: kid, 1: -8}
    _assert_refused(
        printed,
        [
            (
                "crit in the protected header",
                qr({1: ES256, 2: [99], 4: kid, 99: 1}, printed.payload, printed.sign),
                Reason.MALFORMED,
            ),
            (
                "duplicate alg in the protected header",
                qr(dup_alg, printed.payload, printed.sign),
                Reason.MALFORMED,
            ),
            (
                "kid path traversal",
                qr({1: ES256, 4: b"../../etc/passwd"}, printed.payload, printed.sign),
                Reason.MALFORMED,
            ),
            (
                "kid unknown",
                qr({1: ES256, 4: bytes(len(kid))}, printed.payload, printed.sign),
                Reason.UNKNOWN_KEY,
            ),
            (
                "protected header with bytes after its CBOR",
                qr(printed.protected + b"\x00", printed.payload, printed.sign),
                Reason.MALFORMED,
            ),
        ],
    )


def test_bytes_after_the_cbor_are_malformed(printed: Printed) -> None:
    # The same signed credential with bytes after the COSE_Sign1 item, inside the zlib data:
    # a second spelling of one credential, which a replay cache or an audit hash would see as
    # another one.
    _assert_refused(
        printed,
        [
            (
                f"{len(extra)} byte(s) after the COSE_Sign1",
                qr(printed.protected, printed.payload, printed.sign, after_cbor=extra),
                Reason.MALFORMED,
            )
            for extra in (b"\x00", b"\xf6", cbor2.dumps({1: 2}), b"\xff" * 40)
        ],
    )


def test_bytes_after_the_zlib_stream_are_malformed(printed: Printed) -> None:
    text = qr(printed.protected, printed.payload, printed.sign, after_zlib=b"\x00\x00")
    assert _reasons(printed, text) == (False, (Reason.MALFORMED,))


def test_payload_with_bytes_after_its_cbor_is_refused(printed: Printed) -> None:
    text = qr(printed.protected, printed.payload + b"\x00", printed.sign)
    assert _reasons(printed, text) == (False, (Reason.MALFORMED,))


def test_zlib_bomb_is_malformed_and_cheap(printed: Printed) -> None:
    bomb = zlib.compress(bytes(50_000_000), 9)  # 50 MB of zeros in ~49 kB
    small_bomb = zlib.compress(bytes(MAX_INFLATED_BYTES + 1), 9)
    texts = [
        ("bomb over the text limit", b45encode(bomb)),
        ("just over the inflate cap", b45encode(small_bomb)),
    ]
    assert len(texts[0][1]) > MAX_TEXT_CHARS >= len(texts[1][1])
    _assert_refused(printed, [(n, t, Reason.MALFORMED) for n, t in texts])


def test_oversized_text_is_malformed(printed: Printed) -> None:
    padded = printed.qr_text + "0" * (MAX_TEXT_CHARS + 1 - len(printed.qr_text))
    assert _reasons(printed, padded) == (False, (Reason.MALFORMED,))
