from __future__ import annotations

import json
import shutil
import stat
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from keys.ca import verify_card_certificate
from keys.errors import (
    InsecureKeyFile,
    KeyFileError,
    KeyRingError,
    UnknownKey,
    UnsupportedAlgorithm,
    WrongPassphrase,
)
from keys.keyring import FileBackend, KeyRing, Pkcs11Backend
from keys.signer import verify_signature
from tests.support.compact_jws import sign_compact
from tests.support.softhsm import SoftHsmToken

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
BACKEND = FileBackend(b"correct horse battery staple")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ring_dir(tmp_path: Path) -> Path:
    return tmp_path / "issuer"


@pytest.fixture
def ring(ring_dir: Path) -> KeyRing:
    return KeyRing.create(ring_dir, alg="ES256", now=NOW, backend=BACKEND)


def test_create_lays_out_the_directory(ring: KeyRing, ring_dir: Path) -> None:
    assert KeyRing.exists(ring_dir)
    credential, ca = ring.active("credential"), ring.active("ca")
    assert credential.kid != ca.kid
    assert {e.kid for e in ring.entries()} == {credential.kid, ca.kid}
    assert credential.alg == ca.alg == "ES256"
    assert credential.activated_at == NOW and credential.retired_at is None
    assert credential.path == f"private/{credential.kid}.pem"
    assert _mode(ring_dir) == 0o700
    assert _mode(ring_dir / "private") == 0o700
    for entry in (credential, ca):
        assert _mode(ring_dir / "private" / f"{entry.kid}.pem") == 0o600
    manifest = json.loads((ring_dir / "keyring.json").read_text())
    assert [k["kid"] for k in manifest["keys"]] == [credential.kid, ca.kid]
    assert "passphrase" not in (ring_dir / "keyring.json").read_text()
    # The CA certificate is for the CA key.
    assert ring.issuer_ca(BACKEND).certificate == ring.ca_certificate()


def test_open_sees_what_create_wrote(ring: KeyRing, ring_dir: Path) -> None:
    again = KeyRing.open(ring_dir)
    assert again.entries() == ring.entries()
    assert again.jwks() == ring.jwks()
    assert again.ca_certificate() == ring.ca_certificate()


def test_missing_ring_says_how_to_create_one(tmp_path: Path) -> None:
    assert not KeyRing.exists(tmp_path / "nowhere")
    with pytest.raises(KeyRingError, match="idsvc init"):
        KeyRing.open(tmp_path / "nowhere")
    tmp_path.joinpath("empty").mkdir()
    with pytest.raises(KeyRingError, match="idsvc init"):
        KeyRing.open(tmp_path / "empty")


def test_create_refuses_an_existing_ring(ring: KeyRing, ring_dir: Path) -> None:
    with pytest.raises(KeyRingError, match="already exists"):
        KeyRing.create(ring_dir, alg="EdDSA", now=NOW, backend=BACKEND)


def test_create_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedAlgorithm):
        KeyRing.create(tmp_path / "a", alg="RS256", now=NOW, backend=BACKEND)
    with pytest.raises(ValueError, match="timezone"):
        KeyRing.create(tmp_path / "b", alg="ES256", now=NOW.replace(tzinfo=None), backend=BACKEND)


def test_signer_needs_the_passphrase(ring: KeyRing) -> None:
    with pytest.raises(WrongPassphrase):
        ring.signer(FileBackend(b"this is not the passphrase"))


def test_rotate(ring: KeyRing, ring_dir: Path) -> None:
    old_signer = ring.signer(BACKEND)
    old_token = sign_compact(old_signer, {"sub": "E-1"})
    later = NOW + timedelta(days=90)

    new = ring.rotate(BACKEND, now=later)

    assert new.kid != old_signer.kid and new.active and new.activated_at == later
    new_signer = ring.signer(BACKEND)
    assert new_signer.kid == new.kid == ring.active().kid
    old = ring.entry(old_signer.kid)
    assert old.retired_at == later and old.published and not old.active
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new.kid, old.kid]
    # Old credentials still verify against the published old key.
    signing_input, _, _ = old_token.rpartition(".")
    data = signing_input.encode()
    verify_signature(ring.public_keys()[old.kid], "ES256", data, old_signer.sign(data))
    verify_signature(ring.public_key(new.kid), "ES256", data, new_signer.sign(data))
    # The CA key is untouched and never published.
    assert ring.active("ca").kid not in ring.public_keys()
    # And the directory agrees after a reopen.
    reopened = KeyRing.open(ring_dir)
    assert reopened.active().kid == new.kid
    assert reopened.entries() == ring.entries()


def test_rotate_can_change_algorithm(ring: KeyRing) -> None:
    new = ring.rotate(BACKEND, now=NOW + timedelta(days=1), alg="EdDSA")
    assert new.alg == "EdDSA" and ring.signer(BACKEND).alg == "EdDSA"
    assert {k["alg"] for k in ring.jwks()["keys"]} == {"ES256", "EdDSA"}


def test_rotate_refuses_going_back_in_time(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="earlier"):
        ring.rotate(BACKEND, now=NOW - timedelta(days=1))
    assert len(ring.entries()) == 2


def test_stage_then_activate(ring: KeyRing) -> None:
    before = ring.active().kid
    staged = ring.stage(BACKEND, now=NOW + timedelta(days=1))
    assert staged.pending and ring.active().kid == before
    assert staged.kid in ring.public_keys()  # published ahead of first use
    assert ring.signer(BACKEND).kid == before
    activated = ring.activate(staged.kid, now=NOW + timedelta(days=8))
    assert activated.active and ring.signer(BACKEND).kid == staged.kid
    with pytest.raises(KeyRingError, match="not a staged"):
        ring.activate(before, now=NOW + timedelta(days=9))


def test_unpublish(ring: KeyRing) -> None:
    old = ring.active()
    with pytest.raises(KeyRingError, match="active"):
        ring.unpublish(old.kid, now=NOW)
    with pytest.raises(KeyRingError, match="ca key"):
        ring.unpublish(ring.active("ca").kid, now=NOW)
    with pytest.raises(UnknownKey):
        ring.unpublish("no-such-kid", now=NOW)
    ring.rotate(BACKEND, now=NOW + timedelta(days=1))
    gone = ring.unpublish(old.kid, now=NOW + timedelta(days=400))
    assert not gone.published
    assert old.kid not in {k["kid"] for k in ring.jwks()["keys"]}
    with pytest.raises(UnknownKey):
        ring.public_key(old.kid)
    assert ring.entry(old.kid).unpublished_at == NOW + timedelta(days=400)  # kept for audit
    with pytest.raises(KeyRingError, match="already"):
        ring.unpublish(old.kid, now=NOW + timedelta(days=401))


def test_stale_handles_do_not_lose_updates(ring: KeyRing, ring_dir: Path) -> None:
    other = KeyRing.open(ring_dir)
    first = ring.rotate(BACKEND, now=NOW + timedelta(days=1))
    second = other.rotate(BACKEND, now=NOW + timedelta(days=2))
    final = KeyRing.open(ring_dir)
    credential = [e for e in final.entries() if e.purpose == "credential"]
    assert len(credential) == 3
    assert final.active().kid == second.kid
    assert final.entry(first.kid).retired_at == NOW + timedelta(days=2)


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_jwks_works_in_joserfc_and_pyjwt(tmp_path: Path, alg: str) -> None:
    ring = KeyRing.create(tmp_path / "r", alg=alg, now=NOW, backend=BACKEND)
    old_token = sign_compact(ring.signer(BACKEND), {"sub": "E-1", "n": 1})
    ring.rotate(BACKEND, now=NOW + timedelta(days=1))
    new_token = sign_compact(ring.signer(BACKEND), {"sub": "E-2", "n": 2})
    jwks = json.loads(json.dumps(ring.jwks()))  # exactly what the API would serve
    assert all(k["use"] == "sig" and k["alg"] == alg for k in jwks["keys"])

    key_set = KeySet.import_key_set(jwks)
    py_set = jwt.PyJWKSet.from_dict(jwks)
    for token, subject in ((old_token, "E-1"), (new_token, "E-2")):
        assert jose_jwt.decode(token, key_set, algorithms=[alg]).claims["sub"] == subject
        kid = jwt.get_unverified_header(token)["kid"]
        claims = jwt.decode(token, py_set[kid].key, algorithms=[alg])
        assert claims["sub"] == subject


Tamper = Callable[[dict[str, Any]], None]


def _swap_kid(doc: dict[str, Any]) -> None:
    doc["keys"][0]["kid"] = doc["keys"][1]["kid"]


def _swap_public_key(doc: dict[str, Any]) -> None:
    doc["keys"][0]["public_jwk"] = doc["keys"][1]["public_jwk"]


def _change_x(doc: dict[str, Any]) -> None:
    jwk = doc["keys"][0]["public_jwk"]
    jwk["x"] = jwk["y"]


def _escape_path(doc: dict[str, Any]) -> None:
    doc["keys"][0]["path"] = "../../etc/passwd"


def _absolute_path(doc: dict[str, Any]) -> None:
    doc["keys"][0]["path"] = "/etc/passwd"


def _retire_active(doc: dict[str, Any]) -> None:
    doc["keys"][0]["retired_at"] = doc["keys"][0]["activated_at"]


def _two_active(doc: dict[str, Any]) -> None:
    doc["keys"][1]["purpose"] = "credential"


def _unknown_field(doc: dict[str, Any]) -> None:
    doc["keys"][0]["extra"] = True


def _bad_alg(doc: dict[str, Any]) -> None:
    doc["keys"][0]["alg"] = "EdDSA"


def _alg_none(doc: dict[str, Any]) -> None:
    doc["keys"][0]["alg"] = "none"


def _private_member(doc: dict[str, Any]) -> None:
    doc["keys"][0]["public_jwk"]["d"] = doc["keys"][0]["public_jwk"]["x"]


def _naive_time(doc: dict[str, Any]) -> None:
    doc["keys"][0]["created_at"] = "2026-01-15T09:00:00"


def _time_travel(doc: dict[str, Any]) -> None:
    doc["keys"][0]["activated_at"] = "2020-01-01T00:00:00Z"


def _format(doc: dict[str, Any]) -> None:
    doc["format"] = "idsvc-keyring/99"


def _duplicate(doc: dict[str, Any]) -> None:
    doc["keys"].append(dict(doc["keys"][0], retired_at="2026-02-01T00:00:00Z"))


@pytest.mark.parametrize(
    "tamper",
    [
        _swap_kid,
        _swap_public_key,
        _change_x,
        _escape_path,
        _absolute_path,
        _retire_active,
        _two_active,
        _unknown_field,
        _bad_alg,
        _alg_none,
        _private_member,
        _naive_time,
        _time_travel,
        _format,
        _duplicate,
    ],
)
def test_tampered_manifest_is_refused(ring_dir: Path, ring: KeyRing, tamper: Tamper) -> None:
    manifest = ring_dir / "keyring.json"
    doc = json.loads(manifest.read_text())
    tamper(doc)
    manifest.write_text(json.dumps(doc))
    with pytest.raises(KeyRingError):
        KeyRing.open(ring_dir)


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"format": "idsvc-keyring/1"}', b"\xff"])
def test_malformed_manifest_is_refused(ring_dir: Path, ring: KeyRing, content: bytes) -> None:
    (ring_dir / "keyring.json").write_bytes(content)
    with pytest.raises(KeyRingError):
        KeyRing.open(ring_dir)


def test_replaced_key_file_does_not_match_kid(ring: KeyRing, ring_dir: Path) -> None:
    credential, ca = ring.active("credential"), ring.active("ca")
    shutil.copyfile(
        ring_dir / "private" / f"{ca.kid}.pem", ring_dir / "private" / f"{credential.kid}.pem"
    )
    reopened = KeyRing.open(ring_dir)  # public data alone is still consistent
    with pytest.raises(KeyFileError, match="does not match kid"):
        reopened.signer(BACKEND)


def test_replaced_ca_certificate_is_refused(tmp_path: Path, ring: KeyRing, ring_dir: Path) -> None:
    other = KeyRing.create(tmp_path / "other", alg="ES256", now=NOW, backend=BACKEND)
    pem = other.ca_certificate().public_bytes(serialization.Encoding.PEM)
    (ring_dir / "ca.pem").write_bytes(pem)
    with pytest.raises(KeyRingError, match="does not certify"):
        KeyRing.open(ring_dir)


def test_world_writable_ring_is_refused(ring: KeyRing, ring_dir: Path) -> None:
    ring_dir.chmod(0o777)
    try:
        with pytest.raises(InsecureKeyFile):
            KeyRing.open(ring_dir)
    finally:
        ring_dir.chmod(0o700)


def test_backend_must_match_the_entry(ring: KeyRing) -> None:
    hsm = Pkcs11Backend("/usr/lib/softhsm/libsofthsm2.so", "token", "1234")
    with pytest.raises(KeyRingError, match="file backend"):
        ring.signer(hsm)
    assert "1234" not in repr(hsm)
    assert "correct horse" not in repr(BACKEND)


def test_issuer_ca_issues_card_certificates(ring: KeyRing) -> None:
    ca = ring.issuer_ca(BACKEND)
    card = ca.issue_card_certificate(
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        common_name="Card 7",
        card_uuid=uuid.uuid4(),
        serial=None,
        now=NOW,
        not_after=NOW + timedelta(days=365),
    )
    verify_card_certificate(KeyRing.open(ring.directory).ca_certificate(), card, now=NOW)


@pytest.mark.softhsm
def test_pkcs11_ring_rotates(tmp_path: Path, softhsm_token: SoftHsmToken) -> None:
    backend = Pkcs11Backend(softhsm_token.module, softhsm_token.label, softhsm_token.pin)
    ring = KeyRing.create(tmp_path / "hsm-ring", alg="ES256", now=NOW, backend=backend)
    assert not (tmp_path / "hsm-ring" / "private").exists()  # nothing secret on disk
    credential = ring.active()
    assert credential.backend == "pkcs11" and credential.key_label and credential.path is None
    old_signer = ring.signer(backend)
    assert old_signer.kid == credential.kid

    new = ring.rotate(backend, now=NOW + timedelta(days=30), alg="EdDSA")

    reopened = KeyRing.open(tmp_path / "hsm-ring")
    signer = reopened.signer(backend)
    assert signer.kid == new.kid and signer.alg == "EdDSA"
    data = b"payload"
    verify_signature(reopened.public_key(new.kid), "EdDSA", data, signer.sign(data))
    verify_signature(reopened.public_key(credential.kid), "ES256", data, old_signer.sign(data))
    assert {k["kid"] for k in reopened.jwks()["keys"]} == {credential.kid, new.kid}
    card = reopened.issuer_ca(backend).issue_card_certificate(
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        common_name="Card 9",
        card_uuid=uuid.uuid4(),
        serial=None,
        now=NOW,
        not_after=NOW + timedelta(days=365),
    )
    verify_card_certificate(reopened.ca_certificate(), card, now=NOW)
    with pytest.raises(KeyRingError, match="pkcs11 backend"):
        reopened.signer(BACKEND)


def test_ca_is_named_after_the_issuer(tmp_path: Path) -> None:
    from cryptography.x509.oid import NameOID

    short = KeyRing.create(
        tmp_path / "a", alg="EdDSA", now=NOW, backend=BACKEND, ca_name="Ministry of Civil Service"
    ).ca_certificate()
    assert short.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "Ministry of Civil Service Issuer CA"
    )
    long_name = "ក្រសួងមុខងារសាធារណៈ " * 5  # longer than X.520 allows in a common name
    long = KeyRing.create(
        tmp_path / "b", alg="EdDSA", now=NOW, backend=BACKEND, ca_name=long_name
    ).ca_certificate()
    assert long.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == long_name
    common_name = str(long.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    assert long_name.startswith(common_name) and len(common_name.encode()) <= 64


# -- credential keys' certificates (the x5c chain of the phone credential) -----------------

ISS = "https://id.mcs.gov.kh"


def _chain_checks(
    ring: KeyRing, kid: str, backend: FileBackend | Pkcs11Backend, at: datetime
) -> x509.Certificate:
    """The certificate of ``kid``: for exactly that key, and a path to the ring's CA at ``at``
    by cryptography's own path validation (any end-entity extensions allowed)."""
    leaf, ca = ring.certificate_chain(kid, backend, now=at, issuer_uri=ISS)
    assert ca == ring.ca_certificate()
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert leaf.public_key().public_bytes(*spki) == ring.entry(kid).public_key().public_bytes(*spki)
    verifier = (
        PolicyBuilder()
        .store(Store([ca]))
        .time(at)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
        )
        .build_client_verifier()
    )
    assert verifier.verify(leaf, []).chain == [leaf, ca]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [ISS]
    assert san.get_values_for_type(x509.DNSName) == ["id.mcs.gov.kh"]
    assert kid in leaf.subject.rfc4514_string()
    assert leaf.not_valid_after_utc == ca.not_valid_after_utc
    return leaf


def _pem_of(ring: KeyRing, kid: str) -> bytes:
    return (ring.directory / "certs" / f"{kid}.pem").read_bytes()


def test_each_credential_key_is_certified_by_the_ca(ring_dir: Path) -> None:
    ring = KeyRing.create(ring_dir, alg="ES256", now=NOW, backend=BACKEND, issuer_uri=ISS)
    first = ring.active()
    assert _mode(ring_dir / "certs" / f"{first.kid}.pem") == 0o644  # public, like ca.pem
    leaf = _chain_checks(ring, first.kid, BACKEND, NOW)
    assert leaf.not_valid_before_utc == first.created_at

    rotated = ring.rotate(BACKEND, now=NOW + timedelta(days=1), alg="EdDSA", issuer_uri=ISS)
    staged = ring.stage(BACKEND, now=NOW + timedelta(days=2), issuer_uri=ISS)
    made = {kid: _pem_of(ring, kid) for kid in (rotated.kid, staged.kid)}  # issued with the key
    reopened = KeyRing.open(ring_dir)
    later = NOW + timedelta(days=3)
    for kid in (first.kid, rotated.kid, staged.kid):
        certificate = _chain_checks(reopened, kid, BACKEND, later)
        assert certificate.public_bytes(serialization.Encoding.PEM) == _pem_of(ring, kid)
    assert {kid: _pem_of(reopened, kid) for kid in made} == made  # nothing re-issued
    assert _chain_checks(reopened, first.kid, BACKEND, later) == leaf  # survives rotation
    with pytest.raises(KeyRingError, match="not a credential key"):
        reopened.certificate_chain(reopened.active("ca").kid, BACKEND, now=later, issuer_uri=ISS)
    with pytest.raises(UnknownKey):
        reopened.certificate_chain("no-such-kid", BACKEND, now=later, issuer_uri=ISS)


def test_an_old_ring_gets_certificates_on_first_use(ring: KeyRing, ring_dir: Path) -> None:
    old = ring.active()
    ring.rotate(BACKEND, now=NOW + timedelta(days=1))
    shutil.rmtree(ring_dir / "certs")  # a ring made before keys had certificates
    before = KeyRing.open(ring_dir)
    first_use = NOW + timedelta(days=40)
    leaf = _chain_checks(before, old.kid, BACKEND, first_use)
    # Valid from the key's creation: credentials it signed before today are covered too.
    assert leaf.not_valid_before_utc == old.created_at
    assert leaf.public_bytes(serialization.Encoding.PEM) == _pem_of(ring, old.kid)
    again = KeyRing.open(ring_dir).certificate_chain(
        old.kid, BACKEND, now=first_use + timedelta(days=1), issuer_uri=ISS
    )
    assert again[0] == leaf  # read back, not issued again
    # Without the CA key nothing can be issued; a certificate already made is still read.
    wrong = FileBackend(b"not the passphrase")
    assert KeyRing.open(ring_dir).certificate_chain(old.kid, wrong, now=first_use, issuer_uri=ISS)
    with pytest.raises(WrongPassphrase):
        KeyRing.open(ring_dir).certificate_chain(
            ring.active().kid, wrong, now=first_use, issuer_uri=ISS
        )


def test_a_certificate_without_the_issuer_name_is_replaced_once(ring: KeyRing) -> None:
    kid = ring.active().kid  # made without issuer_uri: no SAN
    unnamed = _pem_of(ring, kid)
    leaf = _chain_checks(ring, kid, BACKEND, NOW + timedelta(days=1))
    assert _pem_of(ring, kid) != unnamed
    assert _chain_checks(KeyRing.open(ring.directory), kid, BACKEND, NOW + timedelta(2)) == leaf


def test_two_first_uses_at_once_get_the_same_certificate(ring: KeyRing, ring_dir: Path) -> None:
    shutil.rmtree(ring_dir / "certs")
    kid = ring.active().kid
    workers = 4
    start = threading.Barrier(workers)

    def first_use(_: int) -> bytes:
        handle = KeyRing.open(ring_dir)  # each worker has its own view of the ring
        start.wait()
        leaf, _ca = handle.certificate_chain(kid, BACKEND, now=NOW, issuer_uri=ISS)
        return leaf.public_bytes(serialization.Encoding.DER)

    with ThreadPoolExecutor(workers) as pool:
        seen = set(pool.map(first_use, range(workers)))
    assert len(seen) == 1
    on_disk = x509.load_pem_x509_certificate(_pem_of(ring, kid))
    assert seen == {on_disk.public_bytes(serialization.Encoding.DER)}
    assert [p.name for p in (ring_dir / "certs").iterdir()] == [f"{kid}.pem"]  # no temp files


def test_a_foreign_certificate_file_is_refused(tmp_path: Path, ring: KeyRing) -> None:
    kid = ring.active().kid
    other = KeyRing.create(tmp_path / "other", alg="ES256", now=NOW, backend=BACKEND)
    path = ring.directory / "certs" / f"{kid}.pem"
    path.write_bytes(_pem_of(other, other.active().kid))  # another key's certificate
    with pytest.raises(KeyRingError, match="does not certify key"):
        KeyRing.open(ring.directory).certificate_chain(kid, BACKEND, now=NOW, issuer_uri=ISS)
    # The right key, certified by another CA (someone swapped the file).
    stranger = other.issuer_ca(BACKEND).issue_signing_certificate(
        ring.entry(kid).public_key(), common_name="x", now=NOW, not_after=NOW + timedelta(9)
    )
    path.write_bytes(stranger.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(KeyRingError, match="not issued by this ring's CA"):
        KeyRing.open(ring.directory).certificate_chain(kid, BACKEND, now=NOW, issuer_uri=ISS)


def test_no_certificate_after_the_ca_ends(ring: KeyRing, ring_dir: Path) -> None:
    shutil.rmtree(ring_dir / "certs")
    end = ring.ca_certificate().not_valid_after_utc
    with pytest.raises(KeyRingError, match="issuer CA certificate ended"):
        ring.certificate_chain(ring.active().kid, BACKEND, now=end, issuer_uri=ISS)


@pytest.mark.softhsm
def test_pkcs11_ring_certifies_its_keys(tmp_path: Path, softhsm_token: SoftHsmToken) -> None:
    backend = Pkcs11Backend(softhsm_token.module, softhsm_token.label, softhsm_token.pin)
    directory = tmp_path / "hsm-ring"
    ring = KeyRing.create(directory, alg="ES256", now=NOW, backend=backend, issuer_uri=ISS)
    first = ring.active().kid
    new = ring.rotate(backend, now=NOW + timedelta(days=30), alg="EdDSA", issuer_uri=ISS)
    assert (directory / "certs" / f"{new.kid}.pem").is_file()
    _chain_checks(KeyRing.open(directory), new.kid, backend, NOW + timedelta(days=31))
    shutil.rmtree(directory / "certs")  # and lazily, the CA key signing inside the token
    _chain_checks(KeyRing.open(directory), first, backend, NOW + timedelta(days=31))
