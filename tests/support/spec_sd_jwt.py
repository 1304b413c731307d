"""The formats under the spec wallet (``tests/support/spec_wallet.py``), written from the
specifications alone: base64url and compact JWS (RFC 7515/7518), JWKs (RFC 7517), ``x5c``
chains, and SD-JWT (RFC 9901) with SD-JWT VC's rules: disclosures, digests, the processed
payload, key-binding JWTs. Nothing of ``idsvc``, ``keys``, ``cardio`` or ``mobile_api`` is
imported, so a misreading on the server side shows up as a disagreement instead of being
shared; ``library_check`` asks the OpenWallet Foundation's ``sd-jwt`` library for a third
opinion.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier

KB_TYP = "kb+jwt"
# SD-JWT VC, Registered JWT Claims: claims that MUST NOT be selectively disclosed.
NEVER_DISCLOSED = ("iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status")


class SpecViolation(AssertionError):
    """The server broke a rule of a spec (the message names it)."""


def require(condition: object, rule: str) -> None:
    if not condition:
        raise SpecViolation(rule)


# -- Encodings, JWKs and JWS ----------------------------------------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    require(re.fullmatch(r"[A-Za-z0-9_-]*", text), f"RFC 7515 §2: not base64url: {text[:40]!r}")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise SpecViolation(f"{what} is not JSON") from None


def _curve_size(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


_EC = {"ES256": (ec.SECP256R1, hashes.SHA256), "ES384": (ec.SECP384R1, hashes.SHA384)}


def public_key_of_jwk(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    require("d" not in jwk, "RFC 7517: a public JWK must not carry the private key")
    if jwk.get("kty") == "EC":
        curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}[jwk["crv"]]
        x, y = (int.from_bytes(unb64u(jwk[c]), "big") for c in ("x", "y"))
        return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(unb64u(jwk["x"]))
    raise SpecViolation(f"unsupported JWK {jwk.get('kty')}/{jwk.get('crv')}")


def jwk_of(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> dict[str, str]:
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
    n, size = key.public_numbers(), _curve_size(key.curve)
    crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64u(n.x.to_bytes(size, "big")),
        "y": b64u(n.y.to_bytes(size, "big")),
    }


def same_key(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("kty", "crv", "x", "y"))


def jws_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, payload, signing input, signature) of a compact JWS, unverified."""
    parts = token.split(".")
    require(len(parts) == 3, "RFC 7515 §7.1: a compact JWS has three parts")
    header = parse_json(unb64u(parts[0]), "JWS header")
    payload = parse_json(unb64u(parts[1]), "JWS payload")
    require(isinstance(header, dict) and isinstance(payload, dict), "JWS parts are objects")
    return header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), unb64u(parts[2])


def jws_verify(token: str, key: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS with ``key`` (by the header's ``alg``); its header and payload."""
    header, payload, signing_input, signature = jws_parts(token)
    alg = header.get("alg")
    require(alg not in (None, "none") and not str(alg).startswith("HS"), f"bad JWS alg {alg}")
    try:
        if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signing_input)
        elif alg in _EC and isinstance(key, ec.EllipticCurvePublicKey):
            curve, digest = _EC[alg]
            require(isinstance(key.curve, curve), f"{alg} needs {curve.name}")
            size = _curve_size(key.curve)
            require(len(signature) == 2 * size, f"RFC 7518 §3.4: {alg} signature is R||S")
            r, s = (int.from_bytes(signature[i : i + size], "big") for i in (0, size))
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(digest()))
        else:
            raise SpecViolation(f"JWS alg {alg} does not match the key")
    except InvalidSignature:
        raise SpecViolation(f"JWS signature does not verify (typ {header.get('typ')})") from None
    return header, payload


@dataclass
class HolderKey:
    """The wallet's own P-256 key (the key the credential is bound to)."""

    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def jwk(self) -> dict[str, str]:
        return jwk_of(self.private.public_key())

    def sign(self, header: dict[str, Any], payload: dict[str, Any]) -> str:
        head = b64u(json.dumps(header, separators=(",", ":")).encode())
        body = b64u(json.dumps(payload, separators=(",", ":")).encode())
        der = self.private.sign(f"{head}.{body}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{head}.{body}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def hs256_token(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """A MAC'd JWT (for proofs a server must refuse: OpenID4VCI F.1 forbids MAC algorithms)."""
    head = b64u(json.dumps(header).encode())
    body = b64u(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64u(mac)}"


def require_https(url: object, what: str) -> str:
    require(isinstance(url, str), f"{what} must be a string")
    parts = urlsplit(str(url))
    require(parts.scheme == "https" and parts.netloc, f"{what} must be an https URL: {url}")
    return str(url)


def check_chain(chain: object, anchors: Sequence[x509.Certificate], now: float) -> x509.Certificate:
    """An ``x5c`` chain (RFC 7515 §4.1.6: base64 DER, leaf first): each certificate signed by
    the next, all valid now, and the last one a trust anchor or signed by one. The leaf."""
    require(isinstance(chain, list) and chain, "x5c is a non-empty array")
    assert isinstance(chain, list)
    certs = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in chain]
    moment = datetime.fromtimestamp(now, UTC)
    for cert in certs:
        require(
            cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc,
            f"x5c certificate {cert.subject.rfc4514_string()} is not valid now",
        )
    for child, parent in itertools.pairwise(certs):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            name = child.subject.rfc4514_string()
            raise SpecViolation(f"x5c: {name} is not issued by the next certificate") from None
    if anchors:
        top = certs[-1]
        trusted = any(top == a for a in anchors)
        for anchor in anchors:
            try:
                top.verify_directly_issued_by(anchor)
                trusted = True
            except (ValueError, TypeError, InvalidSignature):
                continue
        require(trusted, "x5c does not end at a trust anchor")
    return certs[0]


# -- SD-JWT (RFC 9901) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Disclosure:
    encoded: str
    salt: str
    name: str | None  # None: an array element
    value: Any

    @property
    def digest(self) -> str:
        return b64u(hashlib.sha256(self.encoded.encode("ascii")).digest())


@dataclass(frozen=True)
class Held:
    """A received SD-JWT VC: the issuer JWT, its disclosures, the verified payload and the
    claims it discloses (the processed payload of RFC 9901 §7.1)."""

    issuer_jwt: str
    disclosures: tuple[Disclosure, ...]
    header: dict[str, Any]
    payload: dict[str, Any]
    claims: dict[str, Any]

    @property
    def iss(self) -> str:
        return str(self.payload["iss"])

    @property
    def credential_id(self) -> str:
        return str(self.payload["jti"])

    def sd_jwt(self, names: Iterable[str] | None = None) -> str:
        """The SD-JWT with only the disclosures of ``names`` (all when None), ending in ``~``."""
        keep = None if names is None else set(names)
        chosen = [d.encoded for d in self.disclosures if keep is None or d.name in keep]
        return "~".join([self.issuer_jwt, *chosen]) + "~"


def parse_disclosure(encoded: str) -> Disclosure:
    raw = parse_json(unb64u(encoded), "RFC 9901 §4.2: disclosure")
    require(isinstance(raw, list) and len(raw) in (2, 3), "§4.2: disclosure is a 2/3 array")
    require(isinstance(raw[0], str), "§4.2: the salt is a string")
    if len(raw) == 3:
        require(isinstance(raw[1], str), "§4.2.1: the claim name is a string")
        require(raw[1] not in ("_sd", "..."), f"§4.2.1: claim name {raw[1]!r} is forbidden")
        return Disclosure(encoded, raw[0], raw[1], raw[2])
    return Disclosure(encoded, raw[0], None, raw[1])


def split_sd_jwt(text: str) -> tuple[str, list[str], str]:
    """RFC 9901 §4: ``<issuer jwt>~<disclosure>~…~<kb-jwt or nothing>``."""
    parts = text.split("~")
    require(len(parts) >= 2, "§4: an SD-JWT has at least one ~")
    require(all(parts[1:-1]), "§4: no empty disclosure")
    return parts[0], parts[1:-1], parts[-1]


def unpack(payload: dict[str, Any], disclosures: Sequence[Disclosure]) -> dict[str, Any]:
    """RFC 9901 §7.1 step 3: replace digests by the disclosed claims; every disclosure used
    exactly once, no digest twice, no claim name overwritten."""
    alg = payload.get("_sd_alg", "sha-256")
    require(alg == "sha-256", f"§4.1.1: _sd_alg {alg!r}")
    by_digest = {d.digest: d for d in disclosures}
    require(len(by_digest) == len(disclosures), "§7.1: a disclosure is repeated")
    seen: set[str] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items() if k not in ("_sd", "_sd_alg")}
            digests = node.get("_sd", [])
            require(isinstance(digests, list), "§4.2.4.1: _sd is an array")
            for digest in digests:
                require(isinstance(digest, str), "§4.2.4.1: _sd holds strings")
                require(digest not in seen, f"§7.1: digest {digest} appears twice")
                seen.add(digest)
                found = by_digest.get(digest)
                if found is None:
                    continue  # a decoy or an undisclosed claim
                require(found.name is not None, "§7.1: an array disclosure in an _sd array")
                require(found.name not in out, f"§7.1: claim {found.name!r} already present")
                out[str(found.name)] = walk(found.value)
            return out
        if isinstance(node, list):
            items = []
            for item in node:
                if isinstance(item, dict) and set(item) == {"..."}:
                    digest = item["..."]
                    require(digest not in seen, f"§7.1: digest {digest} appears twice")
                    seen.add(digest)
                    found = by_digest.get(digest)
                    if found is not None:
                        require(found.name is None, "§7.1: an object disclosure in an array")
                        items.append(walk(found.value))
                else:
                    items.append(walk(item))
            return items
        return node

    claims = walk(payload)
    unused = set(by_digest) - seen
    require(not unused, f"§7.1 step 3.5: {len(unused)} disclosure(s) not referenced by a digest")
    return dict(claims)


def check_sd_jwt_vc(
    text: str,
    *,
    issuer_key: Callable[[dict[str, Any], dict[str, Any]], Any],
    typ: str,
    now: float,
    kb_expected: bool = False,
) -> Held:
    """The checks of RFC 9901 §7.1 and SD-JWT VC on an issued SD-JWT VC."""
    jwt, encoded, kb = split_sd_jwt(text)
    require(bool(kb) == kb_expected, "RFC 9901 §4: issued SD-JWT ends with ~ (no KB-JWT)")
    header, unverified, _, _ = jws_parts(jwt)
    require(
        header.get("typ") == typ, f"SD-JWT VC, JOSE Header: typ {header.get('typ')!r}, not {typ}"
    )
    header, payload = jws_verify(jwt, issuer_key(header, unverified))
    disclosures = [parse_disclosure(e) for e in encoded]
    for d in disclosures:
        require(
            d.name not in NEVER_DISCLOSED, f"SD-JWT VC, Registered JWT Claims: {d.name} disclosed"
        )
    claims = unpack(payload, disclosures)
    require(
        isinstance(payload.get("vct"), str), "SD-JWT VC, Registered JWT Claims: vct is REQUIRED"
    )
    for name in ("iat", "nbf", "exp"):
        require(isinstance(payload.get(name, 0), int), f"RFC 7519: {name} is a NumericDate")
    require(payload.get("nbf", 0) <= now + 60, "nbf is in the future")
    require(payload.get("exp", now + 1) > now, "the credential has expired")
    ref: Any = (payload.get("status") or {}).get("status_list")
    require(
        isinstance(ref, dict) and isinstance(ref.get("idx"), int) and ref["idx"] >= 0,
        "Token Status List, Referenced Token: status_list.idx is a non-negative integer",
    )
    require_https(ref.get("uri"), "Token Status List, Referenced Token: status_list.uri")
    return Held(jwt, tuple(disclosures), header, payload, claims)


def sd_hash(sd_jwt: str) -> str:
    """RFC 9901 §4.3.1: base64url SHA-256 of the ASCII SD-JWT up to and including the last ~."""
    return b64u(hashlib.sha256(sd_jwt.encode("ascii")).digest())


def with_kb(key: HolderKey, sd_jwt: str, *, aud: str, nonce: str, iat: float) -> str:
    """An SD-JWT+KB (RFC 9901 §4.3): the presentation followed by its KB-JWT."""
    kb = key.sign(
        {"typ": KB_TYP, "alg": "ES256"},
        {"iat": int(iat), "aud": aud, "nonce": nonce, "sd_hash": sd_hash(sd_jwt)},
    )
    return sd_jwt + kb


def library_check(
    text: str, issuer_jwk: dict[str, Any], *, aud: str | None = None, nonce: str | None = None
) -> dict[str, Any]:
    """The same SD-JWT (or SD-JWT+KB, with ``aud`` and ``nonce``) verified by the OpenWallet
    Foundation's ``sd-jwt`` library: its processed payload."""
    verifier = SDJWTVerifier(
        text,
        lambda _iss, _header: JWK.from_json(json.dumps(issuer_jwk)),
        expected_aud=aud,
        expected_nonce=nonce,
    )
    payload: dict[str, Any] = verifier.get_verified_payload()
    return payload
