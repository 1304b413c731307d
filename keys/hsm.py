"""Issuer keys held in a PKCS#11 token (an HSM, or SoftHSM for tests and training).

The private key is generated on the token as a sensitive, non-extractable token object
and never leaves it. This is the only module that imports the PKCS#11 binding.

Every operation opens a session, logs in, works and logs out while holding one lock per
PKCS#11 module. PKCS#11 login state is shared by all sessions of a process, so
long-lived sessions belonging to different signers would log each other out; a login
costs about 2 ms on SoftHSM, which issuance can afford. The lock also covers libraries
initialised without OS locking, and makes re-initialising the module (needed to see a
token created after it was loaded) safe.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11

from keys import der
from keys.algorithms import Algorithm, PublicKey, require_algorithm
from keys.errors import BadSignature, HsmError
from keys.jwk import public_jwk, thumbprint
from keys.signer import verify_signature

__all__ = ["KeyProtection", "Pkcs11Signer"]

# DER ECParameters / CKA_EC_PARAMS values (PKCS#11 3.0 §2.3.3, RFC 8410).
_P256_PARAMS: Final = bytes.fromhex("06082a8648ce3d030107")
_ED25519_OID_PARAMS: Final = bytes.fromhex("06032b6570")
_ED25519_NAME_PARAMS: Final = der.encode(0x13, b"edwards25519")  # PrintableString form

_P256_POINT_SIZE: Final = 65  # 0x04 || x || y
_ED25519_POINT_SIZE: Final = 32
_SIGNATURE_SIZE: Final = 64

_PIN_ERRORS: Final = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange)


@dataclass(frozen=True)
class KeyProtection:
    """How the token protects a private key, as the token itself reports it."""

    sensitive: bool
    extractable: bool
    always_sensitive: bool
    never_extractable: bool
    token_object: bool


class _Module:
    """One loaded PKCS#11 library and the lock every call into it goes through."""

    _loaded: ClassVar[dict[str, _Module]] = {}
    _loading: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: str, library: Any) -> None:
        self.path = path
        self.library = library
        self.lock = threading.Lock()
        self.forked = False

    @classmethod
    def get(cls, path: str) -> _Module:
        if not isinstance(path, str) or not Path(path).is_absolute():
            raise HsmError(f"PKCS#11 module must be an absolute path, got {path!r}")
        with cls._loading:
            module = cls._loaded.get(path)
            if module is None:
                if not Path(path).is_file():
                    raise HsmError(f"PKCS#11 module {path} does not exist")
                try:
                    library = pkcs11.lib(path)
                except (RuntimeError, OSError) as exc:
                    raise HsmError(f"cannot load PKCS#11 module {path}: {exc}") from None
                module = cls._loaded[path] = _Module(path, library)
            elif module.forked:
                # PKCS#11 requires a forked child to call C_Initialize again itself
                # (pre-forking API servers load the module before forking workers).
                with suppress(p11.PKCS11Error):
                    module.library.finalize()
                try:
                    module.library.initialize()
                except p11.PKCS11Error as exc:
                    raise HsmError(f"cannot re-initialise {path}: {_name(exc)}") from exc
                module.forked = False
            return module

    @classmethod
    def after_fork_in_child(cls) -> None:
        # Locks held by other threads at fork time would never be released in the child.
        cls._loading = threading.Lock()
        for module in cls._loaded.values():
            module.lock = threading.Lock()
            module.forked = True

    def token(self, label: str) -> Any:
        """Find a token by label (slot ids change when tokens are initialised)."""
        for attempt in range(2):
            try:
                tokens = [t for t in self.library.get_tokens() if t.label == label]
            except p11.PKCS11Error as exc:
                raise HsmError(f"cannot list tokens of {self.path}: {_name(exc)}") from exc
            if len(tokens) > 1:
                raise HsmError(f"several tokens are labelled {label!r} in {self.path}")
            if tokens:
                return tokens[0]
            if attempt == 0:
                # Modules such as SoftHSM only discover new tokens at C_Initialize.
                try:
                    self.library.reinitialize()
                except p11.PKCS11Error as exc:
                    raise HsmError(f"cannot re-initialise {self.path}: {_name(exc)}") from exc
        raise HsmError(f"no token labelled {label!r} in {self.path}")


os.register_at_fork(after_in_child=_Module.after_fork_in_child)


@contextmanager
def _session(module: str, token_label: str, pin: str, *, rw: bool = False) -> Iterator[Any]:
    """A logged-in session, held under the module lock and closed (logged out) on exit."""
    if not isinstance(pin, str) or not pin:
        raise HsmError("a user PIN is required to use the token")
    loaded = _Module.get(module)
    with loaded.lock:
        token = loaded.token(token_label)
        try:
            session = token.open(rw=rw, user_pin=pin)
        except _PIN_ERRORS:
            raise HsmError(f"login to token {token_label!r} failed: PIN incorrect") from None
        except p11.PinLocked:
            raise HsmError(f"login to token {token_label!r} failed: PIN locked") from None
        except p11.PKCS11Error as exc:
            raise HsmError(f"login to token {token_label!r} failed: {_name(exc)}") from exc
        try:
            yield session
        except p11.PKCS11Error as exc:
            raise HsmError(f"operation on token {token_label!r} failed: {_name(exc)}") from exc
        finally:
            with suppress(p11.PKCS11Error):
                session.close()


class Pkcs11Signer:
    """A :class:`~keys.signer.Signer` whose private key stays inside a PKCS#11 token."""

    __slots__ = ("_alg", "_key_label", "_kid", "_module", "_pin", "_public_key", "_token_label")

    def __init__(
        self,
        *,
        module: str,
        token_label: str,
        pin: str,
        key_label: str,
        public_key: PublicKey,
        alg: Algorithm,
    ) -> None:
        self._module = module
        self._token_label = token_label
        self._pin = pin
        self._key_label = key_label
        self._public_key = public_key
        self._alg = alg
        self._kid = thumbprint(public_jwk(public_key))

    @classmethod
    def generate(
        cls, module: str, token_label: str, pin: str, key_label: str, alg: str
    ) -> Pkcs11Signer:
        """Generate a key pair on the token; refuse if ``key_label`` is already used."""
        algorithm = require_algorithm(alg)
        _require_label(key_label)
        with _session(module, token_label, pin, rw=True) as session:
            if next(iter(session.get_objects({Attribute.LABEL: key_label})), None) is not None:
                raise HsmError(f"token {token_label!r} already holds an object {key_label!r}")
            if algorithm == "ES256":
                key_type, params = KeyType.EC, _P256_PARAMS
            else:
                key_type, params = KeyType.EC_EDWARDS, _ED25519_OID_PARAMS
            public, private = session.generate_keypair(
                key_type,
                label=key_label,
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={Attribute.EC_PARAMS: params},
                private_template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.DERIVE: False,
                },
            )
            # Trust but verify: a token that ignored the template must not hold our key.
            if not _protection(private).protected:
                with suppress(p11.PKCS11Error):
                    private.destroy()
                    public.destroy()
                raise HsmError(f"token {token_label!r} did not create a non-extractable key")
            public_key, key_alg = _public_key(public, key_label)
        return cls(
            module=module,
            token_label=token_label,
            pin=pin,
            key_label=key_label,
            public_key=public_key,
            alg=key_alg,
        )

    @classmethod
    def open(cls, module: str, token_label: str, pin: str, key_label: str) -> Pkcs11Signer:
        """Use an existing key pair; its public key (and so its kid) is read from the token."""
        _require_label(key_label)
        with _session(module, token_label, pin) as session:
            private = _get_key(session, ObjectClass.PRIVATE_KEY, token_label, key_label)
            if not _protection(private).protected:
                raise HsmError(
                    f"key {key_label!r} on token {token_label!r} is extractable or not "
                    "sensitive; refusing to use it as an issuer key"
                )
            public = _get_key(session, ObjectClass.PUBLIC_KEY, token_label, key_label)
            public_key, alg = _public_key(public, key_label)
        return cls(
            module=module,
            token_label=token_label,
            pin=pin,
            key_label=key_label,
            public_key=public_key,
            alg=alg,
        )

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def alg(self) -> Algorithm:
        return self._alg

    @property
    def key_label(self) -> str:
        return self._key_label

    @property
    def token_label(self) -> str:
        return self._token_label

    def public_key(self) -> PublicKey:
        return self._public_key

    def sign(self, data: bytes) -> bytes:
        with _session(self._module, self._token_label, self._pin) as session:
            private = _get_key(session, ObjectClass.PRIVATE_KEY, self._token_label, self._key_label)
            if self._alg == "ES256":
                # SoftHSM (and many HSMs) lack CKM_ECDSA_SHA256: hash here, sign the digest.
                digest = hashlib.sha256(data).digest()
                signature = bytes(private.sign(digest, mechanism=Mechanism.ECDSA))
            else:
                signature = bytes(private.sign(data, mechanism=Mechanism.EDDSA))
        if len(signature) != _SIGNATURE_SIZE:
            raise HsmError(f"token returned a {len(signature)}-byte {self._alg} signature")
        try:
            # Catches a faulty token and a key swapped under our label (kid mismatch)
            # before a bad signature is handed out.
            verify_signature(self._public_key, self._alg, data, signature)
        except BadSignature:
            raise HsmError(
                f"signature from key {self._key_label!r} does not verify under kid {self._kid}"
            ) from None
        return signature

    def key_protection(self) -> KeyProtection:
        """The token's own report of how it protects the private key."""
        with _session(self._module, self._token_label, self._pin) as session:
            private = _get_key(session, ObjectClass.PRIVATE_KEY, self._token_label, self._key_label)
            return _protection(private).report

    def __repr__(self) -> str:
        return (
            f"Pkcs11Signer(kid={self._kid!r}, alg={self._alg!r}, "
            f"token_label={self._token_label!r}, key_label={self._key_label!r})"
        )


@dataclass(frozen=True)
class _Protection:
    report: KeyProtection

    @property
    def protected(self) -> bool:
        return self.report.sensitive and not self.report.extractable and self.report.token_object


def _protection(private: Any) -> _Protection:
    attrs = private.get_attributes(
        [
            Attribute.SENSITIVE,
            Attribute.EXTRACTABLE,
            Attribute.ALWAYS_SENSITIVE,
            Attribute.NEVER_EXTRACTABLE,
            Attribute.TOKEN,
        ]
    )
    return _Protection(
        KeyProtection(
            sensitive=bool(attrs[Attribute.SENSITIVE]),
            extractable=bool(attrs[Attribute.EXTRACTABLE]),
            always_sensitive=bool(attrs[Attribute.ALWAYS_SENSITIVE]),
            never_extractable=bool(attrs[Attribute.NEVER_EXTRACTABLE]),
            token_object=bool(attrs[Attribute.TOKEN]),
        )
    )


def _get_key(session: Any, object_class: ObjectClass, token_label: str, key_label: str) -> Any:
    try:
        return session.get_key(object_class, label=key_label)
    except p11.NoSuchKey:
        kind = "private" if object_class == ObjectClass.PRIVATE_KEY else "public"
        raise HsmError(f"no {kind} key {key_label!r} on token {token_label!r}") from None
    except p11.MultipleObjectsReturned:
        message = f"several keys are labelled {key_label!r} on token {token_label!r}"
        raise HsmError(message) from None


def _public_key(public: Any, key_label: str) -> tuple[PublicKey, Algorithm]:
    """Rebuild the cryptography public key from CKA_EC_PARAMS and CKA_EC_POINT."""
    params = bytes(public[Attribute.EC_PARAMS])
    point = bytes(public[Attribute.EC_POINT])
    try:
        if params == _P256_PARAMS:
            raw = _unwrap_point(point, _P256_POINT_SIZE)
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw), "ES256"
        if params in (_ED25519_OID_PARAMS, _ED25519_NAME_PARAMS):
            raw = _unwrap_point(point, _ED25519_POINT_SIZE)
            return ed25519.Ed25519PublicKey.from_public_bytes(raw), "EdDSA"
    except ValueError:
        raise HsmError(f"key {key_label!r} has a malformed public point") from None
    raise HsmError(f"key {key_label!r} is neither P-256 nor Ed25519")


def _unwrap_point(point: bytes, size: int) -> bytes:
    # PKCS#11 says CKA_EC_POINT is a DER OCTET STRING, but some tokens return it raw.
    if len(point) == size:
        return point
    wrapped = der.encode(der.OCTET_STRING, point[2:]) if len(point) > 2 else b""
    if len(point) == size + 2 and wrapped == point:
        return point[2:]
    raise ValueError("unexpected EC point encoding")


def _require_label(key_label: object) -> None:
    if not isinstance(key_label, str) or not key_label:
        raise HsmError("a key label is required")


def _name(exc: BaseException) -> str:
    return type(exc).__name__
