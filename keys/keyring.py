"""One issuer's keys, kept in a directory: a manifest, certificates, key files.

Layout::

    <directory>/keyring.json        manifest: every key with its public JWK (see keys.manifest)
    <directory>/ca.pem              the issuer CA certificate
    <directory>/certs/<kid>.pem     each credential key's certificate, issued by that CA
    <directory>/private/<kid>.pem   encrypted key files (file backend only), 0600

A credential key's certificate lets a wallet check a credential's ``x5c`` chain up to the
issuer CA (the phone credential carries it); verifiers of the card's JWT find keys by ``kid``
in the JWKS and need none. The ring issues it with each new key; a key made before keys had
certificates gets its own on first use (:meth:`KeyRing.certificate_chain`). Like ``ca.pem``,
the certificates are public and not in backups: a lost one is simply issued again.

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
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

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
    "CERTIFICATES_DIRECTORY",
    "MANIFEST_NAME",
    "FileBackend",
    "KeyBackend",
    "KeyEntry",
    "KeyRing",
    "Pkcs11Backend",
]

MANIFEST_NAME: Final = "keyring.json"
CA_CERTIFICATE_NAME: Final = "ca.pem"
CERTIFICATES_DIRECTORY: Final = "certs"
# Takes the manifest as read under the lock; returns the new manifest and the entry to report.
_Change = Callable[[tuple[KeyEntry, ...]], tuple[tuple[KeyEntry, ...], KeyEntry]]

_LOCK_NAME: Final = ".keyring.lock"
_MAX_COMMON_NAME_BYTES: Final = 64
_MAX_MANIFEST_SIZE: Final = 1024 * 1024
_MAX_CERTIFICATE_SIZE: Final = 64 * 1024


class KeyRing:
    """The keys of one issuer: one active credential key, one active CA key, and the
    retired credential keys that stay published until their credentials expire."""

    __slots__ = ("_ca_certificate", "_certificates", "_directory", "_entries")

    def __init__(
        self, directory: Path, entries: tuple[KeyEntry, ...], ca_certificate: x509.Certificate
    ) -> None:
        self._directory = directory
        self._entries = entries
        self._ca_certificate = ca_certificate
        # kid -> its certificate, once read and checked (certificates never change).
        self._certificates: dict[str, x509.Certificate] = {}

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
        issuer_uri: str | None = None,
    ) -> KeyRing:
        """Create a ring with one credential key, one CA key and a self-signed CA certificate.

        ``ca_name`` (the issuing ministry) becomes the CA's organization and, unless
        ``ca_common_name`` is given, its common name "<ca_name> Issuer CA". ``issuer_uri``
        (the issuer's ``iss``) is named in the credential key's certificate.
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
            ca = IssuerCA(certificate, ca_signer)
            certified = _certify(ca, credential, now, issuer_uri)
            _write_certificate(directory, credential.kid, certified)
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

    def certificate_chain(
        self, kid: str, backend: KeyBackend, *, now: datetime, issuer_uri: str
    ) -> tuple[x509.Certificate, x509.Certificate]:
        """(certificate of credential key ``kid``, issuer CA certificate): the ``x5c`` chain,
        leaf first, of what that key signs.

        The certificate names ``issuer_uri`` (the issuer's ``iss``) in its SAN, as SD-JWT VC
        requires of an ``x5c`` leaf. A key made before keys had certificates, or certified
        without that name, gets a certificate now (``backend`` then loads the CA key), once:
        under the ring's lock, re-checking the file, so every worker and every machine sharing
        the ring puts the same certificate in its credentials.
        """
        entry = self.entry(kid)
        if entry.purpose != "credential":
            raise KeyRingError(f"key {kid} is a {entry.purpose} key, not a credential key")
        certificate = self._certificates.get(kid)
        if certificate is None or not _names(certificate, issuer_uri):
            certificate = _read_certificate(self._directory, entry, self._ca_certificate)
            if certificate is None or not _names(certificate, issuer_uri):
                certificate = self._certify_missing(entry, backend, _stamp(now), issuer_uri)
            self._certificates[kid] = certificate
        return certificate, self._ca_certificate

    # -- using private keys --------------------------------------------------------------

    def signer(self, backend: KeyBackend, purpose: Purpose = "credential") -> Signer:
        """Load the private key of the active key for ``purpose``."""
        return _load_signer(self._directory, backend, self.active(purpose))

    def issuer_ca(self, backend: KeyBackend) -> IssuerCA:
        return IssuerCA(self._ca_certificate, self.signer(backend, "ca"))

    def _certify_missing(
        self, entry: KeyEntry, backend: KeyBackend, now: datetime, issuer_uri: str
    ) -> x509.Certificate:
        with _locked(self._directory):
            # Another worker may have issued it while this one waited for the lock.
            certificate = _read_certificate(self._directory, entry, self._ca_certificate)
            if certificate is None or not _names(certificate, issuer_uri):
                certificate = _certify(self.issuer_ca(backend), entry, now, issuer_uri)
                _write_certificate(self._directory, entry.kid, certificate, replace=True)
        return certificate

    # -- changing ------------------------------------------------------------------------

    def rotate(
        self,
        backend: KeyBackend,
        *,
        now: datetime,
        alg: str | None = None,
        issuer_uri: str | None = None,
    ) -> KeyEntry:
        """Make a new credential key active now; the old one is retired but stays published.

        Offline verifiers only learn the new key at their next JWKS refresh; use
        :meth:`stage` then :meth:`activate` to publish it ahead of first use.
        """
        now = _stamp(now)

        def change(entries: tuple[KeyEntry, ...]) -> tuple[tuple[KeyEntry, ...], KeyEntry]:
            algorithm = require_algorithm(alg) if alg is not None else _active(entries).alg
            _require_after_activation(entries, now)  # before making a key that would be orphaned
            new = self._new_certified_key(entries, backend, algorithm, now, issuer_uri)
            return _activate((*entries, new), new.kid, now), new.activate(now)

        return self._change(change)

    def stage(
        self,
        backend: KeyBackend,
        *,
        now: datetime,
        alg: str | None = None,
        issuer_uri: str | None = None,
    ) -> KeyEntry:
        """Add a credential key that is published in the JWKS but not yet used to sign."""
        now = _stamp(now)

        def change(entries: tuple[KeyEntry, ...]) -> tuple[tuple[KeyEntry, ...], KeyEntry]:
            algorithm = require_algorithm(alg) if alg is not None else _active(entries).alg
            new = self._new_certified_key(entries, backend, algorithm, now, issuer_uri)
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

    def _new_certified_key(
        self,
        entries: tuple[KeyEntry, ...],
        backend: KeyBackend,
        alg: Algorithm,
        now: datetime,
        issuer_uri: str | None,
    ) -> KeyEntry:
        # The CA key is loaded first: if it cannot be, no orphan key is left in the token.
        ca_entry = next(e for e in entries if e.purpose == "ca" and e.active)
        ca = IssuerCA(self._ca_certificate, _load_signer(self._directory, backend, ca_entry))
        new, _ = _new_key(self._directory, backend, alg, "credential", now)
        # Written before the manifest names the key: a listed key always has its certificate.
        _write_certificate(self._directory, new.kid, _certify(ca, new, now, issuer_uri))
        return new

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


def _require_after_activation(entries: tuple[KeyEntry, ...], now: datetime) -> None:
    current = _active(entries)
    if current.activated_at is not None and now < current.activated_at:
        raise ValueError("now is earlier than the activation of the current key")


def _activate(entries: tuple[KeyEntry, ...], kid: str, now: datetime) -> tuple[KeyEntry, ...]:
    current = _active(entries)
    _require_after_activation(entries, now)
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


def _certify(
    ca: IssuerCA, entry: KeyEntry, now: datetime, issuer_uri: str | None
) -> x509.Certificate:
    """The certificate of credential key ``entry``: digital signature only, named
    "Credential key <kid>" under the issuer (the CA's organization), with the issuer's ``iss``
    in the SAN (SD-JWT VC: a URI ``iss`` must be a uniformResourceIdentifier of the leaf; HAIP
    also asks for its host as a dNSName).

    Valid from the key's creation (it may have signed since then, so a lazily issued one covers
    credentials signed before it) to the CA's own end: a credential key signs until it is
    rotated, with no end set in advance, and what it signed must stay checkable until the
    credentials expire; the CA's end bounds both (no certificate outlives its issuer, and the
    CA's validity, ``ca_valid_days``, is chosen to cover the keys and credentials of its life).
    """
    ca_certificate = ca.certificate
    if now >= ca_certificate.not_valid_after_utc:
        raise KeyRingError(
            f"the issuer CA certificate ended on {ca_certificate.not_valid_after_utc:%Y-%m-%d}: "
            f"it cannot certify key {entry.kid}"
        )
    not_before = max(min(entry.created_at, now), ca_certificate.not_valid_before_utc)
    return ca.issue_signing_certificate(
        entry.public_key(),
        common_name=f"Credential key {entry.kid}",
        now=now,
        not_before=not_before,
        not_after=ca_certificate.not_valid_after_utc,
        uri=issuer_uri,
        dns_name=None if issuer_uri is None else _host_name(issuer_uri),
    )


def _host_name(uri: str) -> str | None:
    host = urlsplit(uri).hostname
    if not host or not any(c.isalpha() for c in host) or ":" in host:
        return None  # no host, or an IP address: not a dNSName
    return host


def _names(certificate: x509.Certificate, issuer_uri: str) -> bool:
    """Whether ``certificate`` names ``issuer_uri`` in its SAN."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return issuer_uri in san.get_values_for_type(x509.UniformResourceIdentifier)


def _certificate_path(directory: Path, kid: str) -> Path:
    # kid is a base64url thumbprint (parse_manifest checks it): safe as a file name.
    return directory / CERTIFICATES_DIRECTORY / f"{kid}.pem"


def _write_certificate(
    directory: Path, kid: str, certificate: x509.Certificate, *, replace: bool = False
) -> None:
    ensure_private_directory(directory / CERTIFICATES_DIRECTORY)
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    path = _certificate_path(directory, kid)
    if replace:
        replace_file(path, pem, mode=0o644)  # atomic: a reader sees the old or the new one
    else:
        write_new_file(path, pem, mode=0o644)


def _read_certificate(
    directory: Path, entry: KeyEntry, ca_certificate: x509.Certificate
) -> x509.Certificate | None:
    """The stored certificate of ``entry``, checked to be for its key and issued by the CA
    (the directory is not signed); None if there is none yet."""
    path = _certificate_path(directory, entry.kid)
    try:
        with path.open("rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read(_MAX_CERTIFICATE_SIZE))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyRingError(f"cannot read certificate {path}: {exc.strerror}") from None
    except ValueError:
        raise KeyRingError(f"{path} is not a PEM certificate") from None
    if _spki_der(certificate.public_key()) != _spki_der(entry.public_key()):
        raise KeyRingError(f"{path} does not certify key {entry.kid}")
    try:
        if certificate.issuer != ca_certificate.subject:
            raise ValueError("another issuer")
        certificate.verify_directly_issued_by(ca_certificate)
    except (InvalidSignature, ValueError, TypeError):
        raise KeyRingError(
            f"{path} is not issued by this ring's CA; remove it to have it issued again"
        ) from None
    return certificate


def _spki_der(public_key: object) -> bytes:
    if not isinstance(public_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return b""  # never equal to a ring key's: parse_manifest allows only these
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


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
