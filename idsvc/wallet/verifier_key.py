"""The key that signs the service's OpenID4VP requests, and its certificate (``x509_hash``).

A wallet trusts a request object by its ``x5c`` chain: the leaf certifies the signing key, and
the client identifier ``x509_hash:<base64url SHA-256 of the leaf>`` pins that leaf. The chain is
[verifier certificate, issuer CA certificate]: the same CA that certifies the ministry's cards
vouches for its verifier, so a wallet that knows the ministry's CA (a trusted list) can name
who asks.

Where the key lives: a P-256 key made on first use, kept with its chain in one file
``<keys dir>/_verifier/request-signing.pem`` (0600, in a 0700 directory, unencrypted like the
server secret). Why not under the key passphrase or in the HSM: one way for every deployment,
file keys or HSM alike, that the server secret already takes; and what it protects is small:
a stolen key lets someone pose as this verifier to a wallet until the certificate is
replaced, it cannot issue, revoke or read anything. To replace it, delete the
file and restart the service (each worker keeps the key it read): a new key and certificate
are made at the next request.

Workers and machines must agree on the leaf (the client identifier a request names is checked
against the one the wallet's answer is bound to), so the file is written once, atomically, and
whoever loses the race reads the winner's. The certificate is renewed ``RENEW_BEFORE`` its end,
under a lock; a request made just before a renewal and answered after it fails its audience
check (``HOLDER_BINDING_INVALID``): once a year, for at most a request's 5 minutes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from idsvc.formats.openid4vp import x509_hash_client_id
from keys.ca import IssuerCA
from keys.errors import KeyFileError, KeyFileExists
from keys.file_signer import FileSigner
from keys.filesystem import (
    ensure_private_directory,
    read_private_file,
    replace_file,
    write_new_file,
)

# Beside the issuers' key rings (<keys dir>/<slug>/): '_' is not allowed in a slug, so no
# issuer can ever be given this directory.
DIRECTORY: Final = "_verifier"
FILE_NAME: Final = "request-signing.pem"
LIFETIME: Final = timedelta(days=365)
RENEW_BEFORE: Final = timedelta(days=30)
COMMON_NAME: Final = "Presentation requests"
_MAX_FILE: Final = 64 * 1024


@dataclass(frozen=True)
class VerifierKey:
    """The request-signing key with its chain (DER, leaf first) and client identifier."""

    signer: FileSigner
    chain: tuple[bytes, ...]
    client_id: str
    not_after: datetime
    ca_not_after: datetime

    def usable(self, now: datetime) -> bool:
        """Whether to keep signing with it: until ``RENEW_BEFORE`` its end, or to its very end
        when the CA ends then too (a renewal could not give it longer)."""
        if self.not_after >= self.ca_not_after:
            return now < self.not_after
        return now < self.not_after - RENEW_BEFORE


def _pem(key: ec.EllipticCurvePrivateKey, chain: list[x509.Certificate]) -> bytes:
    text = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return text + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)


def _parse(path: Path, data: bytes) -> VerifierKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
        certificates = x509.load_pem_x509_certificates(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} does not hold a key and its certificates") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or len(certificates) < 2:
        raise KeyFileError(f"{path} does not hold a P-256 key and its certificate chain")
    leaf = certificates[0]
    if leaf.public_key() != key.public_key():
        raise KeyFileError(f"{path}: the first certificate is not for its key")
    chain = tuple(c.public_bytes(serialization.Encoding.DER) for c in certificates)
    return VerifierKey(
        signer=FileSigner(key, path=path),
        chain=chain,
        client_id=x509_hash_client_id(chain[0]),
        not_after=leaf.not_valid_after_utc,
        ca_not_after=certificates[1].not_valid_after_utc,
    )


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _issue(ca: IssuerCA, *, uri: str, now: datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = min(now + LIFETIME, ca.certificate.not_valid_after_utc)
    leaf = ca.issue_signing_certificate(
        key.public_key(), common_name=COMMON_NAME, uri=uri, now=now, not_after=not_after
    )
    return _pem(key, [leaf, ca.certificate])


def verifier_key(
    keys_dir: Path, *, ca: Callable[[], IssuerCA], uri: str, now: datetime
) -> VerifierKey:
    """The current request-signing key: read from its file, made on first use, renewed near
    its end. ``ca`` is called only when a certificate must be issued (it needs the CA key)."""
    directory = keys_dir / DIRECTORY
    path = directory / FILE_NAME
    ensure_private_directory(directory)
    if path.exists():
        current = _parse(path, read_private_file(path, max_size=_MAX_FILE))
        if current.usable(now):
            return current
    with _locked(directory):
        # Another worker may have made or renewed it while this one waited.
        if path.exists():
            current = _parse(path, read_private_file(path, max_size=_MAX_FILE))
            if current.usable(now):
                return current
            replace_file(path, _issue(ca(), uri=uri, now=now), mode=0o600)
        else:
            # Another machine sharing the directory may win the race: then its key is used.
            with contextlib.suppress(KeyFileExists):
                write_new_file(path, _issue(ca(), uri=uri, now=now), mode=0o600)
    return _parse(path, read_private_file(path, max_size=_MAX_FILE))
