"""The PIV card edge (NIST SP 800-73-4 part 2) as the issuance desk uses it.

``PivSession`` runs on any ``cardio.transport.Transport`` (a PC/SC reader, the virtual card, a
``ScriptedTransport`` in tests). It selects the PIV application when constructed and turns every
status word into a ``cardio.errors`` exception; callers never see an ``sw``.

Wire formats (SP 800-73-4 part 2 §3):

- SELECT ``00 A4 04 00 0B A0000003080000100001 00 00`` (6A82 → ``NotPivCard``);
- VERIFY ``00 20 00 80 08 <PIN padded with FF>``; the same header with no data asks for the PIN
  state (9000 verified, 63Cx x tries left, 6983 blocked);
- CHANGE REFERENCE DATA ``00 24 00 80|81 10 old||new``; RESET RETRY COUNTER ``00 2C 00 80 10
  PUK||new PIN``;
- GENERAL AUTHENTICATE ``00 87 <alg> <key ref> 7C{...} 00``: management-key mutual
  authentication on key reference 9B (witness ``80`` / challenge ``81`` / response ``82``, the
  "mutual authentication" exchange of SP 800-73-4 part 2 appendix A) and signing (``7C{82 00,
  81 <digest>}`` → ``7C{82 <DER ECDSA signature>}``);
- GENERATE ASYMMETRIC KEY PAIR ``00 47 00 <slot> AC{80 <alg>} 00`` → ``7F49{86 <EC point>}``;
- GET DATA ``00 CB 3F FF 5C{<object id>} 00`` → ``53{...}`` (``7E{...}`` for discovery);
  PUT DATA ``00 DB 3F FF 5C{<object id>} 53{...}``;
- ATTEST ``00 F9 <slot> 00 00`` (YubiKey 4.3+) → the DER X.509 certificate of the slot's key,
  signed by the card's attestation key (slot F9), whose certificate is object 5FFF01 and chains
  to the maker's CA: the proof that the key was generated on the card (``attest_key``).

Where a YubiKey and a generic PIV applet (JavaCard, national PIV-like cards) differ:

- GET VERSION ``00 FD 00 00 00`` is YubiKey-only; a generic applet answers 6D00 (or another
  error). The session tolerates that: ``version`` is then ``None``.
- GET METADATA ``00 F7`` (YubiKey 5.3+) is only sent when ``version`` is known: it gives the
  management key algorithm and exact PIN retry counts. Without it the caller passes the
  management key type explicitly and ``get_pin_attempts`` reads the PIN state with an empty
  VERIFY (which cannot tell the count once the PIN is verified: then ``None``).
- Extended APDUs: YubiKeys over USB take them, many contact JavaCards do not. The session uses
  short APDUs with command chaining unless told ``extended=True`` (at a desk:
  ``PcscTransport.extended_length``, decided from the ATR). Both get 61xx/GET RESPONSE.
- PIN/touch policies (tags AA/AB) are YubiKey extensions and are not sent.

The data objects (CHUID, Printed Information) are built and parsed in ``cardio.piv_objects``.
"""

from __future__ import annotations

import gzip
import hmac
import os
from collections.abc import Callable
from enum import IntEnum
from typing import Literal, NamedTuple, overload

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding

from .apdu import ApduConnection
from .errors import (
    ApduError,
    BadResponse,
    IncorrectData,
    ManagementKeyRejected,
    NotFound,
    NotPivCard,
    NotSupported,
    PinBlocked,
    WrongPin,
)
from .piv_objects import (
    NON_FEDERAL_FASC_N,
    TAG_LRC,
    Chuid,
    PrintedInformation,
    clusters,
    fasc_n,
    fit_utf8,
)
from .tlv import Tlv, TlvError, parse_dict
from .transport import Transport

PIV_AID = bytes.fromhex("A000000308000010000100")

INS_SELECT = 0xA4
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE = 0x24
INS_RESET_RETRY = 0x2C
INS_GENERATE = 0x47
INS_AUTHENTICATE = 0x87
INS_GET_DATA = 0xCB
INS_PUT_DATA = 0xDB
INS_GET_METADATA = 0xF7  # YubiKey
INS_GET_VERSION = 0xFD  # YubiKey
INS_ATTEST = 0xF9  # YubiKey

PIN_P2 = 0x80
PUK_P2 = 0x81
PIN_BLOCK_LEN = 8

TAG_DYN_AUTH = 0x7C
TAG_WITNESS = 0x80
TAG_CHALLENGE = 0x81
TAG_RESPONSE = 0x82
TAG_OBJ_ID = 0x5C
TAG_OBJ_DATA = 0x53
TAG_CERTIFICATE = 0x70
TAG_CERT_INFO = 0x71


class Slot(IntEnum):
    AUTHENTICATION = 0x9A
    CARD_MANAGEMENT = 0x9B
    SIGNATURE = 0x9C
    KEY_MANAGEMENT = 0x9D
    CARD_AUTH = 0x9E


class KeyType(IntEnum):
    ECCP256 = 0x11
    ECCP384 = 0x14
    ED25519 = 0xE0  # YubiKey 5.7+ only


class ManagementKeyType(IntEnum):
    TDES = 0x03
    AES128 = 0x08
    AES192 = 0x0A
    AES256 = 0x0C

    @property
    def key_len(self) -> int:
        return {0x03: 24, 0x08: 16, 0x0A: 24, 0x0C: 32}[self.value]

    @property
    def challenge_len(self) -> int:
        """The cipher block size: witness and challenge are one block."""
        return 8 if self == ManagementKeyType.TDES else 16


class ObjectId(IntEnum):
    CHUID = 0x5FC102
    CAPABILITY = 0x5FC107
    PRINTED_INFORMATION = 0x5FC109
    CERT_9A = 0x5FC105
    CERT_9C = 0x5FC10A
    CERT_9D = 0x5FC10B
    CERT_9E = 0x5FC101
    DISCOVERY = 0x7E
    CREDENTIAL = 0x5FFF10  # proprietary range: the signed JWT credential, UTF-8
    ATTESTATION = 0x5FFF01  # YubiKey: certificate of the attestation key (slot F9)

    @classmethod
    def for_slot(cls, slot: Slot) -> ObjectId:
        return _CERT_OBJECTS[Slot(slot)]


_CERT_OBJECTS = {
    Slot.AUTHENTICATION: ObjectId.CERT_9A,
    Slot.SIGNATURE: ObjectId.CERT_9C,
    Slot.KEY_MANAGEMENT: ObjectId.CERT_9D,
    Slot.CARD_AUTH: ObjectId.CERT_9E,
}

CREDENTIAL_OBJECT_ID = ObjectId.CREDENTIAL

_EC_CURVES: dict[KeyType, ec.EllipticCurve] = {
    KeyType.ECCP256: ec.SECP256R1(),
    KeyType.ECCP384: ec.SECP384R1(),
}
_DIGEST_LEN = {KeyType.ECCP256: 32, KeyType.ECCP384: 48}


class Version(NamedTuple):
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def _pin_block(pin: str) -> bytes:
    raw = pin.encode()
    if not 1 <= len(raw) <= PIN_BLOCK_LEN:
        raise ValueError("PIN/PUK must be 1 to 8 bytes")
    return raw.ljust(PIN_BLOCK_LEN, b"\xff")


def _object_id_bytes(object_id: int) -> bytes:
    return object_id.to_bytes(max(1, (object_id.bit_length() + 7) // 8), "big")


def _management_cipher(key_type: ManagementKeyType, key: bytes) -> Cipher[modes.ECB]:
    if len(key) != key_type.key_len:
        raise ValueError(f"{key_type.name} management key must be {key_type.key_len} bytes")
    algorithm = TripleDES(key) if key_type == ManagementKeyType.TDES else algorithms.AES(key)
    # One-block ECB is what SP 800-73-4 specifies for the witness and challenge.
    return Cipher(algorithm, modes.ECB())  # noqa: S305


def _ecb(cipher: Cipher[modes.ECB], block: bytes, *, encrypt: bool) -> bytes:
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(block) + ctx.finalize()


def _unpack(tag: int, data: bytes, what: str) -> bytes:
    try:
        tlv, _ = Tlv.parse_from(data)
    except TlvError as exc:
        raise BadResponse(f"{what}: malformed TLV ({exc})") from exc
    if tlv.tag != tag:
        raise BadResponse(f"{what}: expected tag {tag:X}, got {tlv.tag:X}")
    return tlv.value


def _dict(data: bytes, what: str) -> dict[int, bytes]:
    try:
        return parse_dict(data)
    except TlvError as exc:
        raise BadResponse(f"{what}: malformed TLV ({exc})") from exc


class PivSession:
    """One session with the PIV application of the card behind ``transport``."""

    def __init__(
        self,
        transport: Transport,
        *,
        extended: bool = False,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.connection = ApduConnection(transport, extended)
        self._random_bytes = random_bytes
        self.application_properties = self._select()
        self._version_read = False
        self._version: Version | None = None

    @property
    def version(self) -> Version | None:
        """YubiKey firmware version, or ``None`` for a generic PIV card.

        Read on first use, not at select: the challenge check must stay within four commands.
        """
        if not self._version_read:
            self._version = self._read_version()
            self._version_read = True
        return self._version

    # -- application --------------------------------------------------------------------------

    def _select(self) -> bytes:
        try:
            return self.connection.send(0x00, INS_SELECT, 0x04, 0x00, PIV_AID, le=0)
        except (NotFound, NotSupported) as exc:
            raise NotPivCard() from exc
        except ApduError as exc:
            if exc.sw in (0x6999, 0x6A86, 0x6B00):  # applet select failed, wrong P1P2
                raise NotPivCard() from exc
            raise

    def _read_version(self) -> Version | None:
        """YubiKey GET VERSION; ``None`` on a card without it (generic PIV: 6D00)."""
        try:
            raw = self.connection.send(0x00, INS_GET_VERSION, 0x00, 0x00, le=0)
        except ApduError:
            return None
        if len(raw) != 3:
            return None
        return Version(raw[0], raw[1], raw[2])

    def _metadata(self, p2: int) -> dict[int, bytes] | None:
        """YubiKey GET METADATA, only asked of cards that answered GET VERSION."""
        if self.version is None or self.version < (5, 3, 0):
            return None
        try:
            raw = self.connection.send(0x00, INS_GET_METADATA, 0x00, p2, le=0)
        except (NotSupported, NotFound):
            return None
        return _dict(raw, "metadata")

    def get_management_key_type(self) -> ManagementKeyType | None:
        """The card's management key algorithm when the card can tell (YubiKey 5.3+)."""
        data = self._metadata(Slot.CARD_MANAGEMENT)
        if data is None:
            return None
        return ManagementKeyType(data.get(0x01, b"\x03")[0])

    # -- management key -----------------------------------------------------------------------

    def authenticate(self, key_type: ManagementKeyType, key: bytes) -> None:
        """Mutual authentication with the card management key (key reference 9B).

        1. ``7C{80 00}``: the card answers ``7C{80 E(K, witness)}``;
        2. ``7C{80 witness, 81 challenge}``: the card checks the witness and answers
           ``7C{82 E(K, challenge)}``, which we check in turn.
        Raises ``ManagementKeyRejected`` if either side's proof fails.
        """
        key_type = ManagementKeyType(key_type)
        cipher = _management_cipher(key_type, key)
        size = key_type.challenge_len
        try:
            response = self.connection.send(
                0x00,
                INS_AUTHENTICATE,
                key_type,
                Slot.CARD_MANAGEMENT,
                Tlv(TAG_DYN_AUTH, Tlv(TAG_WITNESS)),
                le=0,
            )
        except NotSupported:
            raise
        except ApduError as exc:
            raise ManagementKeyRejected(
                exc.sw, f"card refused {key_type.name} management key authentication"
            ) from exc
        witness = _unpack(TAG_WITNESS, _unpack(TAG_DYN_AUTH, response, "witness"), "witness")
        if len(witness) != size:
            raise BadResponse(f"witness of {len(witness)} bytes, expected {size}")
        challenge = self._random_bytes(size)
        try:
            response = self.connection.send(
                0x00,
                INS_AUTHENTICATE,
                key_type,
                Slot.CARD_MANAGEMENT,
                Tlv(
                    TAG_DYN_AUTH,
                    Tlv(TAG_WITNESS, _ecb(cipher, witness, encrypt=False))
                    + Tlv(TAG_CHALLENGE, challenge),
                ),
                le=0,
            )
        except ApduError as exc:
            raise ManagementKeyRejected(exc.sw, "management key rejected by the card") from exc
        answer = _unpack(TAG_RESPONSE, _unpack(TAG_DYN_AUTH, response, "auth"), "auth")
        if not hmac.compare_digest(answer, _ecb(cipher, challenge, encrypt=True)):
            raise ManagementKeyRejected(
                0x9000, "card's response to our challenge is wrong: it does not hold this key"
            )

    # -- PIN / PUK ----------------------------------------------------------------------------

    def verify_pin(self, pin: str) -> None:
        """Raises ``WrongPin(retries_left)`` or ``PinBlocked``."""
        self.connection.send(0x00, INS_VERIFY, 0x00, PIN_P2, _pin_block(pin))

    def get_pin_attempts(self) -> int | None:
        """PIN tries left; ``None`` when the PIN is already verified in this session and the
        card (not a YubiKey) has no other way to tell the count."""
        try:
            self.connection.send(0x00, INS_VERIFY, 0x00, PIN_P2)
        except WrongPin as exc:
            return exc.retries_left
        except PinBlocked:
            return 0
        metadata = self._metadata(PIN_P2)
        if metadata is not None and len(metadata.get(0x06, b"")) == 2:
            return metadata[0x06][1]
        return None

    def change_pin(self, old_pin: str, new_pin: str) -> None:
        self.connection.send(
            0x00, INS_CHANGE_REFERENCE, 0x00, PIN_P2, _pin_block(old_pin) + _pin_block(new_pin)
        )

    def change_puk(self, old_puk: str, new_puk: str) -> None:
        self._puk_command(INS_CHANGE_REFERENCE, PUK_P2, old_puk, new_puk)

    def unblock_pin(self, puk: str, new_pin: str) -> None:
        self._puk_command(INS_RESET_RETRY, PIN_P2, puk, new_pin)

    def _puk_command(self, ins: int, p2: int, puk: str, new: str) -> None:
        try:
            self.connection.send(0x00, ins, 0x00, p2, _pin_block(puk) + _pin_block(new))
        except WrongPin as exc:
            raise WrongPin(exc.retries_left, exc.sw, reference="PUK") from exc
        except PinBlocked as exc:
            raise PinBlocked(exc.sw, reference="PUK") from exc

    # -- keys ---------------------------------------------------------------------------------

    @overload
    def generate_key(
        self, slot: Slot, key_type: Literal[KeyType.ECCP256, KeyType.ECCP384] = ...
    ) -> ec.EllipticCurvePublicKey: ...

    @overload
    def generate_key(
        self, slot: Slot, key_type: Literal[KeyType.ED25519]
    ) -> ed25519.Ed25519PublicKey: ...

    def generate_key(
        self, slot: Slot, key_type: KeyType = KeyType.ECCP256
    ) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
        """Generate a key pair in ``slot`` (needs the management key); return the public key."""
        key_type = KeyType(key_type)
        response = self.connection.send(
            0x00,
            INS_GENERATE,
            0x00,
            Slot(slot),
            Tlv(0xAC, Tlv(0x80, bytes([key_type]))),
            le=0,
        )
        fields = _dict(_unpack(0x7F49, response, "public key"), "public key")
        point = fields.get(0x86)
        if point is None:
            raise BadResponse("public key template has no tag 86")
        try:
            if key_type == KeyType.ED25519:
                return ed25519.Ed25519PublicKey.from_public_bytes(point)
            return ec.EllipticCurvePublicKey.from_encoded_point(_EC_CURVES[key_type], point)
        except ValueError as exc:
            raise BadResponse(f"invalid public key from card: {exc}") from exc

    def sign_challenge(
        self, slot: Slot, challenge: bytes, key_type: KeyType = KeyType.ECCP256
    ) -> bytes:
        """GENERAL AUTHENTICATE with the key in ``slot``; returns the card's signature.

        For ECC keys ``challenge`` is the digest to sign (32 bytes SHA-256 for ECCP256, 48 for
        ECCP384) and the result is a DER ECDSA signature; for Ed25519 it is the message.
        Slot 9E (card authentication) needs no PIN; the others do.
        """
        key_type = KeyType(key_type)
        expected = _DIGEST_LEN.get(key_type)
        if expected is not None and len(challenge) != expected:
            raise ValueError(f"{key_type.name} signs a {expected}-byte digest")
        response = self.connection.send(
            0x00,
            INS_AUTHENTICATE,
            key_type,
            Slot(slot),
            Tlv(TAG_DYN_AUTH, Tlv(TAG_RESPONSE) + Tlv(TAG_CHALLENGE, challenge)),
            le=0,
        )
        return _unpack(TAG_RESPONSE, _unpack(TAG_DYN_AUTH, response, "signature"), "signature")

    # -- data objects -------------------------------------------------------------------------

    def get_object(self, object_id: int) -> bytes:
        """The content of a data object (inside its ``53``). Raises ``NotFound`` if empty."""
        response = self.connection.send(
            0x00, INS_GET_DATA, 0x3F, 0xFF, Tlv(TAG_OBJ_ID, _object_id_bytes(object_id)), le=0
        )
        tag = ObjectId.DISCOVERY if object_id == ObjectId.DISCOVERY else TAG_OBJ_DATA
        return _unpack(tag, response, f"object {object_id:X}")

    def put_object(self, object_id: int, data: bytes | None) -> None:
        """Write (``None`` or ``b""``: delete) a data object; needs the management key."""
        self.connection.send(
            0x00,
            INS_PUT_DATA,
            0x3F,
            0xFF,
            Tlv(TAG_OBJ_ID, _object_id_bytes(object_id)) + Tlv(TAG_OBJ_DATA, data or b""),
        )

    def attest_key(self, slot: Slot) -> tuple[x509.Certificate, x509.Certificate] | None:
        """The card's proof that the key in ``slot`` was generated on it: the attestation
        certificate of that key and the certificate of the card's attestation key (F9) that
        signed it. ``None`` from a card that cannot attest (no ATTEST, no F9 key; a YubiKey
        also refuses with 6A80 for a key that was imported rather than generated)."""
        try:
            der = self.connection.send(0x00, INS_ATTEST, Slot(slot), 0x00, le=0)
            signer = self._certificate_in(ObjectId.ATTESTATION)
        except (NotSupported, NotFound, IncorrectData):
            return None
        try:
            return x509.load_der_x509_certificate(der), signer
        except ValueError as exc:
            raise BadResponse(f"invalid attestation certificate from card: {exc}") from exc

    def get_certificate(self, slot: Slot) -> x509.Certificate:
        return self._certificate_in(ObjectId.for_slot(slot))

    def _certificate_in(self, object_id: int) -> x509.Certificate:
        fields = _dict(self.get_object(object_id), "certificate object")
        der = fields.get(TAG_CERTIFICATE)
        if der is None:
            raise BadResponse("certificate object has no tag 70")
        info = fields.get(TAG_CERT_INFO, b"\x00")
        try:
            if info and info[0] & 0x01:  # CertInfo: gzip-compressed
                der = gzip.decompress(der)
            return x509.load_der_x509_certificate(der)
        except (ValueError, OSError, EOFError) as exc:
            raise BadResponse(f"invalid certificate on card: {exc}") from exc

    def put_certificate(self, slot: Slot, certificate: x509.Certificate) -> None:
        der = certificate.public_bytes(Encoding.DER)
        self.put_object(
            ObjectId.for_slot(slot),
            Tlv(TAG_CERTIFICATE, der) + Tlv(TAG_CERT_INFO, b"\x00") + Tlv(TAG_LRC),
        )

    def close(self) -> None:
        self.connection.close()


# -- CHUID ------------------------------------------------------------------------------------


__all__ = [
    "CREDENTIAL_OBJECT_ID",
    "NON_FEDERAL_FASC_N",
    "PIV_AID",
    "Chuid",
    "KeyType",
    "ManagementKeyType",
    "ObjectId",
    "PivSession",
    "PrintedInformation",
    "Slot",
    "Version",
    "clusters",
    "fasc_n",
    "fit_utf8",
]
