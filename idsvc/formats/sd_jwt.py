"""SD-JWT (RFC 9901): selective disclosure over our compact JWS, and key binding (KB-JWT).

An SD-JWT is ``<issuer JWT>~<disclosure>~...~<disclosure>~<KB-JWT or nothing>``. A disclosure
is the base64url of the JSON array ``[salt, name, value]``; the issuer JWT carries, instead of
each selectively disclosable claim, the base64url SHA-256 of the disclosure's ASCII text in an
``_sd`` array (and ``_sd_alg: "sha-256"``). The holder presents the issuer JWT with only the
disclosures it chooses, then a KB-JWT (``typ: kb+jwt``) signed by the key in ``cnf.jwk`` over
``iat``, ``aud``, ``nonce`` and ``sd_hash`` (the digest of everything before the KB-JWT).

What this module refuses, each with an :class:`SdJwtError` whose ``code`` is stable:

- ``malformed``: not the ``~`` shape, too long, too many disclosures, a disclosure that is not
  canonical base64url of a strict JSON array (duplicate member names refused as in ``jws``),
  an ``_sd_alg`` other than ``sha-256``, an ``_sd`` that is not an array of strings;
- ``bad_disclosure``: a disclosure whose digest the issuer JWT does not list (a tampered one),
  the same disclosure twice, a digest listed twice, a claim name clash, the reserved names
  ``_sd`` and ``...``, and array-element disclosures (two-member arrays: our issuer never
  makes them, so one here was not made by us);
- ``kb_invalid``: a KB-JWT with a bad signature, another ``alg`` than ES256 (``none``,
  ``HS256`` ...), another ``typ``, a wrong ``aud``, ``nonce`` or ``sd_hash``, a stale or future
  ``iat``, or a holder key that is not a public P-256 JWK.

The issuer JWT's own signature, ``typ`` and claims are checked by :func:`verify_issuer_jwt`
(trust is the caller's: it passes ``key_for``). Pure: no clock (``now`` is a parameter).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from idsvc.formats.jws import (
    BadSignature,
    JwsError,
    JwsSigner,
    MalformedJws,
    PublicKey,
    UnsupportedAlgorithm,
    VerifiedJws,
    sign_compact,
    strict_json,
    verify_compact,
)
from keys.errors import InvalidJwk, KeysError
from keys.jwk import b64url_decode, b64url_encode, public_key_from_jwk

__all__ = [
    "KB_TYP",
    "MAX_DISCLOSURES",
    "MAX_SD_JWT_CHARS",
    "SD_ALG",
    "Disclosure",
    "SdJwt",
    "SdJwtError",
    "check_kb_jwt",
    "disclosed_claims",
    "issue_sd_jwt",
    "make_disclosure",
    "make_kb_jwt",
    "parse",
    "sd_hash",
    "verify_issuer_jwt",
]

SD_ALG: Final = "sha-256"
KB_TYP: Final = "kb+jwt"

# Bounds on hostile input, checked before any decoding. The largest honest disclosure is the
# holder's photo (a data: URI of a small JPEG); 256 KiB leaves room for it several times over.
MAX_SD_JWT_CHARS: Final = 256 * 1024
MAX_DISCLOSURES: Final = 64
MAX_ISSUER_JWT_CHARS: Final = 16 * 1024
MAX_KB_JWT_CHARS: Final = 4096
_MAX_DEPTH: Final = 16

# RFC 9901 §4.2.1 forbids _sd and ... as a disclosure's claim name (_sd_alg is ours: it names
# the digest of all others); SD-JWT VC (draft) keeps the registered claims a verifier must
# always see out of selective disclosure.
_RESERVED_NAMES: Final = frozenset({"_sd", "...", "_sd_alg"})
_ALWAYS_VISIBLE: Final = frozenset({"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"})

# Every part of an SD-JWT is base64url, joined by "." (inside JWTs) and "~".
_SD_JWT_RE: Final = re.compile(r"[A-Za-z0-9_.~-]*", re.ASCII)
_ARRAY_DIGEST_KEY: Final = "..."

# Disclosures are written as json.dumps writes them by default (", " separators) so that a
# salt, name and value reproduce the RFC's examples byte for byte; ensure_ascii=False keeps
# Lao and Khmer names at their UTF-8 size (RFC 9901 §4.2.1 allows either spelling).
_DISCLOSURE_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False)

SdJwtErrorCode = Literal["malformed", "bad_disclosure", "kb_invalid"]


class SdJwtError(ValueError):
    """An SD-JWT or KB-JWT that is refused; ``code`` is stable, ``reason`` says which check."""

    def __init__(self, code: SdJwtErrorCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code: SdJwtErrorCode = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Disclosure:
    salt: str
    name: str
    value: Any
    encoded: str  # the base64url text exactly as received or issued: the digest is over it
    digest: str


def _digest(encoded: str) -> str:
    # RFC 9901 §4.2.3: the digest is over the ASCII bytes of the base64url text, not the JSON.
    return b64url_encode(hashlib.sha256(encoded.encode("ascii")).digest())


def _new_salt() -> str:
    return b64url_encode(secrets.token_bytes(16))  # 128 bits, RFC 9901 §4.2.1's recommendation


def make_disclosure(name: str, value: Any, *, salt: str | None = None) -> Disclosure:
    """The disclosure of one object property; a fresh 128-bit salt unless one is given."""
    if not isinstance(name, str) or name in _RESERVED_NAMES:
        raise ValueError(f"{name!r} cannot be a disclosed claim name")
    salt = _new_salt() if salt is None else salt
    text = _DISCLOSURE_ENCODER.encode([salt, name, value])
    encoded = b64url_encode(text.encode("utf-8"))
    return Disclosure(salt=salt, name=name, value=value, encoded=encoded, digest=_digest(encoded))


def _decoy_digest() -> str:
    # RFC 9901 §4.2.5: a decoy is the digest of a random value, indistinguishable from a real one.
    return b64url_encode(hashlib.sha256(secrets.token_bytes(32)).digest())


def issue_sd_jwt(
    claims: dict[str, Any],
    disclosable: Iterable[str],
    signer: JwsSigner,
    *,
    typ: str,
    header: dict[str, Any] | None = None,
    decoys: int = 0,
) -> str:
    """Sign ``claims`` with each top-level claim named in ``disclosable`` made a disclosure.

    Names in ``disclosable`` that ``claims`` lacks are skipped (an optional field the person
    has no value for). Returns ``"<jwt>~d1~...~dn~"``: every disclosure, no KB-JWT.
    """
    if decoys < 0:
        raise ValueError("decoys must be >= 0")
    if "_sd" in claims or "_sd_alg" in claims:
        raise ValueError("claims must not already carry _sd or _sd_alg")
    wanted = set(disclosable)
    refused = sorted(wanted & (_RESERVED_NAMES | _ALWAYS_VISIBLE))
    if refused:
        raise ValueError(f"claims {refused} must stay visible")
    payload: dict[str, Any] = {}
    disclosures: list[Disclosure] = []
    for name, value in claims.items():
        if name in wanted:
            disclosures.append(make_disclosure(name, value))
        else:
            payload[name] = value
    digests = [d.digest for d in disclosures] + [_decoy_digest() for _ in range(decoys)]
    if digests:
        # Sorted, so the order of _sd says nothing about the order of the claims (RFC 9901 §4.2.4).
        payload["_sd"] = sorted(digests)
    payload["_sd_alg"] = SD_ALG
    jwt = sign_compact(payload, signer, typ=typ, extra_headers=header)
    return jwt + "~" + "".join(d.encoded + "~" for d in disclosures)


@dataclass(frozen=True, slots=True)
class SdJwt:
    jwt: str
    disclosures: tuple[Disclosure, ...]
    kb_jwt: str | None

    def without_kb(self) -> str:
        """``"<jwt>~d...~"``: exactly the text a KB-JWT's ``sd_hash`` covers."""
        return self.jwt + "~" + "".join(d.encoded + "~" for d in self.disclosures)

    def serialize(self) -> str:
        return self.without_kb() + (self.kb_jwt or "")

    def keep(self, names: Iterable[str]) -> SdJwt:
        """Only the disclosures of these claims (the holder's choice), without any KB-JWT."""
        chosen = set(names)
        kept = tuple(d for d in self.disclosures if d.name in chosen)
        return replace(self, disclosures=kept, kb_jwt=None)


def _decode_disclosure(encoded: str, index: int) -> Disclosure:
    what = f"disclosure {index}"
    try:
        raw = b64url_decode(encoded)  # strict and canonical: one spelling, one digest
    except InvalidJwk:
        raise SdJwtError("malformed", f"{what} is not canonical base64url") from None
    try:
        value = strict_json(raw, what)
    except MalformedJws as exc:
        raise SdJwtError("malformed", str(exc)) from None
    if type(value) is not list:
        raise SdJwtError("malformed", f"{what} is not a JSON array")
    if len(value) == 2:
        raise SdJwtError("bad_disclosure", f"{what} discloses an array element (not issued here)")
    if len(value) != 3:
        raise SdJwtError("malformed", f"{what} is not [salt, name, value]")
    salt, name, claim = value
    if type(salt) is not str or type(name) is not str:
        raise SdJwtError("malformed", f"{what}: salt and name must be strings")
    if name in ("_sd", _ARRAY_DIGEST_KEY):
        raise SdJwtError("bad_disclosure", f"{what} uses the reserved name {name!r}")
    return Disclosure(salt=salt, name=name, value=claim, encoded=encoded, digest=_digest(encoded))


def parse(text: str) -> SdJwt:
    """Split an SD-JWT (or a presentation) and decode its disclosures; signatures unchecked."""
    if type(text) is not str:
        raise SdJwtError("malformed", "SD-JWT must be a str")
    if len(text) > MAX_SD_JWT_CHARS:
        raise SdJwtError("malformed", f"SD-JWT longer than {MAX_SD_JWT_CHARS} characters")
    if _SD_JWT_RE.fullmatch(text) is None:
        raise SdJwtError("malformed", "character outside base64url, '.' and '~'")
    parts = text.split("~")
    if len(parts) < 2:
        raise SdJwtError("malformed", "no '~' after the issuer JWT")
    jwt, encoded, last = parts[0], parts[1:-1], parts[-1]
    if jwt.count(".") != 2:
        raise SdJwtError("malformed", "the issuer JWT is not a compact JWS")
    if len(encoded) > MAX_DISCLOSURES:
        raise SdJwtError("malformed", f"more than {MAX_DISCLOSURES} disclosures")
    if last and last.count(".") != 2:
        raise SdJwtError("malformed", "the part after the last '~' is not a KB-JWT")
    disclosures = []
    for index, item in enumerate(encoded):
        if not item or "." in item:
            raise SdJwtError("malformed", f"disclosure {index} is empty or not base64url")
        disclosures.append(_decode_disclosure(item, index))
    return SdJwt(jwt=jwt, disclosures=tuple(disclosures), kb_jwt=last or None)


class _Resolver:
    """RFC 9901 §7.1: replace digests by their disclosures, recursively, exactly once."""

    def __init__(self, disclosures: Sequence[Disclosure]) -> None:
        self.by_digest: dict[str, Disclosure] = {}
        for d in disclosures:
            if d.digest in self.by_digest:
                raise SdJwtError("bad_disclosure", f"disclosure of {d.name!r} given twice")
            self.by_digest[d.digest] = d
        self.seen: set[str] = set()
        self.used: set[str] = set()

    def _mark(self, digest: object) -> Disclosure | None:
        if type(digest) is not str:
            raise SdJwtError("malformed", "a digest in _sd is not a string")
        if digest in self.seen:
            raise SdJwtError("bad_disclosure", "a digest appears more than once in the JWT")
        self.seen.add(digest)
        found = self.by_digest.get(digest)
        if found is not None:
            self.used.add(digest)
        return found

    def value(self, value: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise SdJwtError("malformed", f"claims nested deeper than {_MAX_DEPTH}")
        if type(value) is dict:
            return self.obj(value, depth + 1)
        if type(value) is list:
            return self.array(value, depth + 1)
        return value

    def obj(self, obj: dict[str, Any], depth: int) -> dict[str, Any]:
        out = {k: self.value(v, depth) for k, v in obj.items() if k != "_sd"}
        digests = obj.get("_sd", [])
        if type(digests) is not list:
            raise SdJwtError("malformed", "_sd is not an array")
        for digest in digests:
            found = self._mark(digest)
            if found is None:
                continue  # a decoy, or a claim the holder did not disclose
            if found.name in out:
                raise SdJwtError("bad_disclosure", f"claim {found.name!r} is given twice")
            out[found.name] = self.value(found.value, depth)
        return out

    def array(self, items: list[Any], depth: int) -> list[Any]:
        out = []
        for item in items:
            if type(item) is dict and _ARRAY_DIGEST_KEY in item:
                if len(item) != 1:
                    raise SdJwtError("malformed", "an array digest object has other members")
                if self._mark(item[_ARRAY_DIGEST_KEY]) is not None:
                    raise SdJwtError("bad_disclosure", "a property disclosure used as an element")
                continue  # an element not disclosed is removed (§7.1)
            out.append(self.value(item, depth))
        return out


def disclosed_claims(payload: dict[str, Any], disclosures: Sequence[Disclosure]) -> dict[str, Any]:
    """The issuer JWT's claims with every disclosure put in place and ``_sd``/``_sd_alg`` gone.

    Every disclosure's digest must be listed in the payload exactly once: an unreferenced one
    (tampered, or from another credential) or a repeated one raises ``bad_disclosure``.
    """
    alg = payload.get("_sd_alg", SD_ALG)  # §4.1.1: absent means sha-256
    if alg != SD_ALG:
        raise SdJwtError("malformed", f"_sd_alg {str(alg)[:20]!r} is not supported")
    resolver = _Resolver(disclosures)
    claims = resolver.obj({k: v for k, v in payload.items() if k != "_sd_alg"}, 0)
    unused = [d.name for d in disclosures if d.digest not in resolver.used]
    if unused:
        raise SdJwtError("bad_disclosure", f"disclosure of {unused[0]!r} is not in the JWT")
    return claims


def sd_hash(presentation_without_kb: str) -> str:
    """RFC 9901 §4.3.1: base64url SHA-256 of the ASCII text up to and including the last '~'."""
    return b64url_encode(hashlib.sha256(presentation_without_kb.encode("ascii")).digest())


def verify_issuer_jwt(
    sd_jwt: SdJwt,
    *,
    key_for: Callable[[dict[str, Any]], PublicKey | None],
    typs: Iterable[str],
) -> VerifiedJws:
    """Check the issuer JWT's signature and ``typ`` (one of ``typs``); JwsError on failure.

    The payload returned is the signed one, digests and all: pass it with the disclosures to
    :func:`disclosed_claims`. Validity period, status and ``cnf`` stay the caller's rules.
    """
    allowed = frozenset(typs)
    verified = verify_compact(
        sd_jwt.jwt, key_for=key_for, expected_typ=None, max_length=MAX_ISSUER_JWT_CHARS
    )
    if verified.header.get("typ") not in allowed:
        raise MalformedJws("unexpected typ")
    return verified


def make_kb_jwt(
    sd_jwt_without_kb: str, signer: JwsSigner, *, aud: str, nonce: str, now: datetime
) -> str:
    """The holder's KB-JWT over this presentation (ES256; no ``kid``: the key is in ``cnf``)."""
    if signer.alg != "ES256":
        raise ValueError("holder keys are ES256 (P-256)")
    if not sd_jwt_without_kb.endswith("~"):
        raise ValueError("sd_hash covers the SD-JWT up to and including its last '~'")
    claims = {
        "iat": int(now.timestamp()),
        "aud": aud,
        "nonce": nonce,
        "sd_hash": sd_hash(sd_jwt_without_kb),
    }
    return sign_compact(claims, signer, typ=KB_TYP, include_kid=False)


def _holder_key(holder_jwk: Mapping[str, Any]) -> PublicKey:
    try:
        key = public_key_from_jwk(holder_jwk)
    except (KeysError, TypeError) as exc:
        raise SdJwtError("kb_invalid", f"holder key in cnf is not usable: {exc}") from None
    if holder_jwk.get("kty") != "EC":
        raise SdJwtError("kb_invalid", "holder key in cnf is not a P-256 key")
    return key


def check_kb_jwt(
    kb_jwt: str,
    holder_jwk: dict[str, Any],
    *,
    sd_jwt_without_kb: str,
    aud: str,
    nonce: str,
    now: datetime,
    max_age: timedelta,
    max_future: timedelta = timedelta(seconds=60),
) -> None:
    """RFC 9901 §7.3: the KB-JWT is signed by ``holder_jwk``, for ``aud`` and ``nonce``, over
    exactly ``sd_jwt_without_kb``, and made within ``max_age`` (a phone's clock may run up to
    ``max_future`` ahead). The caller checks that the nonce was one it issued, once."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    key = _holder_key(holder_jwk)
    try:
        verified = verify_compact(
            kb_jwt,
            key_for=lambda _header: key,
            allowed_algs=frozenset({"ES256"}),
            expected_typ=KB_TYP,
            max_length=MAX_KB_JWT_CHARS,
        )
    except UnsupportedAlgorithm:
        raise SdJwtError("kb_invalid", "KB-JWT alg is not ES256") from None
    except BadSignature:
        raise SdJwtError("kb_invalid", "KB-JWT signature does not verify") from None
    except JwsError as exc:
        raise SdJwtError("kb_invalid", f"KB-JWT malformed: {exc}") from None
    claims = verified.payload
    claim_aud = claims.get("aud")
    if type(claim_aud) is not str or claim_aud != aud:
        raise SdJwtError("kb_invalid", "KB-JWT aud is not this verifier")
    claim_nonce = claims.get("nonce")
    if type(claim_nonce) is not str or not hmac.compare_digest(
        claim_nonce.encode("utf-8"), nonce.encode("utf-8")
    ):
        raise SdJwtError("kb_invalid", "KB-JWT nonce is not the one asked for")
    claim_hash = claims.get("sd_hash")
    if type(claim_hash) is not str or not hmac.compare_digest(
        claim_hash.encode("utf-8"), sd_hash(sd_jwt_without_kb).encode("ascii")
    ):
        raise SdJwtError("kb_invalid", "KB-JWT sd_hash does not match the presentation")
    iat = claims.get("iat")
    if type(iat) is not int:
        raise SdJwtError("kb_invalid", "KB-JWT iat missing or not an integer")
    now_s = now.timestamp()
    if iat < now_s - max_age.total_seconds():
        raise SdJwtError("kb_invalid", "KB-JWT iat is stale")
    if iat > now_s + max_future.total_seconds():
        raise SdJwtError("kb_invalid", "KB-JWT iat is in the future")
