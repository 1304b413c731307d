"""The PIV card application (NIST SP 800-73-4 part 2 card edge) of the virtual card.

It answers the commands that OpenSC, yubikit and our own ``cardio.piv`` send, with the status
words a real PIV card gives, plus the YubiKey extensions (GET VERSION / SERIAL / METADATA, SET
MANAGEMENT KEY) without which yubikit will not open a session. Chaining, 61xx and GET RESPONSE
belong to the card OS (``applet.VirtualCard``): this applet sees whole commands.

Only EC keys (P-256 and P-384) are generated: that is what the issuance protocol puts in slot
9E, and RSA key generation would slow tests down for nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cardio.tlv import Tlv, TlvError, iter_tlvs, parse_dict

from .attestation import attest
from .iso import SW, CardError, Command, retries_sw
from .state import CardState, Secret, SlotKey

log = logging.getLogger(__name__)

PIV_AID = bytes.fromhex("A000000308000010000100")
PIV_RID = PIV_AID[:5]
APPLICATION_PROPERTY_TEMPLATE = Tlv(0x61, Tlv(0x4F, PIV_AID[5:]) + Tlv(0x79, Tlv(0x4F, PIV_RID)))
# PIN usage policy 40 00: the PIV application PIN satisfies the access rules, no global PIN.
DISCOVERY_OBJECT = Tlv(0x7E, Tlv(0x4F, PIV_AID) + Tlv(0x5F2F, b"\x40\x00"))

VERSION = bytes([5, 7, 1])

INS_VERIFY = 0x20
INS_SELECT = 0xA4
INS_CHANGE_REFERENCE = 0x24
INS_RESET_RETRY = 0x2C
INS_GENERATE = 0x47
INS_AUTHENTICATE = 0x87
INS_GET_DATA = 0xCB
INS_PUT_DATA = 0xDB
INS_GET_METADATA = 0xF7
INS_GET_SERIAL = 0xF8
INS_ATTEST = 0xF9
INS_GET_VERSION = 0xFD
INS_SET_MGMKEY = 0xFF

PIN_REF = 0x80
PUK_REF = 0x81
SLOT_CARD_MANAGEMENT = 0x9B
SLOT_CARD_AUTH = 0x9E
KEY_SLOTS = frozenset([0x9A, 0x9C, 0x9D, 0x9E, *range(0x82, 0x96)])

# Biometrics and printed information are PIN-protected (SP 800-73-4 part 1, table 2).
PIN_PROTECTED_OBJECTS = frozenset([0x5FC103, 0x5FC108, 0x5FC109, 0x5FC121, 0x5FC122])
MAX_OBJECT_SIZE = 16 * 1024

PIN_LEN = 8
PIN_PAD = 0xFF

_CURVES: dict[int, tuple[ec.EllipticCurve, hashes.HashAlgorithm]] = {
    0x11: (ec.SECP256R1(), hashes.SHA256()),
    0x14: (ec.SECP384R1(), hashes.SHA384()),
}

# PIV management key algorithm id -> (key length, block size)
_MGMT_TYPES: dict[int, tuple[int, int]] = {
    0x03: (24, 8),
    0x08: (16, 16),
    0x0A: (24, 16),
    0x0C: (32, 16),
}


def _block_cipher(key_type: int, key: bytes) -> Cipher[modes.ECB]:
    algorithm = TripleDES(key) if key_type == 0x03 else algorithms.AES(key)
    # One block per operation, as the SP 800-73-4 challenge/response defines it.
    return Cipher(algorithm, modes.ECB())  # noqa: S305


def _encrypt(key_type: int, key: bytes, block: bytes) -> bytes:
    encryptor = _block_cipher(key_type, key).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _decrypt(key_type: int, key: bytes, block: bytes) -> bytes:
    decryptor = _block_cipher(key_type, key).decryptor()
    return decryptor.update(block) + decryptor.finalize()


def _pad_pin(value: str) -> bytes:
    return value.encode("ascii").ljust(PIN_LEN, bytes([PIN_PAD]))


def _unpad_new_pin(block: bytes) -> str:
    """A new PIN/PUK: 6-8 digits, FF-padded to 8 bytes (SP 800-73-4 part 2, 2.4.3)."""
    raw = block.rstrip(bytes([PIN_PAD]))
    if not 6 <= len(raw) <= PIN_LEN or not all(0x30 <= b <= 0x39 for b in raw):
        raise CardError(SW.INCORRECT_DATA)
    return raw.decode("ascii")


def _parse_single(data: bytes, tag: int) -> bytes:
    try:
        return Tlv.unpack(tag, data)
    except TlvError:
        raise CardError(SW.INCORRECT_DATA) from None


def _parse_fields(data: bytes) -> dict[int, bytes]:
    try:
        return parse_dict(data)
    except TlvError:
        raise CardError(SW.INCORRECT_DATA) from None


def _object_tag(encoded: bytes) -> int:
    if not 1 <= len(encoded) <= 3:
        raise CardError(SW.INCORRECT_DATA)
    return int.from_bytes(encoded, "big")


def _public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class PivApplet:
    """PIV card edge over a ``CardState``; ``persist`` is called after every state change."""

    aid = PIV_AID

    def __init__(self, state: CardState, persist: Callable[[], None]) -> None:
        self._state = state
        self._persist = persist
        self._handlers: dict[int, Callable[[Command], bytes]] = {
            INS_VERIFY: self._verify,
            INS_SELECT: self._select_file,
            INS_CHANGE_REFERENCE: self._change_reference,
            INS_RESET_RETRY: self._reset_retry,
            INS_GENERATE: self._generate,
            INS_AUTHENTICATE: self._authenticate,
            INS_GET_DATA: self._get_data,
            INS_PUT_DATA: self._put_data,
            INS_GET_METADATA: self._get_metadata,
            INS_GET_SERIAL: self._get_serial,
            INS_GET_VERSION: self._get_version,
            INS_ATTEST: self._attest,
            INS_SET_MGMKEY: self._set_management_key,
        }
        self.reset()

    # -- application life cycle -------------------------------------------------------------

    def reset(self) -> None:
        """Forget the security status: power cycle, or another application selected."""
        self.pin_verified = False
        self.mgmt_authenticated = False
        self._witness: bytes | None = None
        self._challenge: bytes | None = None

    @staticmethod
    def matches(aid: bytes) -> bool:
        # yubikit selects with the 5-byte RID only; others send 9 or 11 bytes.
        return len(aid) >= len(PIV_RID) and PIV_AID.startswith(aid)

    def select(self) -> bytes:
        # Re-selecting PIV keeps the security status: OpenSC re-selects before most
        # operations and would otherwise lose the PIN it just verified.
        return bytes(APPLICATION_PROPERTY_TEMPLATE)

    def process(self, cmd: Command) -> bytes:
        handler = self._handlers.get(cmd.ins)
        if handler is None:
            raise CardError(SW.INS_NOT_SUPPORTED)
        return handler(cmd)

    def _select_file(self, cmd: Command) -> bytes:
        # PIV has no file system; other drivers' probes (SELECT MF 3F00 ...) must fail cleanly.
        raise CardError(SW.FILE_NOT_FOUND)

    # -- PIN / PUK ----------------------------------------------------------------------------

    def _check_secret(self, secret: Secret, candidate: bytes) -> None:
        """Compare and count; 6983 when blocked, 63Cx when wrong. Persists counter changes."""
        if secret.blocked:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        if candidate != _pad_pin(secret.value):
            secret.retries -= 1
            self._persist()
            raise CardError(retries_sw(secret.retries))
        if secret.retries != secret.max_retries:
            secret.retries = secret.max_retries
            self._persist()

    def _verify(self, cmd: Command) -> bytes:
        if cmd.p1 == 0xFF:  # SP 800-73-4: P1=FF, no data resets the verified state
            if cmd.data:
                raise CardError(SW.WRONG_LENGTH)
            self.pin_verified = False
            return b""
        if cmd.p1 != 0x00:
            raise CardError(SW.INCORRECT_P1P2)
        if cmd.p2 != PIN_REF:
            raise CardError(SW.REFERENCE_NOT_FOUND)
        pin = self._state.pin
        if not cmd.data:  # status query
            if self.pin_verified:
                return b""
            if pin.blocked:
                raise CardError(SW.AUTH_METHOD_BLOCKED)
            raise CardError(retries_sw(pin.retries))
        if len(cmd.data) != PIN_LEN:
            raise CardError(SW.INCORRECT_DATA)
        self.pin_verified = False
        self._check_secret(pin, cmd.data)
        self.pin_verified = True
        log.debug("PIN verified")
        return b""

    def _change_reference(self, cmd: Command) -> bytes:
        if cmd.p1 != 0x00:
            raise CardError(SW.INCORRECT_P1P2)
        if cmd.p2 == PIN_REF:
            secret = self._state.pin
        elif cmd.p2 == PUK_REF:
            secret = self._state.puk
        else:
            raise CardError(SW.REFERENCE_NOT_FOUND)
        if len(cmd.data) != 2 * PIN_LEN:
            raise CardError(SW.INCORRECT_DATA)
        new_value = _unpad_new_pin(cmd.data[PIN_LEN:])
        self._check_secret(secret, cmd.data[:PIN_LEN])
        secret.value = new_value
        self._persist()
        if cmd.p2 == PIN_REF:
            self.pin_verified = True
        log.info("reference data 0x%02X changed", cmd.p2)
        return b""

    def _reset_retry(self, cmd: Command) -> bytes:
        if cmd.p1 != 0x00:
            raise CardError(SW.INCORRECT_P1P2)
        if cmd.p2 != PIN_REF:
            raise CardError(SW.REFERENCE_NOT_FOUND)
        if len(cmd.data) != 2 * PIN_LEN:
            raise CardError(SW.INCORRECT_DATA)
        new_pin = _unpad_new_pin(cmd.data[PIN_LEN:])
        self._check_secret(self._state.puk, cmd.data[:PIN_LEN])
        pin = self._state.pin
        pin.value = new_pin
        pin.retries = pin.max_retries
        self._persist()
        log.info("PIN reset with PUK")
        return b""

    # -- data objects -------------------------------------------------------------------------

    def _get_data(self, cmd: Command) -> bytes:
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF):
            raise CardError(SW.INCORRECT_P1P2)
        tag = _object_tag(_parse_single(cmd.data, 0x5C))
        if tag == 0x7E:
            return bytes(DISCOVERY_OBJECT)
        value = self._state.objects.get(tag)
        if value is None:
            raise CardError(SW.FILE_NOT_FOUND)
        if tag in PIN_PROTECTED_OBJECTS and not self.pin_verified:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        return bytes(Tlv(0x53, value))

    def _put_data(self, cmd: Command) -> bytes:
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF):
            raise CardError(SW.INCORRECT_P1P2)
        if not self.mgmt_authenticated:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        try:
            parts = list(iter_tlvs(cmd.data))
        except TlvError:
            raise CardError(SW.INCORRECT_DATA) from None
        if [p.tag for p in parts] != [0x5C, 0x53]:
            raise CardError(SW.INCORRECT_DATA)
        tag = _object_tag(parts[0].value)
        if tag == 0x7E or tag >> 8 not in (0x5FC1, 0x5FFF):
            raise CardError(SW.INCORRECT_DATA)
        value = parts[1].value
        if len(value) > MAX_OBJECT_SIZE:
            raise CardError(SW.NOT_ENOUGH_MEMORY)
        if value:
            self._state.objects[tag] = value
        else:  # an empty container deletes the object (what yubikit sends to delete)
            self._state.objects.pop(tag, None)
        self._persist()
        log.debug("object 0x%X written (%d bytes)", tag, len(value))
        return b""

    # -- keys ---------------------------------------------------------------------------------

    def _slot_key(self, slot: int) -> tuple[SlotKey, ec.EllipticCurvePrivateKey]:
        stored = self._state.keys.get(slot)
        if stored is None:
            raise CardError(SW.REFERENCE_NOT_FOUND)
        key = serialization.load_pem_private_key(stored.pem.encode("ascii"), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        return stored, key

    def _generate(self, cmd: Command) -> bytes:
        if cmd.p1 != 0x00 or cmd.p2 not in KEY_SLOTS:
            raise CardError(SW.INCORRECT_P1P2)
        if not self.mgmt_authenticated:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        template = _parse_fields(_parse_single(cmd.data, 0xAC))
        algorithm = template.get(0x80, b"")
        if len(algorithm) != 1 or algorithm[0] not in _CURVES:
            raise CardError(SW.INCORRECT_DATA)
        curve, _ = _CURVES[algorithm[0]]
        key = ec.generate_private_key(curve)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        self._state.keys[cmd.p2] = SlotKey(algorithm[0], pem, generated=True)
        self._persist()
        log.info("key generated in slot 0x%02X", cmd.p2)
        return bytes(Tlv(0x7F49, Tlv(0x86, _public_point(key))))

    def _authenticate(self, cmd: Command) -> bytes:
        fields = _parse_fields(_parse_single(cmd.data, 0x7C))
        if cmd.p2 == SLOT_CARD_MANAGEMENT:
            return self._authenticate_management(cmd.p1, fields)
        if cmd.p2 not in KEY_SLOTS:
            raise CardError(SW.INCORRECT_P1P2)
        stored, key = self._slot_key(cmd.p2)
        if cmd.p1 != stored.algorithm:
            raise CardError(SW.INCORRECT_P1P2)
        if cmd.p2 != SLOT_CARD_AUTH and not self.pin_verified:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if fields.get(0x82) != b"":
            raise CardError(SW.INCORRECT_DATA)
        curve, digest = _CURVES[stored.algorithm]
        if 0x81 in fields:
            message = fields[0x81]
            # A PIV card signs what it is given: the host hashes, the card checks the size.
            if len(message) != digest.digest_size:
                raise CardError(SW.INCORRECT_DATA)
            signature = key.sign(message, ec.ECDSA(Prehashed(digest)))
            return bytes(Tlv(0x7C, Tlv(0x82, signature)))
        if 0x85 in fields:
            try:
                peer = ec.EllipticCurvePublicKey.from_encoded_point(curve, fields[0x85])
            except ValueError:
                raise CardError(SW.INCORRECT_DATA) from None
            return bytes(Tlv(0x7C, Tlv(0x82, key.exchange(ec.ECDH(), peer))))
        raise CardError(SW.INCORRECT_DATA)

    def _authenticate_management(self, algorithm: int, fields: dict[int, bytes]) -> bytes:
        """SP 800-73-4 part 2, appendix A: mutual (witness) and external (challenge) forms."""
        key_type, key = self._state.management_key_type, self._state.management_key
        if algorithm != key_type:
            raise CardError(SW.INCORRECT_P1P2)
        block = _MGMT_TYPES[key_type][1]
        witness, self._witness = self._witness, None
        challenge, self._challenge = self._challenge, None

        if fields.get(0x80) == b"" and len(fields) == 1:  # step 1 of mutual auth
            self.mgmt_authenticated = False
            self._witness = os.urandom(block)
            return bytes(Tlv(0x7C, Tlv(0x80, _encrypt(key_type, key, self._witness))))
        if 0x80 in fields and 0x81 in fields:  # step 2: host proves, card answers challenge
            host_challenge = fields[0x81]
            if witness is None or len(host_challenge) != block:
                raise CardError(SW.INCORRECT_DATA if witness else SW.CONDITIONS_NOT_SATISFIED)
            if fields[0x80] != witness:
                log.info("management key authentication failed")
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
            self.mgmt_authenticated = True
            return bytes(Tlv(0x7C, Tlv(0x82, _encrypt(key_type, key, host_challenge))))
        if fields.get(0x81) == b"" and len(fields) == 1:  # step 1 of external auth
            self.mgmt_authenticated = False
            self._challenge = os.urandom(block)
            return bytes(Tlv(0x7C, Tlv(0x81, self._challenge)))
        if 0x82 in fields and len(fields) == 1:  # step 2 of external auth
            if challenge is None:
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            if len(fields[0x82]) != block or _decrypt(key_type, key, fields[0x82]) != challenge:
                log.info("management key authentication failed")
                raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
            self.mgmt_authenticated = True
            return b""
        raise CardError(SW.INCORRECT_DATA)

    def _set_management_key(self, cmd: Command) -> bytes:
        if cmd.p1 != 0xFF or cmd.p2 not in (0xFE, 0xFF):
            raise CardError(SW.INCORRECT_P1P2)
        if not self.mgmt_authenticated:
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if len(cmd.data) < 2:
            raise CardError(SW.INCORRECT_DATA)
        key_type = cmd.data[0]
        key = _parse_single(cmd.data[1:], SLOT_CARD_MANAGEMENT)
        if key_type not in _MGMT_TYPES or len(key) != _MGMT_TYPES[key_type][0]:
            raise CardError(SW.INCORRECT_DATA)
        self._state.management_key_type = key_type
        self._state.management_key = key
        self._persist()
        log.info("management key changed (type 0x%02X)", key_type)
        return b""

    # -- YubiKey extensions -------------------------------------------------------------------

    def _get_version(self, cmd: Command) -> bytes:
        return VERSION

    def _attest(self, cmd: Command) -> bytes:
        """ATTEST (YubiKey 4.3+): the slot key's certificate, signed by the F9 attestation key."""
        if cmd.p1 not in KEY_SLOTS or cmd.p2 != 0x00:
            raise CardError(SW.INCORRECT_P1P2)
        try:
            return attest(self._state, cmd.p1)
        except KeyError:  # no key in the slot, or a card made without an attestation key
            raise CardError(SW.REFERENCE_NOT_FOUND) from None
        except ValueError:  # an imported key: as a YubiKey, 6A80
            raise CardError(SW.INCORRECT_DATA) from None

    def _get_serial(self, cmd: Command) -> bytes:
        return self._state.serial.to_bytes(4, "big")

    def _get_metadata(self, cmd: Command) -> bytes:
        if cmd.p1 != 0x00:
            raise CardError(SW.INCORRECT_P1P2)
        state = self._state
        if cmd.p2 in (PIN_REF, PUK_REF):
            secret = state.pin if cmd.p2 == PIN_REF else state.puk
            return (
                Tlv(0x01, b"\xff")
                + Tlv(0x05, bytes([secret.is_default]))
                + Tlv(0x06, bytes([secret.max_retries, max(secret.retries, 0)]))
            )
        if cmd.p2 == SLOT_CARD_MANAGEMENT:
            return (
                Tlv(0x01, bytes([state.management_key_type]))
                + Tlv(0x02, b"\x00\x01")  # no PIN policy, touch never
                + Tlv(0x05, bytes([state.management_key_is_default]))
            )
        if cmd.p2 not in KEY_SLOTS:
            raise CardError(SW.INCORRECT_P1P2)
        if cmd.p2 not in state.keys:
            raise CardError(SW.FILE_NOT_FOUND)
        stored, key = self._slot_key(cmd.p2)
        pin_policy = 0x01 if cmd.p2 == SLOT_CARD_AUTH else 0x02  # never / once
        return (
            Tlv(0x01, bytes([stored.algorithm]))
            + Tlv(0x02, bytes([pin_policy, 0x01]))
            + Tlv(0x03, b"\x01" if stored.generated else b"\x02")
            + Tlv(0x04, Tlv(0x86, _public_point(key)))
        )
