"""Exceptions raised by the ``keys`` package.

Every error the package raises on purpose derives from :class:`KeysError`::

    KeysError
    ├── KeyFileError          key file missing, unreadable, tampered, not a key, unencrypted
    │   └── KeyFileExists     refusing to overwrite an existing key file
    ├── WrongPassphrase       the passphrase does not decrypt the key file
    ├── WeakPassphrase        refusing to encrypt a key under a too-short passphrase
    ├── InsecureKeyFile       key file readable by group/others, or its directory writable by them
    ├── HsmError              PKCS#11 module/token/login/key problems
    ├── UnknownKey            kid is not in the key ring
    ├── KeyRingError          manifest missing, malformed or inconsistent; no active key
    ├── UnsupportedAlgorithm  algorithm, key type or curve outside the allow-list
    ├── InvalidJwk            a JWK that is malformed or carries private members
    ├── BadSignature          a signature does not verify (or does not fit the key/alg)
    └── CertificateError      a certificate does not verify against the issuer CA

Messages name files, labels and kids but never passphrases, PINs or key material.
Programming errors (a naive ``datetime``, a wrong argument type) raise the usual
``ValueError``/``TypeError`` instead.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "BadSignature",
    "CertificateError",
    "CertificateProblem",
    "HsmError",
    "InsecureKeyFile",
    "InvalidJwk",
    "KeyFileError",
    "KeyFileExists",
    "KeyRingError",
    "KeysError",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "WeakPassphrase",
    "WrongPassphrase",
]


class KeysError(Exception):
    """Base class of every error raised on purpose by the ``keys`` package."""


class KeyFileError(KeysError):
    """A key file is missing, unreadable, tampered with, not a key, or not encrypted."""


class KeyFileExists(KeyFileError):
    """A key file already exists where a new one was to be written."""


class WrongPassphrase(KeysError):
    """The passphrase does not decrypt the key file."""


class WeakPassphrase(KeysError):
    """The passphrase is too short to protect an issuer key."""


class InsecureKeyFile(KeysError):
    """A key file or its directory has permissions that expose the key."""


class HsmError(KeysError):
    """The PKCS#11 module, token, login or key could not be used."""


class UnknownKey(KeysError):
    """A ``kid`` that the key ring does not hold (or no longer publishes)."""

    def __init__(self, kid: str) -> None:
        super().__init__(f"unknown key id {kid!r}")
        self.kid = kid


class KeyRingError(KeysError):
    """The key ring directory or its manifest is missing, malformed or inconsistent."""


class UnsupportedAlgorithm(KeysError):
    """An algorithm, key type or curve outside the package's allow-list."""


class InvalidJwk(KeysError):
    """A JWK that is malformed, inconsistent, or carries private key members."""


class BadSignature(KeysError):
    """A signature that does not verify, or that does not fit the key and algorithm."""


CertificateProblem = Literal[
    "malformed",
    "wrong_issuer",
    "bad_signature",
    "not_yet_valid",
    "expired",
    "not_end_entity",
    "ca_invalid",
]


class CertificateError(KeysError):
    """A card certificate that does not verify against the issuer CA.

    ``problem`` is a stable machine code so callers can map it to their own reasons.
    """

    def __init__(self, problem: CertificateProblem, message: str) -> None:
        super().__init__(message)
        self.problem: CertificateProblem = problem
