"""An independent Claim 169 decoder accepts our printed QR.

The decoder is the ``claim169`` package from PyPI, **version 0.3.0** (Rust core, MIT, from
github.com/idpass/claim-169; pinned in requirements-dev.lock). It is given nothing but the
issuer's public key taken from our published JWKS (converted to PEM), and it checks:

- base45, zlib (it reports ``detected_compression == "zlib"``), COSE_Sign1 (tag 18) and the
  CWT structure;
- the signature: ES256 with ``verify_with_ecdsa_p256_pem``, EdDSA with
  ``verify_with_ed25519_pem`` (``verification_status == "verified"``); a changed payload and a
  wrong key both raise its ``SignatureError``;
- the ``kid`` in the protected header (``inspect().key_id``: our 8-byte kid hint, the first
  bytes of the RFC 7638 thumbprint; it needs no kid to verify, the key is given) and the
  algorithm name;
- the CWT times (``validate_timestamps``: exp checked against the clock; no nbf is issued,
  it reads none) and ``iss``;
- claim 169: id (1), full name (4), date of birth (8, passed through as text: it accepts our
  ``YYYYMMDD`` and reads it as we do), gender (9), secondary name and language (19, 20), and
  the face (62) as a list of biometrics with format 0 (image) and sub-format 4 (WebP).

It ignores our private claim (-65537), as a generic Claim 169 reader should.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import claim169 as independent
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from idsvc.formats.base45 import b45decode, b45encode
from idsvc.register.photos import Photos
from idsvc.services import Services
from keys.jwk import b64url_decode, public_key_from_jwk
from tests.support.card_print import portrait_bytes
from tests.support.settings import NOW, SAMPLE_CSV, make_service, make_settings

PERSON = "LA-MOHA-000101"  # Somphone Keomany, ສົມພອນ ແກ້ວມະນີ


@pytest.fixture(params=["ES256", "EdDSA"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    settings = make_settings(
        tmp_path / "home",
        f"sqlite:///{tmp_path / 'idsvc.sqlite3'}",
        key_alg=request.param,
        qr_date_of_birth=True,
    )
    svc = make_service(settings)
    svc.credentials.init(now=NOW, actor="test-admin")
    svc.register.import_hr(SAMPLE_CSV.read_bytes(), source_name="hr_sample.csv", actor="t", now=NOW)
    yield svc
    svc.infra.db.dispose()


def _decode(svc: Services, text: str) -> independent.DecodeResult:
    """Verify with nothing but the public key from the JWKS."""
    (jwk,) = svc.credentials.jwks()["keys"]
    pem = (
        public_key_from_jwk(jwk)
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    if jwk["kty"] == "EC":
        return independent.decode(text, verify_with_ecdsa_p256_pem=pem)
    return independent.decode(text, verify_with_ed25519_pem=pem)


def test_version_is_the_one_recorded() -> None:
    assert independent.version() == "0.3.0"


def test_independent_decoder_accepts_our_qr(deployment: Services) -> None:
    view = deployment.credentials.issue(PERSON, actor="t", now=NOW)
    assert view.qr_text is not None
    result = _decode(deployment, view.qr_text)
    assert result.is_verified() and result.verification_status == "verified"
    assert result.detected_compression == "zlib"
    meta = result.cwt_meta
    assert meta.issuer == "https://id.mcs.gov.kh/issuers/default"
    assert meta.expires_at == int(view.expires_at.timestamp())
    assert meta.issued_at == int(view.issued_at.timestamp())
    assert meta.not_before is None  # valid from iat: nbf is not written (profile version 2)
    assert not meta.is_expired()
    person = result.claim169
    assert person.id == PERSON
    assert person.full_name == "Somphone Keomany"
    assert person.secondary_full_name == "ສົມພອນ ແກ້ວມະນີ"
    assert person.secondary_language == "lao"
    assert person.gender == independent.Gender.FEMALE
    assert person.date_of_birth == "19840312"  # YYYYMMDD, as the spec's table and bytes say
    assert person.face is None and person.photo is None

    inspected = independent.inspect(view.qr_text)
    assert inspected.key_id == b64url_decode(view.kid)[:8]
    assert inspected.algorithm == deployment.settings.key_alg
    assert inspected.cose_type == "Sign1"


def test_independent_decoder_refuses_tampering_and_wrong_keys(
    deployment: Services, tmp_path: Path
) -> None:
    import zlib

    import cbor2

    text = deployment.credentials.issue(PERSON, actor="t", now=NOW).qr_text
    assert text is not None
    cose = cbor2.loads(zlib.decompress(b45decode(text)))
    protected, unprotected, payload, signature = cose.value
    claims = cbor2.loads(payload)
    claims[169][4] = "Someone Else"
    forged = cbor2.dumps(
        cbor2.CBORTag(18, [protected, dict(unprotected), cbor2.dumps(claims), signature])
    )
    with pytest.raises(independent.SignatureError):
        _decode(deployment, b45encode(zlib.compress(forged)))

    other = make_service(
        make_settings(
            tmp_path / "other",
            f"sqlite:///{tmp_path / 'other.sqlite3'}",
            key_alg=deployment.settings.key_alg,
        )
    )
    other.credentials.init(now=NOW, actor="t")
    with pytest.raises(independent.SignatureError):
        _decode(other, text)  # the right format, somebody else's key
    other.infra.db.dispose()


def test_independent_decoder_reads_the_face(deployment: Services) -> None:
    portrait = portrait_bytes(size=(600, 800))
    Photos(deployment.infra.db).store(PERSON, portrait, actor="desk", now=NOW)
    view = deployment.credentials.issue(PERSON, actor="t", now=NOW, qr_photo=True)
    assert view.qr_text is not None
    (face,) = _decode(deployment, view.qr_text).claim169.face or []
    assert face.data == Photos(deployment.infra.db).qr_photo(PERSON)[0]
    assert (face.format, face.sub_format) == (0, 4)  # image, WebP
