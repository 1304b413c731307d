"""Issuer keys kept in passphrase-encrypted PKCS#8 PEM files.

Only encrypted PKCS#8 is read or written: a plaintext private key on disk is refused
even when it would load, so a key cannot end up unprotected by accident. Files are
``0600`` and written once; see :mod:`keys.filesystem`.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm as CryptographyUnsupported
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keys import der
from keys.algorithms import (
    Algorithm,
    PrivateKey,
    PublicKey,
    alg_for_public_key,
    es256_raw_from_der,
    generate_private_key,
    require_algorithm,
)
from keys.errors import KeyFileError, UnsupportedAlgorithm, WeakPassphrase, WrongPassphrase
from keys.filesystem import ensure_private_directory, read_private_file, write_new_file
from keys.jwk import public_jwk, thumbprint

__all__ = ["MIN_PASSPHRASE_LENGTH", "FileSigner"]

# BestAvailableEncryption derives the key with PBKDF2 at a modest iteration count, so
# the passphrase itself has to carry the strength.
MIN_PASSPHRASE_LENGTH: Final = 12

_MAX_KEY_FILE_SIZE: Final = 16 * 1024
_ENCRYPTED_LABEL: Final = "ENCRYPTED PRIVATE KEY"
_PLAINTEXT_LABELS: Final = frozenset(
    {"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "OPENSSH PRIVATE KEY"}
)
_PEM_BLOCK: Final = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)\r?\n?-----END \1-----", re.DOTALL
)


class FileSigner:
    """A :class:`~keys.signer.Signer` whose private key was decrypted from a key file."""

    __slots__ = ("_alg", "_kid", "_path", "_private_key")

    def __init__(self, private_key: PrivateKey, *, path: Path) -> None:
        self._private_key = private_key
        self._alg: Algorithm = alg_for_public_key(private_key.public_key())
        self._kid = thumbprint(public_jwk(private_key.public_key()))
        self._path = path

    @classmethod
    def generate(cls, path: Path, alg: str, passphrase: bytes) -> FileSigner:
        """Generate a key and write it encrypted to ``path``, which must not exist yet."""
        key = generate_private_key(require_algorithm(alg))
        signer = cls(key, path=Path(path))
        signer._write(passphrase)
        return signer

    @classmethod
    def generate_in(cls, directory: Path, alg: str, passphrase: bytes) -> FileSigner:
        """Generate a key and write it encrypted to ``<directory>/<kid>.pem``."""
        key = generate_private_key(require_algorithm(alg))
        kid = thumbprint(public_jwk(key.public_key()))
        signer = cls(key, path=Path(directory) / f"{kid}.pem")
        signer._write(passphrase)
        return signer

    @classmethod
    def load(cls, path: Path, passphrase: bytes) -> FileSigner:
        """Decrypt the key file at ``path``.

        Raises :class:`~keys.errors.InsecureKeyFile` if the file has any group/other
        permission bits or sits in a directory others can write to,
        :class:`~keys.errors.WrongPassphrase` if the passphrase does not decrypt it, and
        :class:`~keys.errors.KeyFileError` if it is missing, damaged, not a key or
        not encrypted.
        """
        path = Path(path)
        _require_bytes(passphrase)
        data = read_private_file(path, max_size=_MAX_KEY_FILE_SIZE)
        _require_encrypted_pkcs8(path, data)
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except ValueError:
            # The outer structure parsed, so failure to decrypt is the passphrase (or a
            # change inside the ciphertext, which no one can tell apart from it).
            raise WrongPassphrase(
                f"the passphrase does not decrypt {path} "
                "(wrong passphrase, or the file was altered)"
            ) from None
        except (TypeError, CryptographyUnsupported) as exc:
            raise KeyFileError(f"{path} is not a usable private key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise UnsupportedAlgorithm(f"{path} holds a {type(key).__name__}, not EC or Ed25519")
        return cls(key, path=path)

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def alg(self) -> Algorithm:
        return self._alg

    @property
    def path(self) -> Path:
        return self._path

    def public_key(self) -> PublicKey:
        return self._private_key.public_key()

    def sign(self, data: bytes) -> bytes:
        key = self._private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return es256_raw_from_der(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return key.sign(data)

    def __repr__(self) -> str:
        return f"FileSigner(kid={self._kid!r}, alg={self._alg!r}, path={str(self._path)!r})"

    def _write(self, passphrase: bytes) -> None:
        _require_bytes(passphrase)
        if len(passphrase) < MIN_PASSPHRASE_LENGTH:
            raise WeakPassphrase(
                f"the passphrase must be at least {MIN_PASSPHRASE_LENGTH} bytes long"
            )
        pem = self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        ensure_private_directory(self._path.parent)
        write_new_file(self._path, pem, mode=0o600)


def _require_bytes(passphrase: object) -> None:
    if not isinstance(passphrase, bytes):
        raise TypeError("passphrase must be bytes")


def _require_encrypted_pkcs8(path: Path, data: bytes) -> None:
    """Accept exactly one well-formed ``ENCRYPTED PRIVATE KEY`` PEM block."""
    blocks = _PEM_BLOCK.findall(data)
    if len(blocks) != 1:
        raise KeyFileError(f"{path} is not a PEM private key file")
    label = blocks[0][0].decode("ascii")
    if label in _PLAINTEXT_LABELS:
        raise KeyFileError(
            f"{path} holds an unencrypted private key; refusing it "
            "(keys must be stored as encrypted PKCS#8)"
        )
    if label != _ENCRYPTED_LABEL:
        raise KeyFileError(f"{path} holds a {label!r} PEM block, not an encrypted private key")
    try:
        body = base64.b64decode(b"".join(blocks[0][1].split()), validate=True)
        # EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData }
        children = der.split_sequence(body)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{path} is damaged (not valid encrypted PKCS#8)") from None
    tags = [tag for tag, _ in children]
    if tags != [der.SEQUENCE, der.OCTET_STRING]:
        raise KeyFileError(f"{path} is damaged (not valid encrypted PKCS#8)")
