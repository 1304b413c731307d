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
from typing import Any, Final, NamedTuple, Protocol, TypeGuard

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keys.algorithms import es256_der_from_raw

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
    "first_duplicate",
    "sign_compact",
    "strict_json",
    "verify_compact",
]

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

DEFAULT_ALGS: Final = frozenset({"ES256", "EdDSA"})
_SUPPORTED_ALGS: Final = DEFAULT_ALGS
_RESERVED_HEADERS: Final = frozenset({"alg", "kid", "typ", "crit"})

# The shape (three parts) and the strict base64url alphabet of a whole token: what
# ``_shape_error`` names when a token fails the cheaper checks of ``_segments``.
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


class VerifiedJws(NamedTuple):
    """Immutable like the frozen dataclass it replaces, at half its construction cost."""

    header: dict[str, Any]
    payload: dict[str, Any]


def _b64url_encode(data: bytes) -> str:
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii").rstrip("=")
    return encoded.replace("+", "-").replace("/", "_")


def _b64url_decode(segment: str, what: str) -> bytes:
    """The bytes of a segment of a token that holds no '=', '+', '/' nor non-ASCII character
    (``_segments`` screens the token first): the strict decoder refuses any other character
    outside the alphabet, so the alphabet check and the decoding are one pass."""
    rem = len(segment) % 4
    pad = _PAD[rem]
    if pad is None:
        raise MalformedJws(f"{what}: impossible base64url length")
    if rem and segment[-1] not in _CANONICAL_LAST[rem]:
        raise MalformedJws(f"{what}: non-canonical base64url")
    try:
        # str.replace is ~40x faster than str.translate for this two-character mapping.
        return binascii.a2b_base64(
            segment.replace("-", "+").replace("_", "/") + pad, strict_mode=True
        )
    except binascii.Error:
        raise MalformedJws(f"{what}: character outside the base64url alphabet") from None


class _DuplicateMember(ValueError):
    pass


def first_duplicate(pairs: list[tuple[str, Any]]) -> str:
    """The first member name that ``pairs`` (a JSON object's, as ``object_pairs_hook`` gets
    them) holds twice. Callers build ``dict(pairs)`` in C and call this only when the dict
    came out shorter than the pairs, to name the duplicate (request bodies use it too)."""
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            return name
        seen.add(name)
    raise ValueError("no member name is repeated")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # RFC 7515 §5.2 lets parsers take the last value; two JOSE libraries then disagree on
        # what was signed, so a duplicate is refused outright.
        raise _DuplicateMember(f"duplicate member {first_duplicate(pairs)[:40]!r}")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads with any keyword argument constructs a fresh decoder on every call.
_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant
)


# The decoder's C scanner, called directly: JSONDecoder.decode adds two regex matches for
# whitespace around the value (~0.6 µs a payload), which compact JWS JSON does not have.
# (JSONDecoder.__init__ sets scan_once; typeshed does not declare it.)
_SCAN_ONCE: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


def strict_json(raw: bytes, what: str) -> Any:
    """Any JSON value, parsed as strictly as a JWS header: UTF-8 only, no duplicate member
    names, no NaN/Infinity; else ``MalformedJws`` naming ``what`` (SD-JWT disclosures are
    JSON arrays, so ``_json_object`` alone does not serve them)."""
    try:
        # Decoding first pins UTF-8: json.loads(bytes) would also guess UTF-16 and UTF-32.
        text = raw.decode("utf-8")
        try:
            value, end = _SCAN_ONCE(text, 0)
        except StopIteration:  # no value at 0: leading whitespace, or not JSON at all
            end = -1
        if end != len(text):  # whitespace around the value or trailing data: decode() judges
            value = _DECODER.decode(text)
    except _DuplicateMember as exc:
        raise MalformedJws(f"{what}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedJws(f"{what}: not valid UTF-8 JSON") from None
    return value


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    value = strict_json(raw, what)
    if type(value) is not dict:
        raise MalformedJws(f"{what}: not a JSON object")
    return value


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


# isinstance against cryptography's key ABCs costs ~0.3 µs (the ABC machinery); the concrete
# classes that passed it are remembered (a handful: the types of the loaded backend).
_EC_KEY_TYPES: set[type] = set()
_ED25519_KEY_TYPES: set[type] = set()


def _is_ec_key(key: object) -> TypeGuard[ec.EllipticCurvePublicKey]:
    if type(key) in _EC_KEY_TYPES:
        return True
    if isinstance(key, ec.EllipticCurvePublicKey):
        _EC_KEY_TYPES.add(type(key))
        return True
    return False


def _is_ed25519_key(key: object) -> TypeGuard[ed25519.Ed25519PublicKey]:
    # The same as _is_ec_key: a TypeGuard generic over the key class would need a concrete
    # class (mypy's type-abstract), and these are ABCs.
    if type(key) in _ED25519_KEY_TYPES:
        return True
    if isinstance(key, ed25519.Ed25519PublicKey):
        _ED25519_KEY_TYPES.add(type(key))
        return True
    return False


def _verify_signature(alg: str, key: object, signature: bytes, signing_input: bytes) -> None:
    if alg == "ES256":
        if not _is_ec_key(key) or not isinstance(key.curve, ec.SECP256R1):
            raise UnsupportedAlgorithm("alg ES256 needs a P-256 key")
        if len(signature) != 64:
            raise BadSignature("ES256 signature must be 64 bytes")
        try:
            key.verify(es256_der_from_raw(signature), signing_input, _ECDSA_SHA256)
        except InvalidSignature:
            raise BadSignature("signature does not verify") from None
    elif alg == "EdDSA":
        if not _is_ed25519_key(key):
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
    header = _json_object(_b64url_decode(header_b64, "header"), "header")
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


def _segments(token: str) -> tuple[int, bytes, bytes, dict[str, Any]]:
    """(index of the second '.', payload bytes, signature bytes, checked header).

    The strict alphabet without a regex pass over the token: '=', '+', '/' and non-ASCII are
    looked for here (fast C searches), any other character outside it (a space, a fourth '.')
    is refused by the strict decoder of its segment, or was by that of the cached header.
    """
    if not token.isascii() or "=" in token or "+" in token or "/" in token:
        raise MalformedJws("character outside the base64url alphabet")
    first = token.find(".")
    second = token.find(".", first + 1)
    if first < 0 or second < 0:
        raise MalformedJws("compact JWS must have three parts")
    payload = _b64url_decode(token[first + 1 : second], "payload")
    signature = _b64url_decode(token[second + 1 :], "signature")
    return second, payload, signature, _checked_header(token[:first])


def _shape_error(token: str) -> MalformedJws | None:
    """What is wrong with the token's shape or alphabet, or None when both are right."""
    if _COMPACT_RE.fullmatch(token) is not None:
        return None
    if "=" in token:
        return MalformedJws("base64url padding is not allowed")
    if token.count(".") != 2:
        return MalformedJws("compact JWS must have three parts")
    return MalformedJws("character outside the base64url alphabet")


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
    # Every segment's shape is checked before any key lookup or crypto work.
    try:
        second, payload_raw, signature, header = _segments(token)
    except JwsError:
        shape = _shape_error(token)  # the first thing wrong, as one pass over the token sees it
        if shape is not None:
            raise shape from None
        raise
    alg = header["alg"]
    if alg not in allowed_algs:
        raise UnsupportedAlgorithm(f"alg {alg[:20]!r} is not allowed")
    if expected_typ is not None and header.get("typ") != expected_typ:
        raise MalformedJws("unexpected typ")
    header = dict(header)  # the cached one stays unchanged whatever the caller does

    try:
        key = key_for(header)
    except Exception as exc:  # any lookup failure means "no key for this token"
        raise UnknownKey("no key for this token") from exc
    if key is None:
        raise UnknownKey("no key for this token")

    _verify_signature(alg, key, signature, token[:second].encode("ascii"))
    return VerifiedJws(header, _json_object(payload_raw, "payload"))
