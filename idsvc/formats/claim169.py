"""The printed QR credential: MOSIP Claim 169 v1.2.2 in a COSE_Sign1 CWT, zlib, base45.

The exact profile (every key, type, limit and verification step) is ``docs/claim169.md``; the
web verifier implements the same page in JavaScript. This module is pure: no clock, no
database. Signing goes through the issuer key's signer (file or HSM), as for the JWT.

Verification raises; it never returns False. Every failure is one of::

    Claim169Error
    ├── MalformedClaim169     anything outside the profile: text too long, bad base45, not
    │                         zlib, inflates past the cap (decompression bomb), bad CBOR, not
    │                         a COSE_Sign1, protected header not exactly {alg, kid}, a claim
    │                         missing or of the wrong type, payload not deterministic CBOR
    ├── UnsupportedAlgorithm  ``alg`` other than ES256 (-7) or EdDSA (-8)
    ├── UnknownKey            ``key_for`` raised or returned None for the kid hint
    └── BadSignature          the signature does not verify, or does not fit the key type

Signing problems that are the caller's fault (a signer with another algorithm, a kid that is
not an RFC 7638 thumbprint, a card serial that is not 12 Crockford base32 characters, a face
image over the limit) raise ``ValueError``.

The header carries a *kid hint*, the first 8 bytes of the RFC 7638 thumbprint, not the whole
kid: it only selects the key (``keys_by_hint`` builds the lookup and drops a hint two keys
share); the signature is what proves it. Profile version 2 (see docs/claim169.md).
"""

from __future__ import annotations

import io
import re
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final
from urllib.parse import quote, unquote, urljoin

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from idsvc.formats.base45 import ALPHABET, Base45Error, b45decode, b45encode
from idsvc.formats.claim169_compact import (
    KID_HINT_BYTES,
    MAX_LIST_NAME_BYTES,
    STATUS_BASE,
    STATUS_LIST,
    STATUS_URI,
    b64url,
    keys_by_hint,
    kid_bytes,
    kid_hint,
    named_list_uri,
    relative_uri,
    serial_bytes,
    serial_text,
    status_reference,
)
from idsvc.formats.jws import JwsSigner
from keys.algorithms import es256_der_from_raw, require_key_for_alg
from keys.errors import KeysError
from keys.jwk import PublicKey

__all__ = [
    "MAX_FACE_BYTES",
    "MAX_INFLATED_BYTES",
    "MAX_TEXT_CHARS",
    "BadSignature",
    "Claim169Error",
    "Face",
    "MalformedClaim169",
    "PrintedCredential",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "VerifiedPrinted",
    "encode",
    "fragment_of",
    "keys_by_hint",
    "kid_hint",
    "language_of",
    "looks_printed",
    "printed_text_of",
    "relative_uri",
    "verify",
]

MAX_TEXT_CHARS: Final = 4296  # the most a QR symbol (version 40) holds in alphanumeric mode
MAX_INFLATED_BYTES: Final = 8192
MAX_FACE_BYTES: Final = 2048
_MAX_DEPTH: Final = 16

_COSE_SIGN1_TAG: Final = 18
_CWT_TAG: Final = 61
_ALG_IDS: Final = {"ES256": -7, "EdDSA": -8}
_ALG_NAMES: Final = {v: k for k, v in _ALG_IDS.items()}
_HEADER_ALG: Final = 1
_HEADER_KID: Final = 4

# CWT claim keys (RFC 8392) and our private-use claim (below -65536, RFC 8392 §9.1).
_ISS, _EXP, _NBF, _IAT, _CTI = 1, 4, 5, 6, 7
_IDENTITY: Final = 169
_CARD: Final = -65537

# Claim 169 identity keys used by this profile.
_ID, _FULL_NAME, _DOB, _GENDER, _NAME_2ND, _LANG_2ND, _FACE = 1, 4, 8, 9, 19, 20, 62
# Keys of the private claim: employment, then the status reference. 2 and 4 (unit and grade in
# profile version 1) are not used: the printed form has no room for them (docs/claim169.md).
_MINISTRY, _POSITION, _CATEGORY, _CARD_SERIAL = 1, 3, 5, 6
_STATUS_IDX: Final = 7  # then the list: 8 name, 9 URI reference, 10 base (claim169_compact)

_GENDER_CODES: Final = {"M": 1, "F": 2, "X": 3}
_GENDER_OF: Final = {v: k for k, v in _GENDER_CODES.items()}
CATEGORY_CODES: Final = {
    "civil_servant": 1,
    "contract_official": 2,
    "contract_teacher": 3,
    "temporary": 4,
}
_CATEGORY_OF: Final = {v: k for k, v in CATEGORY_CODES.items()}

# Biometrics "Data format" 0 = image; image sub-formats of Claim 169 v1.2.2.
_IMAGE_FORMAT: Final = 0
_SUB_FORMATS: Final = {"png": 0, "jpeg": 1, "webp": 4}
_DOB_RE: Final = re.compile(r"[0-9]{8}", re.ASCII)
_B45_CHARS: Final = frozenset(ALPHABET)
# Characters a URL fragment may hold as they are (RFC 3986 §3.5), among base45's: all but
# space and '%'. quote() keeps letters, digits and '_.-~' anyway.
_FRAGMENT_SAFE: Final = "$*+/:"


class Claim169Error(Exception):
    """Base of every error raised by this module when verifying."""


class MalformedClaim169(Claim169Error):
    pass


class UnsupportedAlgorithm(Claim169Error):
    pass


class UnknownKey(Claim169Error):
    pass


class BadSignature(Claim169Error):
    pass


@dataclass(frozen=True, slots=True)
class Face:
    """A small face image for claim 62 (JPEG, WebP or PNG, at most ``MAX_FACE_BYTES``)."""

    image: bytes

    @property
    def sub_format(self) -> int:
        return _SUB_FORMATS[image_kind(self.image)]


@dataclass(frozen=True, slots=True)
class PrintedCredential:
    """What the printed QR says: the same credential as the JWT, in Claim 169 terms.

    Less than the JWT: no unit and no grade (the chip's JWT keeps them), and ``nbf`` only
    when it is not ``iat``.
    """

    credential_id: str  # the JWT jti (a UUID)
    issuer: str  # iss, a full https URI
    issued_at: int
    expires_at: int
    employee_id: str
    name_latin: str
    name_local: str | None
    sex: str | None  # "M", "F", "X" or None
    date_of_birth: date | None  # only when the ministry asks for it
    ministry: str
    position: str
    category: str
    card_serial: str  # 12 Crockford base32 characters
    status_uri: str
    status_idx: int
    face: Face | None = None
    not_before: int | None = None  # None: valid from iat (nbf is then not written)

    @property
    def valid_from(self) -> int:
        return self.issued_at if self.not_before is None else self.not_before

    def holder(self) -> dict[str, str]:
        """The verifier's view, the same keys as the JWT holder's (no date of birth)."""
        return {
            "employee_id": self.employee_id,
            "name": self.name_local or self.name_latin,
            "name_latin": self.name_latin,
            "ministry": self.ministry,
            "position": self.position,
            "category": self.category,
            "card_serial": self.card_serial,
        }


@dataclass(frozen=True, slots=True)
class VerifiedPrinted:
    alg: str
    kid_hint: str  # base64url of the header's 8 bytes; the prefix of the signing key's kid
    credential: PrintedCredential


def language_of(name: str) -> str | None:
    """ISO 639-3 code for the script of a national-script name: ``khm``, ``lao`` or None."""
    for char in name:
        code = ord(char)
        if 0x1780 <= code <= 0x17FF or 0x19E0 <= code <= 0x19FF:
            return "khm"
        if 0x0E80 <= code <= 0x0EFF:
            return "lao"
    return None


def image_kind(image: bytes) -> str:
    """``jpeg``, ``webp`` or ``png`` from the magic bytes; ``ValueError`` otherwise."""
    if image.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "webp"
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    raise ValueError("face image must be JPEG, WebP or PNG")


def _claims_of(credential: PrintedCredential) -> dict[int, Any]:
    identity: dict[int, Any] = {_ID: credential.employee_id, _FULL_NAME: credential.name_latin}
    if credential.date_of_birth is not None:
        identity[_DOB] = credential.date_of_birth.strftime("%Y%m%d")
    if credential.sex:
        identity[_GENDER] = _GENDER_CODES[credential.sex]
    if credential.name_local and credential.name_local != credential.name_latin:
        identity[_NAME_2ND] = credential.name_local
        language = language_of(credential.name_local)
        if language is not None:
            identity[_LANG_2ND] = language
    if credential.face is not None:
        if len(credential.face.image) > MAX_FACE_BYTES:
            raise ValueError(f"face image over {MAX_FACE_BYTES} bytes: too big for the QR")
        identity[_FACE] = [
            {0: credential.face.image, 1: _IMAGE_FORMAT, 2: credential.face.sub_format}
        ]
    if credential.category not in CATEGORY_CODES:
        raise ValueError(f"unknown staff category {credential.category!r}")
    claims: dict[int, Any] = {
        _ISS: credential.issuer,
        _EXP: credential.expires_at,
        _IAT: credential.issued_at,
        _CTI: uuid.UUID(credential.credential_id).bytes,
        _IDENTITY: identity,
        _CARD: {
            _MINISTRY: credential.ministry,
            _POSITION: credential.position,
            _CATEGORY: CATEGORY_CODES[credential.category],
            _CARD_SERIAL: serial_bytes(credential.card_serial),
            _STATUS_IDX: credential.status_idx,
            **status_reference(credential.status_uri, credential.issuer),
        },
    }
    # CWT: no nbf means valid from the start; ours is iat, so writing it would cost 6 bytes.
    if credential.not_before is not None:
        claims[_NBF] = credential.not_before
    return claims


def _absolute_uri(reference: str, base: str) -> str:
    uri = urljoin(base, reference)
    if not uri.startswith(("https://", "http://")):
        raise MalformedClaim169("status list (-65537/8-10) does not resolve to an http(s) URI")
    return uri


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def encode(credential: PrintedCredential, signer: JwsSigner) -> str:
    """Sign ``credential`` with the issuer key and return the QR text (base45)."""
    alg = _ALG_IDS.get(signer.alg)
    if alg is None:
        raise ValueError(f"signer algorithm {signer.alg!r} is not supported")
    hint = kid_bytes(signer.kid)[:KID_HINT_BYTES]
    protected = cbor2.dumps({_HEADER_ALG: alg, _HEADER_KID: hint}, canonical=True)
    payload = cbor2.dumps(_claims_of(credential), canonical=True)
    signature = signer.sign(_sig_structure(protected, payload))
    if len(signature) != 64:
        raise ValueError(f"{signer.alg} signer returned {len(signature)} bytes, expected 64")
    cose = cbor2.dumps(cbor2.CBORTag(_COSE_SIGN1_TAG, [protected, {}, payload, signature]))
    return b45encode(zlib.compress(cose, 9))


# --- decoding -------------------------------------------------------------------------------


def _inflate(data: bytes) -> bytes:
    # RFC 1950 header: CM = 8 (deflate), a checksum over the two bytes, no preset dictionary.
    if len(data) < 6 or data[0] & 0x0F != 8 or data[0] >> 4 > 7 or (data[0] << 8 | data[1]) % 31:
        raise MalformedClaim169("not zlib-compressed (Brotli and raw data are not accepted)")
    if data[1] & 0x20:
        raise MalformedClaim169("zlib preset dictionaries are not accepted")
    inflater = zlib.decompressobj()
    try:
        # max_length stops inflating one byte past the cap: a bomb costs 8 KiB, not gigabytes.
        out = inflater.decompress(data, MAX_INFLATED_BYTES + 1)
    except zlib.error:
        raise MalformedClaim169("zlib data is corrupt") from None
    if len(out) > MAX_INFLATED_BYTES:
        raise MalformedClaim169(f"inflates to more than {MAX_INFLATED_BYTES} bytes")
    if not inflater.eof:
        raise MalformedClaim169("zlib data is truncated")
    if inflater.unused_data:
        raise MalformedClaim169("bytes after the end of the zlib data")
    _require_zero_padding(data, out)
    return out


def _inflates_to(data: bytes, expected: bytes) -> bool:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_INFLATED_BYTES + 1)
    except zlib.error:
        return False
    return inflater.eof and not inflater.unused_data and out == expected


def _require_zero_padding(data: bytes, out: bytes) -> None:
    """Refuse set padding bits, so that one credential has exactly one QR text.

    Deflate ignores the bits that pad the final block (and a stored block's header) to a
    byte, and zlib writes them as zeros; without this check a changed character at the end of
    the text could still verify. A set bit of the last deflate byte is padding if clearing it
    leaves the output unchanged: at most eight more inflates of a few hundred bytes.
    """
    if data[2] & 0x06 == 0 and data[2] >> 3:  # first block stored (BTYPE 00): 5 pad bits
        raise MalformedClaim169("non-zero zlib padding bits")
    last = len(data) - 5  # the Adler-32 checksum takes the last four bytes
    for bit in range(8):
        if last > 2 and data[last] >> bit & 1:
            trial = bytearray(data)
            trial[last] ^= 1 << bit
            if _inflates_to(bytes(trial), out):
                raise MalformedClaim169("non-zero zlib padding bits")


def _cbor(data: bytes, what: str) -> Any:
    # cbor2.loads stops after the first item and ignores the rest: bytes after the COSE_Sign1
    # would give one credential many QR texts. read_size=1 keeps the stream position exact
    # (about 2 us more per item).
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(
            stream,
            read_size=1,
            max_depth=_MAX_DEPTH,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        ).decode()
    # cbor2 turns tagged items into Python values (dates, fractions, regexes, UUIDs, sets...)
    # and each can fail its own way on hostile input; all of them mean "not our CBOR".
    except Exception:
        raise MalformedClaim169(f"{what}: not valid CBOR") from None
    if stream.tell() != len(data):
        raise MalformedClaim169(f"{what}: bytes after the CBOR item")
    return value


def _decode_cose(text: str) -> tuple[bytes, bytes, bytes]:
    """QR text → (protected, payload, signature), checking every layer's shape."""
    if not isinstance(text, str):
        raise MalformedClaim169("QR text must be a str")
    if len(text) > MAX_TEXT_CHARS:
        raise MalformedClaim169(f"QR text longer than {MAX_TEXT_CHARS} characters")
    try:
        compressed = b45decode(text)
    except Base45Error as exc:
        raise MalformedClaim169(f"not base45: {exc}") from None
    cose = _cbor(_inflate(compressed), "COSE")
    if isinstance(cose, cbor2.CBORTag) and cose.tag == _CWT_TAG:
        cose = cose.value
    if not isinstance(cose, cbor2.CBORTag) or cose.tag != _COSE_SIGN1_TAG:
        raise MalformedClaim169("not a COSE_Sign1 (CBOR tag 18)")
    parts = cose.value
    if not isinstance(parts, (list, tuple)) or len(parts) != 4:
        raise MalformedClaim169("COSE_Sign1 is not an array of 4")
    protected, unprotected, payload, signature = parts
    if not (
        isinstance(protected, bytes)
        and isinstance(unprotected, Mapping)
        and isinstance(payload, bytes)
        and isinstance(signature, bytes)
    ):
        raise MalformedClaim169("COSE_Sign1 parts have the wrong types")
    return protected, payload, signature


def _header(protected: bytes) -> tuple[str, str]:
    header = _cbor(protected, "protected header")
    if not isinstance(header, dict) or set(header) != {_HEADER_ALG, _HEADER_KID}:
        raise MalformedClaim169("protected header must hold exactly alg (1) and kid (4)")
    alg = header[_HEADER_ALG]
    if isinstance(alg, bool) or not isinstance(alg, int) or alg not in _ALG_NAMES:
        raise UnsupportedAlgorithm("alg must be ES256 (-7) or EdDSA (-8)")
    kid = header[_HEADER_KID]
    if not isinstance(kid, bytes) or len(kid) != KID_HINT_BYTES:
        raise MalformedClaim169(f"kid must be the {KID_HINT_BYTES}-byte hint of a thumbprint")
    return _ALG_NAMES[alg], b64url(kid)


def _get(claims: Mapping[Any, Any], key: int, kind: type, what: str) -> Any:
    value = claims.get(key)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise MalformedClaim169(f"{what} missing or not an unsigned integer")
        return value
    if not isinstance(value, kind):
        raise MalformedClaim169(f"{what} missing or not a {kind.__name__}")
    if isinstance(value, str) and ("\x00" in value or not value):
        raise MalformedClaim169(f"{what} is empty or holds NUL")
    return value


def _optional(claims: Mapping[Any, Any], key: int, kind: type, what: str) -> Any:
    return None if key not in claims else _get(claims, key, kind, what)


def _date_of_birth(value: str | None) -> date | None:
    if value is None:
        return None
    if not _DOB_RE.fullmatch(value):
        raise MalformedClaim169("date of birth (169/8) is not YYYYMMDD")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise MalformedClaim169("date of birth (169/8) is not a date") from None


def _face(value: object) -> Face | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not isinstance(value[0], dict):
        raise MalformedClaim169("face (169/62) is not an array of biometrics maps")
    image = _get(value[0], 0, bytes, "face data (169/62/0)")
    if len(image) > MAX_FACE_BYTES:
        raise MalformedClaim169(f"face image over {MAX_FACE_BYTES} bytes")
    return Face(image)


def _status_uri(card: Mapping[Any, Any], issuer: str) -> str:
    if (STATUS_LIST in card) == (STATUS_URI in card):
        raise MalformedClaim169("status list: exactly one of -65537/8 and -65537/9")
    if STATUS_URI in card:
        if STATUS_BASE in card:
            raise MalformedClaim169("status list base (-65537/10) without a name (8)")
        return _absolute_uri(_get(card, STATUS_URI, str, "status list URI (-65537/9)"), issuer)
    name = _get(card, STATUS_LIST, bytes, "status list name (-65537/8)")
    if not 0 < len(name) <= MAX_LIST_NAME_BYTES:
        raise MalformedClaim169("status list name (-65537/8) is not 1-32 bytes")
    base = _optional(card, STATUS_BASE, str, "status list base (-65537/10)")
    if base is not None:
        _absolute_uri(base, issuer)  # the base itself must be http(s) too
    return _absolute_uri(named_list_uri(name, base, issuer), issuer)


def _serial(card: Mapping[Any, Any]) -> str:
    try:
        return serial_text(_get(card, _CARD_SERIAL, bytes, "card serial (-65537/6)"))
    except ValueError as exc:
        raise MalformedClaim169(str(exc)) from None


def _credential(claims: object) -> PrintedCredential:
    if not isinstance(claims, dict):
        raise MalformedClaim169("CWT claims are not a map")
    identity = _get(claims, _IDENTITY, dict, "identity (169)")
    job = _get(claims, _CARD, dict, "employment and status (-65537)")
    cti = _get(claims, _CTI, bytes, "cti (7)")
    if len(cti) != 16:
        raise MalformedClaim169("cti (7) is not a 16-byte UUID")
    gender = _optional(identity, _GENDER, int, "gender (169/9)")
    if gender is not None and gender not in _GENDER_OF:
        raise MalformedClaim169("gender (169/9) is not 1, 2 or 3")
    category = _get(job, _CATEGORY, int, "staff category (-65537/5)")
    if category not in _CATEGORY_OF:
        raise MalformedClaim169("staff category (-65537/5) is not 1-4")
    issuer = _get(claims, _ISS, str, "iss (1)")
    if not issuer.startswith("https://"):
        raise MalformedClaim169("iss (1) is not an https URI")
    return PrintedCredential(
        credential_id=str(uuid.UUID(bytes=cti)),
        issuer=issuer,
        issued_at=_get(claims, _IAT, int, "iat (6)"),
        not_before=_optional(claims, _NBF, int, "nbf (5)"),
        expires_at=_get(claims, _EXP, int, "exp (4)"),
        employee_id=_get(identity, _ID, str, "id (169/1)"),
        name_latin=_get(identity, _FULL_NAME, str, "full name (169/4)"),
        name_local=_optional(identity, _NAME_2ND, str, "secondary full name (169/19)"),
        sex=None if gender is None else _GENDER_OF[gender],
        date_of_birth=_date_of_birth(_optional(identity, _DOB, str, "date of birth (169/8)")),
        ministry=_get(job, _MINISTRY, str, "ministry (-65537/1)"),
        position=_get(job, _POSITION, str, "position (-65537/3)"),
        category=_CATEGORY_OF[category],
        card_serial=_serial(job),
        status_uri=_status_uri(job, issuer),
        status_idx=_get(job, _STATUS_IDX, int, "status index (-65537/7)"),
        face=_face(identity.get(_FACE)),
    )


def _verify_signature(key: object, alg: str, data: bytes, signature: bytes) -> None:
    try:
        checked = require_key_for_alg(key, alg)  # an Ed25519 key never checks ES256, and back
        if len(signature) != 64:
            raise BadSignature(f"{alg} signature must be 64 bytes")
        if isinstance(checked, ec.EllipticCurvePublicKey):
            checked.verify(es256_der_from_raw(signature), data, ec.ECDSA(hashes.SHA256()))
        else:
            checked.verify(signature, data)
    except (InvalidSignature, KeysError):
        raise BadSignature("signature does not verify") from None


def verify(
    text: str,
    *,
    key_for: Callable[[str], PublicKey | None],
    allowed_algs: frozenset[str] = frozenset(_ALG_IDS),
) -> VerifiedPrinted:
    """Verify QR text and return what it says; raise a :class:`Claim169Error` otherwise.

    ``key_for`` gets the kid hint (``kid_hint`` of the signing key's JWKS kid) and returns the
    public key, or None/raises when it knows no single key for it (``keys_by_hint``). The
    payload is decoded only after the signature has verified.
    """
    protected, payload, signature = _decode_cose(text)
    alg, kid = _header(protected)
    if alg not in allowed_algs:
        raise UnsupportedAlgorithm(f"alg {alg} is not allowed")
    try:
        key = key_for(kid)
    except Exception as exc:  # any lookup failure means "no key for this QR"
        raise UnknownKey("no key for this QR") from exc
    if key is None:
        raise UnknownKey("no key for this QR")
    _verify_signature(key, alg, _sig_structure(protected, payload), signature)
    claims = _cbor(payload, "payload")
    credential = _credential(claims)
    # Only deterministic CBOR is ever signed here; anything else was not made by idsvc.
    if cbor2.dumps(claims, canonical=True) != payload:
        raise MalformedClaim169("payload is not deterministic CBOR")
    return VerifiedPrinted(alg=alg, kid_hint=kid, credential=credential)


# --- telling the forms apart, and the tap URL ------------------------------------------------


def printed_text_of(text: str) -> str:
    """The QR text inside ``text``: the fragment of a tap URL, or the text itself (trimmed)."""
    text = text.strip()
    if text.startswith(("https://", "http://")) and "#" in text:
        return unquote(text.split("#", 1)[1], errors="strict")
    return text


def looks_printed(text: str) -> bool:
    """Whether ``text`` (after ``printed_text_of``) should be read as Claim 169, not a JWT.

    A JWT always holds lower-case letters (its header starts ``eyJ``); base45 never does.
    """
    return bool(text) and all(char in _B45_CHARS for char in text)


def fragment_of(qr_text: str) -> str:
    """The QR text as a URL fragment: space → ``%20``, ``%`` → ``%25``, the rest as is."""
    return quote(qr_text, safe=_FRAGMENT_SAFE)
