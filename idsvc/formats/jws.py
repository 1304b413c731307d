"""Lean JWS Compact Serialization (RFC 7515) for ES256 and EdDSA (Ed25519).

Why not PyJWT here: the issuer key may sit in an HSM, so signing goes through a signer object
that returns raw signature bytes, never a key object; and the verify path of stock
``jwt.decode`` costs about 2.6 times the bare ECDSA verification, most of it in a Python
per-character base64url check and generic claim handling. This module signs and verifies the
JWS layer only: claims (``exp``, ``nbf``, ``iss`` ...) are the caller's job.

Verification raises; it never returns False. Every failure is one of::

    JwsError
    ├── MalformedJws          not three base64url parts, padding, bad JSON, duplicate JSON
    │                         member names, header or payload not an object, ``crit``
    │                         present, token longer than ``max_length``, ``typ`` mismatch
    ├── UnsupportedAlgorithm  ``alg`` outside the allow-list (``none``, HS*, RS*, ...), or an
    │                         ``alg`` that does not fit the key's type (no algorithm confusion)
    ├── UnknownKey            ``key_for`` raised or returned None
    └── BadSignature          the signature does not verify (or has the wrong length)

Signing problems that are the caller's fault (a header that would override ``alg``/``kid``/
``typ``, a signer with an unsupported ``alg`` or returning a signature of the wrong size) raise
``ValueError``: they are bugs or misconfiguration, not hostile input.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "DEFAULT_ALGS",
    "BadSignature",
    "JwsError",
    "JwsSigner",
    "MalformedJws",
    "PublicKey",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "VerifiedJws",
    "sign_compact",
    "strict_json",
    "verify_compact",
]

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

DEFAULT_ALGS: Final = frozenset({"ES256", "EdDSA"})
_SUPPORTED_ALGS: Final = DEFAULT_ALGS
_RESERVED_HEADERS: Final = frozenset({"alg", "kid", "typ", "crit"})

# One C-level pass checks the shape (three parts) and the strict base64url alphabet of the
# whole token: '=' padding, '+', '/', whitespace and non-ASCII all fail here.
_COMPACT_RE: Final = re.compile(r"[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*", re.ASCII)
_PAD: Final = ("", None, "==", "=")  # indexed by len % 4; 1 is never valid base64

# The last character of a segment of length 2 or 3 (mod 4) carries unused low bits. Decoders
# ignore them, so without this check one signature would have 4 or 16 spellings, and a token
# string could not serve as its own identifier (replay caches, audit hashes).
_CANONICAL_LAST: Final = {
    2: frozenset("AQgw"),
    3: frozenset("AEIMQUYcgkosw048"),
}

_ECDSA_SHA256: Final = ec.ECDSA(hashes.SHA256())


class JwsError(Exception):
    """Base of every error raised by this module when verifying."""


class MalformedJws(JwsError):
    pass


class UnsupportedAlgorithm(JwsError):
    pass


class UnknownKey(JwsError):
    pass


class BadSignature(JwsError):
    pass


class JwsSigner(Protocol):
    """What ``sign_compact`` needs from an issuer key (structurally ``keys.Signer``)."""

    @property
    def kid(self) -> str: ...

    @property
    def alg(self) -> str: ...

    def sign(self, data: bytes) -> bytes:
        """Raw JWS signature: r||s (64 bytes) for ES256, 64 bytes for EdDSA."""
        ...


@dataclass(frozen=True, slots=True)
class VerifiedJws:
    header: dict[str, Any]
    payload: dict[str, Any]


def _b64url_encode(data: bytes) -> str:
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii").rstrip("=")
    return encoded.replace("+", "-").replace("/", "_")


def _b64url_pad(segment: str, what: str) -> str:
    """Padding for a segment already known to use only the base64url alphabet."""
    rem = len(segment) % 4
    pad = _PAD[rem]
    if pad is None:
        raise MalformedJws(f"{what}: impossible base64url length")
    if rem and segment[-1] not in _CANONICAL_LAST[rem]:
        raise MalformedJws(f"{what}: non-canonical base64url")
    return pad


def _b64url_decode(segment: str, pad: str, what: str) -> bytes:
    try:
        # str.replace is ~40x faster than str.translate for this two-character mapping.
        return binascii.a2b_base64(
            segment.replace("-", "+").replace("_", "/") + pad, strict_mode=True
        )
    except binascii.Error as exc:  # unreachable after the shape checks; kept as a backstop
        raise MalformedJws(f"{what}: bad base64url") from exc


class _DuplicateMember(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # RFC 7515 §5.2 lets parsers take the last value; two JOSE libraries then disagree on
        # what was signed, so a duplicate is refused outright.
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateMember(f"duplicate member {name[:40]!r}")
            seen.add(name)
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads with any keyword argument constructs a fresh decoder on every call.
_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant
)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        # Decoding first pins UTF-8: json.loads(bytes) would also guess UTF-16 and UTF-32.
        value = _DECODER.decode(raw.decode("utf-8"))
    except _DuplicateMember as exc:
        raise MalformedJws(f"{what}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedJws(f"{what}: not valid UTF-8 JSON") from None
    if type(value) is not dict:
        raise MalformedJws(f"{what}: not a JSON object")
    return value


def strict_json(raw: bytes, what: str) -> Any:
    """Any JSON value, parsed as strictly as a JWS header: UTF-8 only, no duplicate member
    names, no NaN/Infinity; else ``MalformedJws`` naming ``what`` (SD-JWT disclosures are
    JSON arrays, so ``_json_object`` alone does not serve them)."""
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except _DuplicateMember as exc:
        raise MalformedJws(f"{what}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedJws(f"{what}: not valid UTF-8 JSON") from None


_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _dumps(obj: dict[str, Any]) -> bytes:
    return _ENCODER.encode(obj).encode("utf-8")


def sign_compact(
    payload: dict[str, Any],
    signer: JwsSigner,
    *,
    typ: str,
    extra_headers: Mapping[str, Any] | None = None,
    include_kid: bool = True,
) -> str:
    """Sign ``payload`` as a compact JWS with header ``{"alg", "kid", "typ", ...extra}``.

    The payload is serialised as compact UTF-8 JSON (``ensure_ascii=False``) so that names in
    Lao or Khmer script cost their UTF-8 size, not six bytes per ``\\uXXXX`` escape.
    ``include_kid=False`` leaves ``kid`` out: a holder's key proof carries its key in a ``jwk``
    header instead, and OpenID4VCI forbids ``kid`` next to ``jwk``.
    """
    alg = signer.alg
    if alg not in _SUPPORTED_ALGS:
        raise ValueError(f"signer algorithm {alg!r} is not supported")
    header: dict[str, Any] = {"alg": alg, "kid": signer.kid, "typ": typ}
    if not include_kid:
        del header["kid"]
    if extra_headers:
        clash = _RESERVED_HEADERS.intersection(extra_headers)
        if clash:
            raise ValueError(f"extra_headers may not set {sorted(clash)}")
        header.update(extra_headers)
    signing_input = _b64url_encode(_dumps(header)) + "." + _b64url_encode(_dumps(payload))
    signature = signer.sign(signing_input.encode("ascii"))
    if len(signature) != 64:
        raise ValueError(f"{alg} signer returned {len(signature)} bytes, expected 64 (raw)")
    return signing_input + "." + _b64url_encode(signature)


def _verify_signature(alg: str, key: object, signature: bytes, signing_input: bytes) -> None:
    if alg == "ES256":
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise UnsupportedAlgorithm("alg ES256 needs a P-256 key")
        if len(signature) != 64:
            raise BadSignature("ES256 signature must be 64 bytes")
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            key.verify(der, signing_input, _ECDSA_SHA256)
        except InvalidSignature:
            raise BadSignature("signature does not verify") from None
    elif alg == "EdDSA":
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise UnsupportedAlgorithm("alg EdDSA needs an Ed25519 key")
        if len(signature) != 64:
            raise BadSignature("EdDSA signature must be 64 bytes")
        try:
            key.verify(signature, signing_input)
        except InvalidSignature:
            raise BadSignature("signature does not verify") from None
    else:  # pragma: no cover - the allow-list check runs first
        raise UnsupportedAlgorithm(f"alg {alg!r} is not supported")


# Tokens of one issuer key share their header segment byte for byte: parse and check it once.
# Only well-formed headers are kept, bounded in number, so hostile input cannot grow it.
_HEADER_CACHE: dict[str, dict[str, Any]] = {}
_HEADER_CACHE_MAX: Final = 256


def _checked_header(header_b64: str) -> dict[str, Any]:
    cached = _HEADER_CACHE.get(header_b64)
    if cached is not None:
        return cached
    pad = _b64url_pad(header_b64, "header")
    header = _json_object(_b64url_decode(header_b64, pad, "header"), "header")
    if "crit" in header:
        raise MalformedJws("crit header parameters are not supported")
    alg = header.get("alg")
    if type(alg) is not str:
        raise MalformedJws("header alg missing or not a string")
    if alg not in _SUPPORTED_ALGS:
        raise UnsupportedAlgorithm(f"alg {alg[:20]!r} is not allowed")
    if "kid" in header and type(header["kid"]) is not str:
        raise MalformedJws("header kid is not a string")
    if len(_HEADER_CACHE) >= _HEADER_CACHE_MAX:
        _HEADER_CACHE.clear()
    _HEADER_CACHE[header_b64] = header
    return header


def verify_compact(
    token: str,
    *,
    key_for: Callable[[dict[str, Any]], PublicKey | None],
    allowed_algs: frozenset[str] = DEFAULT_ALGS,
    expected_typ: str | None,
    max_length: int = 16384,
) -> VerifiedJws:
    """Verify a compact JWS and return its header and payload.

    ``key_for`` gets the (parsed, checked) protected header and returns the public key for its
    ``kid``; it is called only after ``alg``, ``crit`` and ``typ`` have been checked. The key
    type must match ``alg``. The payload is parsed only once the signature has verified.
    ``typ`` is compared exactly (we issue the types we check); ``expected_typ=None`` skips the
    check, and must be said explicitly: explicit typing is what keeps one kind of token from
    being accepted as another (RFC 8725 §3.11).
    """
    if type(token) is not str:
        raise MalformedJws("token must be a str")
    if len(token) > max_length:
        raise MalformedJws(f"token longer than {max_length} characters")
    if _COMPACT_RE.fullmatch(token) is None:
        if "=" in token:
            raise MalformedJws("base64url padding is not allowed")
        if token.count(".") != 2:
            raise MalformedJws("compact JWS must have three parts")
        raise MalformedJws("character outside the base64url alphabet")
    first = token.index(".")
    second = token.index(".", first + 1)
    header_b64 = token[:first]
    payload_b64 = token[first + 1 : second]
    signature_b64 = token[second + 1 :]

    # Every segment's shape is checked before any key lookup or crypto work.
    payload_pad = _b64url_pad(payload_b64, "payload")
    signature_pad = _b64url_pad(signature_b64, "signature")
    header = _checked_header(header_b64)
    alg = header["alg"]
    if alg not in allowed_algs:
        raise UnsupportedAlgorithm(f"alg {alg[:20]!r} is not allowed")
    if expected_typ is not None and header.get("typ") != expected_typ:
        raise MalformedJws("unexpected typ")
    header = dict(header)  # the cached one stays unchanged whatever the caller does
    signature = _b64url_decode(signature_b64, signature_pad, "signature")

    try:
        key = key_for(header)
    except Exception as exc:  # any lookup failure means "no key for this token"
        raise UnknownKey("no key for this token") from exc
    if key is None:
        raise UnknownKey("no key for this token")

    _verify_signature(alg, key, signature, token[:second].encode("ascii"))
    payload = _json_object(_b64url_decode(payload_b64, payload_pad, "payload"), "payload")
    return VerifiedJws(header=header, payload=payload)
