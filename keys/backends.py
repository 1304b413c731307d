"""Where a key ring keeps private keys: encrypted files, or a PKCS#11 token.

A backend knows how to make a new key for the ring and how to load the one an entry
names. It never writes the manifest; :mod:`keys.keyring` does that.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Final, Literal

from keys.algorithms import Algorithm
from keys.errors import HsmError, KeyFileError, KeyRingError
from keys.file_signer import FileSigner
from keys.signer import Signer
from keys.timestamps import require_aware

__all__ = [
    "PRIVATE_DIRECTORY",
    "BackendName",
    "FileBackend",
    "KeyBackend",
    "KeyLocation",
    "Pkcs11Backend",
    "Purpose",
]

Purpose = Literal["credential", "ca"]
BackendName = Literal["file", "pkcs11"]

PRIVATE_DIRECTORY: Final = "private"


@dataclass(frozen=True)
class KeyLocation:
    """Where an entry's private key lives: ``path`` (relative, file) or ``key_label``."""

    backend: BackendName
    path: str | None = None
    key_label: str | None = None


@dataclass(frozen=True)
class FileBackend:
    """Keys in ``<ring>/private/<kid>.pem``, encrypted under one passphrase."""

    passphrase: bytes = field(repr=False)
    name: Literal["file"] = field(default="file", init=False)

    def generate(
        self, directory: Path, *, alg: Algorithm, purpose: Purpose, now: datetime
    ) -> tuple[Signer, KeyLocation]:
        signer = FileSigner.generate_in(directory / PRIVATE_DIRECTORY, alg, self.passphrase)
        relative = PurePosixPath(PRIVATE_DIRECTORY, signer.path.name)
        return signer, KeyLocation("file", path=str(relative))

    def load(self, directory: Path, kid: str, location: KeyLocation) -> Signer:
        if location.backend != "file" or location.path is None:
            raise KeyRingError(f"key {kid} is not kept in a key file")
        path = directory / location.path
        signer = FileSigner.load(path, self.passphrase)
        if signer.kid != kid:
            raise KeyFileError(f"key file {path} does not match kid {kid}")
        return signer


@dataclass(frozen=True)
class Pkcs11Backend:
    """Keys generated inside one PKCS#11 token, found again by their label."""

    module: str
    token_label: str
    pin: str = field(repr=False)
    label_prefix: str = "idsvc"
    name: Literal["pkcs11"] = field(default="pkcs11", init=False)

    def generate(
        self, directory: Path, *, alg: Algorithm, purpose: Purpose, now: datetime
    ) -> tuple[Signer, KeyLocation]:
        # The kid is only known after generation, so the label is made unique instead;
        # the timestamp helps operators reading the token with other tools.
        stamp = require_aware(now).strftime("%Y%m%dT%H%M%SZ")
        label = f"{self.label_prefix}-{purpose}-{stamp}-{secrets.token_hex(4)}"
        from keys.hsm import Pkcs11Signer  # python-pkcs11 (~45 ms) only where an HSM is used

        signer = Pkcs11Signer.generate(self.module, self.token_label, self.pin, label, alg)
        return signer, KeyLocation("pkcs11", key_label=label)

    def load(self, directory: Path, kid: str, location: KeyLocation) -> Signer:
        if location.backend != "pkcs11" or location.key_label is None:
            raise KeyRingError(f"key {kid} is not kept in a PKCS#11 token")
        from keys.hsm import Pkcs11Signer

        signer = Pkcs11Signer.open(self.module, self.token_label, self.pin, location.key_label)
        if signer.kid != kid:
            raise HsmError(
                f"key {location.key_label!r} on token {self.token_label!r} does not match kid {kid}"
            )
        return signer


KeyBackend = FileBackend | Pkcs11Backend
