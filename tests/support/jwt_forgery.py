"""Hostile JWTs, built byte by byte and signed with real keys, for the attack tests.

``Forger`` holds the issuer's real signer (so a test can show that even a *genuine* signature
does not rescue a token with a hostile header) and an attacker's own keys. Each attack returns
``(name, token, expected reason)``; the library test and the HTTP test run the same list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from idsvc.verification.rules import Reason
from keys.jwk import public_jwk, thumbprint

Sign = Callable[[bytes], bytes]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_es256(key: ec.EllipticCurvePrivateKey) -> Sign:
    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    loaded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return loaded


def compact(header: bytes | dict[str, Any], payload: bytes | dict[str, Any], sign: Sign) -> str:
    """A compact JWS over exactly these header and payload bytes (dicts are JSON-encoded)."""
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    p = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64(h)}.{b64(p)}"
    return f"{signing_input}.{b64(sign(signing_input.encode('ascii')))}"


def _self_signed(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "id.mcs.gov.kh")])
    start = datetime.now(UTC) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _to_one_mod_four(segment: str) -> str:
    return "A" * ((1 - len(segment)) % 4 or 4)


def _non_canonical_last(segment: str) -> str:
    """The same bytes spelt with non-zero unused trailing bits (decoders ignore them)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    rem = len(segment) % 4
    assert rem in (2, 3), "segment has no unused bits"
    value = alphabet.index(segment[-1]) | (1 if rem == 3 else 3)
    return segment[:-1] + alphabet[value]


@dataclass
class Forger:
    """Attacks against tokens of type ``typ`` from an issuer with key id ``kid``."""

    typ: str
    kid: str
    issuer_sign: Sign  # the issuer's real key (ES256 or EdDSA, per ``alg``)
    alg: str
    issuer_public: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    genuine: dict[str, Any]  # claims the issuer really signed
    trap_url: str = "http://127.0.0.1:9/jwks.json"  # where a jku/x5u would send a verifier

    def __post_init__(self) -> None:
        self.attacker_ec = ec.generate_private_key(ec.SECP256R1())
        self.attacker_ed = ed25519.Ed25519PrivateKey.generate()
        self.attacker_jwk = public_jwk(self.attacker_ec.public_key())
        self.attacker_kid = thumbprint(self.attacker_jwk)

    def header(self, **extra: Any) -> dict[str, Any]:
        return {"alg": self.alg, "kid": self.kid, "typ": self.typ, **extra}

    def genuine_token(self, **header_extra: Any) -> str:
        return compact(self.header(**header_extra), self.genuine, self.issuer_sign)

    def _public_pem(self) -> bytes:
        return self.issuer_public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _hs256(self, secret: bytes) -> Sign:
        return lambda data: hmac.new(secret, data, hashlib.sha256).digest()

    def alg_none(self) -> list[tuple[str, str, Reason]]:
        out = []
        for alg in ("none", "None", "NONE", "nOnE"):
            h = b64(json.dumps(self.header(alg=alg)).encode())
            p = b64(json.dumps(self.genuine).encode())
            out.append((f"alg {alg}, empty signature", f"{h}.{p}.", Reason.MALFORMED))
        out.append(("alg none, real signature", self.genuine_token(alg="none"), Reason.MALFORMED))
        out.append(
            (
                "alg missing",
                compact({"kid": self.kid, "typ": self.typ}, self.genuine, self.issuer_sign),
                Reason.MALFORMED,
            )
        )
        return out

    def hs256_with_public_key(self) -> list[tuple[str, str, Reason]]:
        jwk = public_jwk(self.issuer_public)
        secrets = {
            "PEM": self._public_pem(),
            "PEM without trailing newline": self._public_pem().rstrip(b"\n"),
            "JWK JSON": json.dumps(jwk).encode(),
            "JWK JSON, compact": json.dumps(jwk, separators=(",", ":")).encode(),
            "JWK x coordinate": base64.urlsafe_b64decode(jwk["x"] + "=="),
        }
        return [
            (
                f"HS256 keyed with the public {name}",
                compact(self.header(alg=alg), self.genuine, self._hs256(secret)),
                Reason.MALFORMED,
            )
            for name, secret in secrets.items()
            for alg in ("HS256", "HS512")[: 1 if name != "PEM" else 2]
        ]

    def kid_traversal(self) -> list[tuple[str, str, Reason]]:
        kids = {
            "path traversal": "../../etc/passwd",
            "absolute path": "/etc/passwd",
            "NUL byte": self.kid + "\x00../../etc/passwd",
            "very long": "A" * 8000,
            "SQL": "' OR '1'='1",
            "empty": "",
        }
        # Signed with the issuer's real key: only the kid is hostile.
        out = [
            (f"kid {name}", self.genuine_token(kid=kid), Reason.UNKNOWN_KEY)
            for name, kid in kids.items()
        ]
        for name, kid in {
            "number": 1,
            "list": [self.kid],
            "object": {"kid": self.kid},
            "null": None,
        }.items():
            out.append((f"kid {name}", self.genuine_token(kid=kid), Reason.MALFORMED))
        return out

    def key_injection(self) -> list[tuple[str, str, Reason]]:
        """The attacker's own key, offered in the header: it must never be used."""
        mine = raw_es256(self.attacker_ec)
        x5c = [base64.b64encode(_self_signed(self.attacker_ec)).decode()]
        own = {"alg": "ES256", "kid": self.attacker_kid, "typ": self.typ}
        victim = {"alg": "ES256", "kid": self.kid, "typ": self.typ}
        out = []
        injections: dict[str, dict[str, Any]] = {
            "jwk": {"jwk": self.attacker_jwk},
            "jku": {"jku": self.trap_url},
            "x5u": {"x5u": self.trap_url},
            "x5c": {"x5c": x5c},
        }
        for name, extra in injections.items():
            out.append(
                (
                    f"{name} with the attacker's kid",
                    compact(own | extra, self.genuine, mine),
                    Reason.UNKNOWN_KEY,
                )
            )
            if self.alg == "ES256":
                out.append(
                    (
                        f"{name} with the issuer's kid",
                        compact(victim | extra, self.genuine, mine),
                        Reason.BAD_SIGNATURE,
                    )
                )
        out.append(
            (
                "jwk without kid",
                compact(
                    {"alg": "ES256", "typ": self.typ, "jwk": self.attacker_jwk}, self.genuine, mine
                ),
                Reason.UNKNOWN_KEY,
            )
        )
        return out

    def crit(self) -> list[tuple[str, str, Reason]]:
        return [
            (
                "crit unknown extension",
                self.genuine_token(
                    crit=["urn:example:must-understand"], **{"urn:example:must-understand": True}
                ),
                Reason.MALFORMED,
            ),
            (
                "crit b64=false (RFC 7797)",
                self.genuine_token(crit=["b64"], b64=False),
                Reason.MALFORMED,
            ),
            ("crit empty list", self.genuine_token(crit=[]), Reason.MALFORMED),
        ]

    def oversized(self, length: int) -> str:
        """A token the issuer really signed, at least ``length`` characters long."""
        pad = "x" * max(0, length * 3 // 4)
        return compact(self.header(), self.genuine | {"pad": pad}, self.issuer_sign)

    def duplicate_members(self) -> list[tuple[str, str, Reason]]:
        h = json.dumps(self.header())[1:-1]
        p = json.dumps(self.genuine)[1:-1]
        sub = json.dumps(self.genuine.get("sub", "x"))
        iss = self.issuer_sign
        return [
            (
                "header alg twice (none last)",
                compact(f'{{{h},"alg":"none"}}'.encode(), self.genuine, iss),
                Reason.MALFORMED,
            ),
            (
                "header kid twice",
                compact(f'{{"kid":"{self.attacker_kid}",{h}}}'.encode(), self.genuine, iss),
                Reason.MALFORMED,
            ),
            (
                "header typ twice, escaped name",
                compact(f'{{{h},"t\\u0079p":"x"}}'.encode(), self.genuine, iss),
                Reason.MALFORMED,
            ),
            (
                "payload sub twice",
                compact(self.header(), f'{{{p},"sub":"EVIL-1"}}'.encode(), iss),
                Reason.MALFORMED,
            ),
            (
                "payload exp twice",
                compact(self.header(), f'{{{p},"exp":99999999999}}'.encode(), iss),
                Reason.MALFORMED,
            ),
            (
                "payload iss twice, first wins elsewhere",
                compact(self.header(), f'{{"sub":{sub},{p}}}'.encode(), iss),
                Reason.MALFORMED,
            ),
        ]

    def non_canonical_base64(self) -> list[tuple[str, str, Reason]]:
        token = self.genuine_token()
        h, p, s = token.split(".")
        std = base64.b64encode(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))).decode()
        out = [
            (
                "padding on the signature",
                f"{h}.{p}.{s}" + "=" * (-len(s) % 4 or 4),
                Reason.MALFORMED,
            ),
            ("padding on the header", f"{h}==.{p}.{s}", Reason.MALFORMED),
            ("standard alphabet with padding", f"{h}.{p}.{std}", Reason.MALFORMED),
            ("whitespace inside", f"{h}.{p[:10]} {p[10:]}.{s}", Reason.MALFORMED),
            ("newline inside", f"{h}.{p}\n.{s}", Reason.MALFORMED),
            ("four parts", f"{h}.{p}.{s}.{s}", Reason.MALFORMED),
            ("impossible length (4n+1)", f"{h}.{p + _to_one_mod_four(p)}.{s}", Reason.MALFORMED),
            ("non-ASCII lookalike", f"{h}.{p}.{s[:-1]}\u0410", Reason.MALFORMED),
        ]
        # The same signature bytes with the standard alphabet's '+' '/' (re-spelt so they occur).
        plus = s.replace("-", "+").replace("_", "/")
        if plus == s:
            plus = s[:-2] + "+/"
        out.append(("'+' and '/' in the signature", f"{h}.{p}.{plus}", Reason.MALFORMED))
        parts = [h, p, s]
        for i, name in enumerate(("header", "payload", "signature")):
            if len(parts[i]) % 4 in (2, 3):
                forged = [*parts[:i], _non_canonical_last(parts[i]), *parts[i + 1 :]]
                out.append(
                    (f"non-zero trailing bits in the {name}", ".".join(forged), Reason.MALFORMED)
                )
        return out

    def alg_key_mismatch(self) -> list[tuple[str, str, Reason]]:
        """The header names the other algorithm than the issuer key's type."""
        if self.alg == "ES256":
            return [
                (
                    "EdDSA header, issuer's P-256 kid, attacker Ed25519 signature",
                    compact(self.header(alg="EdDSA"), self.genuine, self.attacker_ed.sign),
                    Reason.MALFORMED,
                ),
                (
                    "ES384 header, issuer's kid",
                    compact(self.header(alg="ES384"), self.genuine, self.issuer_sign),
                    Reason.MALFORMED,
                ),
                (
                    "RS256 header, issuer's kid",
                    compact(self.header(alg="RS256"), self.genuine, self.issuer_sign),
                    Reason.MALFORMED,
                ),
            ]
        return [
            (
                "ES256 header, issuer's Ed25519 kid, attacker P-256 signature",
                compact(self.header(alg="ES256"), self.genuine, raw_es256(self.attacker_ec)),
                Reason.MALFORMED,
            ),
            (
                "Ed448 header, issuer's kid",
                compact(self.header(alg="Ed448"), self.genuine, self.issuer_sign),
                Reason.MALFORMED,
            ),
        ]

    def signature_shape(self) -> list[tuple[str, str, Reason]]:
        token = self.genuine_token()
        h, p, s = token.split(".")
        sig = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        out = [
            ("empty signature", f"{h}.{p}.", Reason.BAD_SIGNATURE),
            ("signature truncated", f"{h}.{p}.{b64(sig[:63])}", Reason.BAD_SIGNATURE),
            ("signature extended", f"{h}.{p}.{b64(sig + bytes(1))}", Reason.BAD_SIGNATURE),
            (
                "signature bit flipped",
                f"{h}.{p}.{b64(bytes([sig[0] ^ 1]) + sig[1:])}",
                Reason.BAD_SIGNATURE,
            ),
            (
                "payload changed, signature kept",
                f"{h}.{b64(json.dumps(self.genuine | {'sub': 'EVIL-1'}).encode())}.{s}",
                Reason.BAD_SIGNATURE,
            ),
        ]
        return out

    def every_attack(self, max_length: int) -> list[tuple[str, str, Reason]]:
        return [
            *self.alg_none(),
            *self.hs256_with_public_key(),
            *self.kid_traversal(),
            *self.key_injection(),
            *self.crit(),
            ("oversized, genuinely signed", self.oversized(max_length + 1), Reason.MALFORMED),
            *self.duplicate_members(),
            *self.non_canonical_base64(),
            *self.alg_key_mismatch(),
            *self.signature_shape(),
        ]
