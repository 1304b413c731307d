from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey

from keys.errors import (
    InsecureKeyFile,
    KeyFileError,
    KeyFileExists,
    KeysError,
    UnsupportedAlgorithm,
    WeakPassphrase,
    WrongPassphrase,
)
from keys.file_signer import FileSigner
from keys.jwk import public_jwk, thumbprint
from keys.signer import Signer, verify_signature
from tests.support.compact_jws import sign_compact

PASSPHRASE = b"correct horse battery staple"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_generate_load_sign_verify(tmp_path: Path, alg: str) -> None:
    path = tmp_path / "issuer" / "key.pem"
    created = FileSigner.generate(path, alg, PASSPHRASE)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")

    signer = FileSigner.load(path, PASSPHRASE)
    assert isinstance(signer, Signer)
    assert (signer.kid, signer.alg) == (created.kid, alg)
    assert signer.kid == thumbprint(public_jwk(signer.public_key()))

    data = b"to be signed"
    signature = signer.sign(data)
    assert len(signature) == 64
    verify_signature(signer.public_key(), alg, data, signature)
    # Independently of keys.signer: cryptography's own verify.
    public = signer.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(signature, data)


# joserfc flags "EdDSA" as deprecated by RFC 9864 (in favour of "Ed25519"); still valid.
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_signature_verifies_in_joserfc_and_pyjwt(tmp_path: Path, alg: str) -> None:
    signer = FileSigner.generate(tmp_path / "k.pem", alg, PASSPHRASE)
    token = sign_compact(signer, {"sub": "E-0001", "iss": "https://mcs.example"})
    jwk = dict[str, str | list[str]](public_jwk(signer.public_key()))
    key = ECKey.import_key(jwk) if alg == "ES256" else OKPKey.import_key(jwk)
    decoded = jws.deserialize_compact(token, key, algorithms=[alg])
    assert decoded.headers()["kid"] == signer.kid
    claims = jwt.decode(token, jwt.PyJWK(jwk, algorithm=alg).key, algorithms=[alg])
    assert claims["sub"] == "E-0001"


def test_openssl_reads_the_key_file(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    signer = FileSigner.generate(path, "ES256", PASSPHRASE)
    result = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", "env:KEY_PASS", "-pubout"],
        capture_output=True,
        check=True,
        env={**os.environ, "KEY_PASS": PASSPHRASE.decode()},
    )
    openssl_public = serialization.load_pem_public_key(result.stdout)
    assert public_jwk(openssl_public) == public_jwk(signer.public_key())


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    FileSigner.generate(path, "ES256", PASSPHRASE)
    with pytest.raises(WrongPassphrase) as caught:
        FileSigner.load(path, b"not the passphrase at all")
    assert "not the passphrase" not in str(caught.value)
    assert PASSPHRASE.decode() not in str(caught.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601])
def test_group_or_other_bits_are_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.pem"
    FileSigner.generate(path, "ES256", PASSPHRASE)
    path.chmod(mode)
    with pytest.raises(InsecureKeyFile) as caught:
        FileSigner.load(path, PASSPHRASE)
    assert str(path) in str(caught.value)
    assert "chmod 600" in str(caught.value)


def test_directory_writable_by_others_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    path = directory / "k.pem"
    FileSigner.generate(path, "ES256", PASSPHRASE)
    directory.chmod(0o777)
    try:
        with pytest.raises(InsecureKeyFile, match="chmod 700"):
            FileSigner.load(path, PASSPHRASE)
        with pytest.raises(InsecureKeyFile):
            FileSigner.generate(directory / "other.pem", "ES256", PASSPHRASE)
    finally:
        directory.chmod(0o700)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        FileSigner.load(tmp_path / "absent.pem", PASSPHRASE)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello, world\n",
        os.urandom(512),
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nnot base64!\n"
        b"-----END ENCRYPTED PRIVATE KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ],
    ids=["empty", "text", "random", "bad-base64", "certificate"],
)
def test_garbage_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k.pem"
    _write_private(path, content)
    with pytest.raises(KeyFileError):
        FileSigner.load(path, PASSPHRASE)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    FileSigner.generate(path, "ES256", PASSPHRASE)
    lines = path.read_bytes().splitlines(keepends=True)
    truncated = tmp_path / "truncated.pem"
    _write_private(truncated, b"".join(lines[:2] + lines[-1:]))
    with pytest.raises(KeyFileError, match="damaged"):
        FileSigner.load(truncated, PASSPHRASE)


def test_altered_ciphertext_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    FileSigner.generate(path, "ES256", PASSPHRASE)
    lines = path.read_bytes().splitlines(keepends=True)
    middle = bytearray(lines[3])
    middle[10] = ord("A") if middle[10] != ord("A") else ord("B")
    lines[3] = bytes(middle)
    path.write_bytes(b"".join(lines))
    with pytest.raises((WrongPassphrase, KeyFileError)):
        FileSigner.load(path, PASSPHRASE)


@pytest.mark.parametrize(
    "private_format",
    [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL],
)
def test_unencrypted_key_is_refused(
    tmp_path: Path, private_format: serialization.PrivateFormat
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    )
    path = tmp_path / "plain.pem"
    _write_private(path, pem)
    with pytest.raises(KeyFileError, match="unencrypted"):
        FileSigner.load(path, PASSPHRASE)


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP384R1())],
    ids=["RSA", "P-384"],
)
def test_unsupported_key_types_are_refused(tmp_path: Path, key: object) -> None:
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE),
    )
    path = tmp_path / "other.pem"
    _write_private(path, pem)
    with pytest.raises(UnsupportedAlgorithm):
        FileSigner.load(path, PASSPHRASE)


def test_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    FileSigner.generate(path, "ES256", PASSPHRASE)
    before = path.read_bytes()
    with pytest.raises(KeyFileExists):
        FileSigner.generate(path, "EdDSA", PASSPHRASE)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]  # no temporary file left


def test_weak_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WeakPassphrase):
        FileSigner.generate(tmp_path / "k.pem", "ES256", b"short")
    assert not (tmp_path / "k.pem").exists()


def test_unsupported_algorithm_on_generate(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedAlgorithm):
        FileSigner.generate(tmp_path / "k.pem", "RS256", PASSPHRASE)


def test_generate_in_names_the_file_by_kid(tmp_path: Path) -> None:
    signer = FileSigner.generate_in(tmp_path / "private", "EdDSA", PASSPHRASE)
    assert signer.path == tmp_path / "private" / f"{signer.kid}.pem"
    assert FileSigner.load(signer.path, PASSPHRASE).kid == signer.kid


def test_repr_shows_no_key_material(tmp_path: Path) -> None:
    signer = FileSigner.generate(tmp_path / "k.pem", "EdDSA", PASSPHRASE)
    text = repr(signer)
    assert signer.kid in text
    assert "PRIVATE" not in text
    assert PASSPHRASE.decode() not in text


def test_errors_share_one_base() -> None:
    for error in (KeyFileError, WrongPassphrase, InsecureKeyFile, UnsupportedAlgorithm):
        assert issubclass(error, KeysError)
    assert issubclass(KeyFileExists, KeyFileError)
