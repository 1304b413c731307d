"""One issuer's keys, kept in a directory: a manifest, the CA certificate, key files.

Layout::

    <directory>/keyring.json        manifest: every key with its public JWK (see keys.manifest)
    <directory>/ca.pem              the issuer CA certificate
    <directory>/private/<kid>.pem   encrypted key files (file backend only), 0600

Public keys live in the manifest, so verification and the JWKS need neither the
passphrase nor the HSM; only :meth:`KeyRing.signer` does. Changes take an exclusive
lock on the directory, re-read the manifest, and replace it atomically, so two
processes rotating at once cannot lose each other's update.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keys.algorithms import Algorithm, PublicKey, require_algorithm
from keys.backends import (
    BackendName,
    FileBackend,
    KeyBackend,
    Pkcs11Backend,
    Purpose,
)
from keys.ca import IssuerCA
from keys.errors import KeyFileError, KeyRingError, UnknownKey
from keys.filesystem import (
    ensure_private_directory,
    replace_file,
    require_unshared_directory,
    write_new_file,
)
from keys.manifest import PURPOSES, KeyEntry, dump_manifest, parse_manifest
from keys.signer import Signer
from keys.timestamps import require_aware

__all__ = [
    "CA_CERTIFICATE_NAME",
    "MANIFEST_NAME",
    "FileBackend",
    "KeyBackend",
    "KeyEntry",
    "KeyRing",
    "Pkcs11Backend",
]

MANIFEST_NAME: Final = "keyring.json"
CA_CERTIFICATE_NAME: Final = "ca.pem"
# Takes the manifest as read under the lock; returns the new manifest and the entry to report.
_Change = Callable[[tuple[KeyEntry, ...]], tuple[tuple[KeyEntry, ...], KeyEntry]]

_LOCK_NAME: Final = ".keyring.lock"
_MAX_COMMON_NAME_BYTES: Final = 64
_MAX_MANIFEST_SIZE: Final = 1024 * 1024
_MAX_CERTIFICATE_SIZE: Final = 64 * 1024


class KeyRing:
    """The keys of one issuer: one active credential key, one active CA key, and the
    retired credential keys that stay published until their credentials expire."""

    __slots__ = ("_ca_certificate", "_directory", "_entries")

    def __init__(
        self, directory: Path, entries: tuple[KeyEntry, ...], ca_certificate: x509.Certificate
    ) -> None:
        self._directory = directory
        self._entries = entries
        self._ca_certificate = ca_certificate

    # -- opening and creating ------------------------------------------------------------

    @staticmethod
    def exists(directory: Path) -> bool:
        return (Path(directory) / MANIFEST_NAME).is_file()

    @classmethod
    def open(cls, directory: Path) -> KeyRing:
        """Open an existing ring; raise :class:`KeyRingError` if missing or inconsistent."""
        directory = Path(directory)
        if not cls.exists(directory):
            raise KeyRingError(f"no key ring in {directory}; run `idsvc init` to create one")
        require_unshared_directory(directory)
        entries = _read_manifest(directory)
        return cls(directory, entries, _read_ca_certificate(directory, entries))

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        alg: str,
        now: datetime,
        backend: KeyBackend,
        ca_name: str = "idsvc",
        ca_common_name: str | None = None,
        ca_country: str | None = None,
        ca_valid_days: int = 3650,
    ) -> KeyRing:
        """Create a ring with one credential key, one CA key and a self-signed CA certificate.

        ``ca_name`` (the issuing ministry) becomes the CA's organization and, unless
        ``ca_common_name`` is given, its common name "<ca_name> Issuer CA".
        """
        directory = Path(directory)
        algorithm = require_algorithm(alg)
        now = _stamp(now)
        if cls.exists(directory):
            raise KeyRingError(f"a key ring already exists in {directory}")
        ensure_private_directory(directory)
        with _locked(directory):
            if cls.exists(directory):
                raise KeyRingError(f"a key ring already exists in {directory}")
            credential, _ = _new_key(directory, backend, algorithm, "credential", now)
            ca_entry, ca_signer = _new_key(directory, backend, algorithm, "ca", now)
            credential, ca_entry = credential.activate(now), ca_entry.activate(now)
            certificate = IssuerCA.create(
                ca_signer,
                common_name=ca_common_name or _ca_common_name(ca_name),
                organization=ca_name,
                country=ca_country,
                now=now,
                valid_days=ca_valid_days,
            )
            pem = certificate.public_bytes(serialization.Encoding.PEM)
            write_new_file(directory / CA_CERTIFICATE_NAME, pem, mode=0o644)
            entries = (credential, ca_entry)
            # The manifest is written last: until it exists, the directory is not a ring.
            write_new_file(directory / MANIFEST_NAME, dump_manifest(entries), mode=0o600)
        return cls(directory, entries, certificate)

    # -- reading -------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    def entries(self) -> tuple[KeyEntry, ...]:
        """Every key, of both purposes, including retired and unpublished ones."""
        return self._entries

    def entry(self, kid: str) -> KeyEntry:
        for entry in self._entries:
            if entry.kid == kid:
                return entry
        raise UnknownKey(kid)

    def active(self, purpose: Purpose = "credential") -> KeyEntry:
        _require_purpose(purpose)
        for entry in self._entries:
            if entry.purpose == purpose and entry.active:
                return entry
        raise KeyRingError(f"key ring has no active {purpose} key")  # parse_manifest forbids it

    def public_keys(self) -> dict[str, PublicKey]:
        """kid → public key for every published credential key (what verifiers trust)."""
        return {entry.kid: entry.public_key() for entry in self._published()}

    def public_key(self, kid: str) -> PublicKey:
        """The published credential key ``kid``; :class:`UnknownKey` for anything else."""
        for entry in self._published():
            if entry.kid == kid:
                return entry.public_key()
        raise UnknownKey(kid)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set of published credential keys (RFC 7517 §5), active key first."""
        keys = [
            {**entry.public_jwk, "kid": entry.kid, "alg": entry.alg, "use": "sig"}
            for entry in self._published()
        ]
        return {"keys": keys}

    def ca_certificate(self) -> x509.Certificate:
        return self._ca_certificate

    # -- using private keys --------------------------------------------------------------

    def signer(self, backend: KeyBackend, purpose: Purpose = "credential") -> Signer:
        """Load the private key of the active key for ``purpose``."""
        return _load_signer(self._directory, backend, self.active(purpose))

    def issuer_ca(self, backend: KeyBackend) -> IssuerCA:
        return IssuerCA(self._ca_certificate, self.signer(backend, "ca"))

    # -- changing ------------------------------------------------------------------------

    def rotate(self, backend: KeyBackend, *, now: datetime, alg: str | None = None) -> KeyEntry:
        """Make a new credential key active now; the old one is retired but stays published.

        Offline verifiers only learn the new key at their next JWKS refresh; use
        :meth:`stage` then :meth:`activate` to publish it ahead of first use.
        """
        now = _stamp(now)

        def change(entries: tuple[KeyEntry, ...]) -> tuple[tuple[KeyEntry, ...], KeyEntry]:
            algorithm = require_algorithm(alg) if alg is not None else _active(entries).alg
            new, _ = _new_key(self._directory, backend, algorithm, "credential", now)
            return _activate((*entries, new), new.kid, now), new.activate(now)

        return self._change(change)

    def stage(self, backend: KeyBackend, *, now: datetime, alg: str | None = None) -> KeyEntry:
        """Add a credential key that is published in the JWKS but not yet used to sign."""
        now = _stamp(now)

        def change(entries: tuple[KeyEntry, ...]) -> tuple[tuple[KeyEntry, ...], KeyEntry]:
            algorithm = require_algorithm(alg) if alg is not None else _active(entries).alg
            new, _ = _new_key(self._directory, backend, algorithm, "credential", now)
            return (*entries, new), new

        return self._change(change)

    def activate(self, kid: str, *, now: datetime) -> KeyEntry:
        """Make a staged credential key the active one, retiring the current one."""
        now = _stamp(now)

        def change(entries: tuple[KeyEntry, ...]) -> tuple[tuple[KeyEntry, ...], KeyEntry]:
            entry = _find(entries, kid)
            if entry.purpose != "credential" or not entry.pending:
                raise KeyRingError(f"key {kid} is not a staged credential key")
            return _activate(entries, kid, now), entry.activate(now)

        return self._change(change)

    def unpublish(self, kid: str, *, now: datetime) -> KeyEntry:
        """Remove a retired (or never used) credential key from the JWKS.

        Only do this once every credential it signed has expired: verifiers will then
        report those credentials as signed by an unknown key.
        """
        now = _stamp(now)

        def change(entries: tuple[KeyEntry, ...]) -> tuple[tuple[KeyEntry, ...], KeyEntry]:
            entry = _find(entries, kid)
            if entry.purpose != "credential":
                raise KeyRingError(f"key {kid} is a {entry.purpose} key, not a credential key")
            if entry.active:
                raise KeyRingError(f"key {kid} is the active credential key; rotate first")
            if not entry.published:
                raise KeyRingError(f"key {kid} is already unpublished")
            updated = entry.unpublish(now)
            return _replace(entries, updated), updated

        return self._change(change)

    def _change(self, change: _Change) -> KeyEntry:
        with _locked(self._directory):
            # Re-read under the lock: another process may have changed the ring.
            entries, result = change(_read_manifest(self._directory))
            replace_file(self._directory / MANIFEST_NAME, dump_manifest(entries), mode=0o600)
        self._entries = entries
        return result

    def _published(self) -> list[KeyEntry]:
        entries = [e for e in self._entries if e.purpose == "credential" and e.published]
        # Active first, then newest first: clients that take the first key take the right one.
        return sorted(entries, key=lambda e: (not e.active, -e.created_at.timestamp()))

    def __repr__(self) -> str:
        return f"KeyRing({str(self._directory)!r}, keys={len(self._entries)})"


def _stamp(now: datetime) -> datetime:
    # The manifest keeps whole seconds; truncate here so memory and disk agree.
    return require_aware(now).replace(microsecond=0)


def _ca_common_name(ca_name: str) -> str:
    name = f"{ca_name} Issuer CA"
    # cryptography caps commonName at 64 UTF-8 bytes (Khmer and Lao take 3 per character);
    # the full ministry name stays in O=.
    if len(name.encode("utf-8")) <= _MAX_COMMON_NAME_BYTES:
        return name
    cut = ca_name.encode("utf-8")[:_MAX_COMMON_NAME_BYTES]
    return cut.decode("utf-8", errors="ignore").strip()


def _require_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")


def _new_key(
    directory: Path, backend: KeyBackend, alg: Algorithm, purpose: Purpose, now: datetime
) -> tuple[KeyEntry, Signer]:
    if not isinstance(backend, FileBackend | Pkcs11Backend):
        raise TypeError("backend must be a FileBackend or a Pkcs11Backend")
    signer, location = backend.generate(directory, alg=alg, purpose=purpose, now=now)
    entry = KeyEntry.new(signer.public_key(), purpose=purpose, location=location, now=now)
    return entry, signer


def _load_signer(directory: Path, backend: KeyBackend, entry: KeyEntry) -> Signer:
    if not isinstance(backend, FileBackend | Pkcs11Backend):
        raise TypeError("backend must be a FileBackend or a Pkcs11Backend")
    wanted: BackendName = entry.backend
    if backend.name != wanted:
        raise KeyRingError(
            f"key {entry.kid} is kept in a {wanted} backend, but a {backend.name} backend was given"
        )
    return backend.load(directory, entry.kid, entry.location)


def _active(entries: tuple[KeyEntry, ...]) -> KeyEntry:
    return next(e for e in entries if e.purpose == "credential" and e.active)


def _find(entries: tuple[KeyEntry, ...], kid: str) -> KeyEntry:
    for entry in entries:
        if entry.kid == kid:
            return entry
    raise UnknownKey(kid)


def _replace(entries: tuple[KeyEntry, ...], updated: KeyEntry) -> tuple[KeyEntry, ...]:
    return tuple(updated if e.kid == updated.kid else e for e in entries)


def _activate(entries: tuple[KeyEntry, ...], kid: str, now: datetime) -> tuple[KeyEntry, ...]:
    current = _active(entries)
    if current.activated_at is not None and now < current.activated_at:
        raise ValueError("now is earlier than the activation of the current key")
    entries = _replace(entries, current.retire(now))
    return _replace(entries, _find(entries, kid).activate(now))


def _read_manifest(directory: Path) -> tuple[KeyEntry, ...]:
    path = directory / MANIFEST_NAME
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_MANIFEST_SIZE + 1)
    except FileNotFoundError:
        raise KeyRingError(f"no key ring in {directory}; run `idsvc init` to create one") from None
    except OSError as exc:
        raise KeyRingError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > _MAX_MANIFEST_SIZE:
        raise KeyRingError(f"{path} is too large")
    return parse_manifest(data)


def _read_ca_certificate(directory: Path, entries: tuple[KeyEntry, ...]) -> x509.Certificate:
    path = directory / CA_CERTIFICATE_NAME
    try:
        with path.open("rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read(_MAX_CERTIFICATE_SIZE))
    except OSError as exc:
        raise KeyRingError(f"cannot read CA certificate {path}: {exc.strerror}") from None
    except ValueError:
        raise KeyRingError(f"{path} is not a PEM certificate") from None
    ca_entry = next(e for e in entries if e.purpose == "ca" and e.active)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if certificate.public_key().public_bytes(der, spki) != ca_entry.public_key().public_bytes(
        der, spki
    ):
        raise KeyRingError(f"{path} does not certify the active CA key {ca_entry.kid}")
    return certificate


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    try:
        fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot lock key ring {directory}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock
