"""Generate the verifier test vectors (``corpus.json``) with the project's own encoders.

Keys and clock are fixed, so the corpus says the same thing every time it is generated (ECDSA
signatures are randomised, so the bytes of ES256 tokens differ between runs; the verdicts do
not). Each vector names the offline trust data it is checked against (``context``), the time
of the check (``now``) and the answer it must get (``expect``), written here by hand: the
Python verifier (``idsvc.verification.rules`` + ``idsvc.verification.offline``) and the web verifier
(``mobile_api/static/verify/verifier.js``) are both held to it.

Run: ``.venv/bin/python -m tests.vectors.generate`` (rewrites tests/vectors/corpus.json).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from idsvc.formats.credentials import CREDENTIAL_TYP, Holder, credential_claims
from idsvc.formats.jws import JwsSigner, sign_compact
from idsvc.formats.status_list import STATUSLIST_TYP, StatusList, status_list_claims
from keys.file_signer import FileSigner
from keys.jwk import public_jwk
from tests.vectors import claim169_vectors

CORPUS = Path(__file__).with_name("corpus.json")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HARD_LIMIT_S = 7 * 86_400
ISS_KH = "https://id.mcs.gov.kh/issuers/default"
ISS_LA = "https://id.moha.gov.la/issuers/default"
LIST_KH = "https://id.mcs.gov.kh/status-lists/4f1c2a9e0b7d3c58"
LIST_LA = "https://id.moha.gov.la/status-lists/a0b1c2d3e4f50617"
# A list served from another host than iss (the out-of-the-box IDSVC_PUBLIC_URL).
LIST_KH_ELSEWHERE = "http://127.0.0.1:8000/status-lists/5e6f708192a3b4c5"
LIST_SIZE = 1024
IDX_VALID, IDX_REVOKED, IDX_SUSPENDED = 17, 403, 977


def _seed(label: str) -> bytes:
    return hashlib.sha256(f"idsvc test vector key {label}".encode()).digest()


def es256_signer(label: str) -> FileSigner:
    private = ec.derive_private_key(int.from_bytes(_seed(label), "big"), ec.SECP256R1())
    return FileSigner(private, path=Path(f"/nonexistent/{label}.pem"))


def ed25519_signer(label: str) -> FileSigner:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(_seed(label))
    return FileSigner(private, path=Path(f"/nonexistent/{label}.pem"))


def jwks_of(*signers: FileSigner) -> dict[str, Any]:
    return {
        "keys": [
            {**public_jwk(s.public_key()), "kid": s.kid, "alg": s.alg, "use": "sig"}
            for s in signers
        ]
    }


KHMER = Holder(
    employee_id="KH-MCS-010002",
    name="សុខ ចន្ថា",
    name_latin="Sok Chantha",
    birthdate=date(1986, 4, 14),
    ministry="Ministry of Civil Service",
    unit="General Department of Civil Service Policy",
    position="Deputy Director",
    grade="A1",
    category="civil_servant",
    card_serial="KH00010002",
)
LAO = Holder(
    employee_id="LA-MOHA-000101",
    name="ສົມພອນ ແກ້ວມະນີ",
    name_latin="Somphone Keomany",
    birthdate=date(1984, 3, 12),
    ministry="Ministry of Home Affairs",
    unit="Department of Civil Service Management",
    position="Deputy Director",
    grade="K5",
    category="civil_servant",
    card_serial="LA00000101",
)


@dataclass(frozen=True)
class Issuer:
    iss: str
    signer: FileSigner
    list_uri: str


KH = Issuer(ISS_KH, es256_signer("kh-es256"), LIST_KH)
LA = Issuer(ISS_LA, ed25519_signer("la-ed25519"), LIST_LA)
KH_ELSEWHERE = Issuer(ISS_KH, KH.signer, LIST_KH_ELSEWHERE)
STRANGER = es256_signer("not-in-any-jwks")


def credential(
    issuer: Issuer,
    holder: Holder,
    *,
    idx: int = IDX_VALID,
    iat: datetime = NOW - timedelta(days=30),
    days: int = 1825,
    signer: JwsSigner | None = None,
    iss: str | None = None,
    typ: str = CREDENTIAL_TYP,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> str:
    claims = credential_claims(
        iss=iss or issuer.iss,
        jti=hashlib.sha256(f"{holder.employee_id}/{iat.isoformat()}".encode()).hexdigest()[:32],
        holder=holder,
        issued_at=iat,
        expires_at=iat + timedelta(days=days),
        status_uri=issuer.list_uri,
        status_idx=idx,
        cnf_jwk=None,
    )
    if edit is not None:
        edit(claims)
    return sign_compact(claims, signer or issuer.signer, typ=typ)


def status_list_token(
    issuer: Issuer,
    *,
    iat: datetime,
    ttl: int = 3600,
    exp: datetime | None = None,
    signer: JwsSigner | None = None,
) -> str:
    lst = StatusList(LIST_SIZE, bits=2)
    lst.set(IDX_REVOKED, 1)
    lst.set(IDX_SUSPENDED, 2)
    claims = status_list_claims(
        lst,
        uri=issuer.list_uri,
        iat=int(iat.timestamp()),
        exp=int((exp or iat + timedelta(seconds=ttl * 24)).timestamp()),
        ttl=ttl,
        iss=issuer.iss,
    )
    return sign_compact(claims, signer or issuer.signer, typ=STATUSLIST_TYP)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_jws(header: dict[str, Any], payload_json: str, signer: JwsSigner) -> str:
    """A JWS over exactly ``payload_json`` (sign_compact would refuse what this makes)."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(payload_json.encode())
    return signing_input + "." + _b64(signer.sign(signing_input.encode("ascii")))


def duplicate_member(token: str, signer: JwsSigner) -> str:
    """The token's claims with a second, different ``sub``: parsers would disagree on it."""
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    text = json.dumps(payload, ensure_ascii=False)[:-1] + ', "sub": "LA-MOHA-000999"}'
    return raw_jws({"alg": "ES256", "kid": signer.kid, "typ": CREDENTIAL_TYP}, text, signer)


def tamper(token: str, segment: int) -> str:
    """Change one character in the middle of a segment, keeping the text well formed."""
    parts = token.split(".")
    middle = len(parts[segment]) // 2
    char = parts[segment][middle]
    parts[segment] = (
        parts[segment][:middle] + ("B" if char != "B" else "C") + parts[segment][middle + 1 :]
    )
    return ".".join(parts)


def _context(
    lists: dict[str, tuple[str, datetime]], issuers: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "issuers": issuers
        or [
            {"iss": KH.iss, "jwks": jwks_of(KH.signer)},
            {"iss": LA.iss, "jwks": jwks_of(LA.signer)},
        ],
        "status_lists": {
            uri: {"token": token, "fetched_at": int(at.timestamp())}
            for uri, (token, at) in lists.items()
        },
    }


def _hint_twin(jwks: dict[str, Any]) -> dict[str, Any]:
    """``jwks`` plus another key whose kid starts with the same 8 bytes as the first one's:
    the printed QR's kid hint then names two keys, and selects neither."""
    kid = base64.urlsafe_b64decode(jwks["keys"][0]["kid"] + "=")
    twin_kid = base64.urlsafe_b64encode(kid[:8] + bytes(24)).rstrip(b"=").decode()
    twin = {**public_jwk(STRANGER.public_key()), "kid": twin_kid, "alg": "ES256", "use": "sig"}
    return {"keys": [*jwks["keys"], twin]}


def _broken(jwks: dict[str, Any]) -> dict[str, Any]:
    key = dict(jwks["keys"][0])
    key["y"] = key["x"]  # (x, x) is not on the curve
    return {"keys": [key]}


def contexts() -> dict[str, dict[str, Any]]:
    fetched = NOW - timedelta(minutes=10)
    fresh = {
        KH.list_uri: (status_list_token(KH, iat=fetched), fetched),
        LA.list_uri: (status_list_token(LA, iat=fetched), fetched),
        KH_ELSEWHERE.list_uri: (status_list_token(KH_ELSEWHERE, iat=fetched), fetched),
    }
    long_lived = NOW - timedelta(days=8)
    return {
        "fresh": _context(fresh),
        "no_lists": _context({}),
        # Lists signed by a key nobody trusts: they cannot vouch for anything.
        "forged_lists": _context(
            {
                KH.list_uri: (status_list_token(KH, iat=fetched, signer=STRANGER), fetched),
                LA.list_uri: (status_list_token(LA, iat=fetched, signer=STRANGER), fetched),
            }
        ),
        # A list whose own exp is a month out, fetched eight days ago: past the hard limit.
        "eight_days_old": _context(
            {
                KH.list_uri: (
                    status_list_token(KH, iat=long_lived, exp=long_lived + timedelta(days=30)),
                    long_lived,
                ),
            }
        ),
        # One key published by two issuers: trusted for neither.
        "kid_clash": _context(
            fresh,
            [
                {"iss": KH.iss, "jwks": jwks_of(KH.signer)},
                {"iss": LA.iss, "jwks": jwks_of(LA.signer, KH.signer)},
            ],
        ),
        # Two keys of one issuer whose kids share the printed QR's 8-byte kid hint.
        "kid_hint_clash": _context(
            fresh,
            [
                {"iss": KH.iss, "jwks": _hint_twin(jwks_of(KH.signer))},
                {"iss": LA.iss, "jwks": jwks_of(LA.signer)},
            ],
        ),
        # A JWK that is not a point on P-256 is left out: its tokens have no key.
        "broken_jwk": _context(
            fresh,
            [
                {"iss": KH.iss, "jwks": _broken(jwks_of(KH.signer))},
                {"iss": LA.iss, "jwks": jwks_of(LA.signer)},
            ],
        ),
        # Genuinely signed by a server whose clock runs 30 days ahead: a list "from the
        # future" says nothing about now, so it is no fresher than one past the hard limit.
        "list_from_the_future": _context(
            {
                issuer.list_uri: (status_list_token(issuer, iat=NOW + timedelta(days=30)), fetched)
                for issuer in (KH, LA)
            }
        ),
        # ttl 1 s is silly: clamped to 300 s, so a list 100 s old is still fresh.
        "silly_ttl": _context(
            {
                KH.list_uri: (
                    status_list_token(KH, iat=fetched, ttl=1, exp=fetched + timedelta(days=1)),
                    fetched,
                )
            }
        ),
    }


def _vector(
    name: str,
    credential_text: str,
    context: str,
    status: str,
    reasons: list[str],
    *,
    now: datetime = NOW,
    freshness: str | None = "fresh",
    fmt: str = "jwt",
) -> dict[str, Any]:
    return {
        "name": name,
        "format": fmt,
        "credential": credential_text,
        "context": context,
        "now": int(now.timestamp()),
        "expect": {
            "valid": not reasons,
            "status": status,
            "reasons": reasons,
            "freshness": freshness,
        },
    }


def jwt_vectors() -> list[dict[str, Any]]:
    kh = credential(KH, KHMER)
    past = NOW - timedelta(days=400)

    def drop_name(claims: dict[str, Any]) -> None:
        del claims["name"]

    def string_exp(claims: dict[str, Any]) -> None:
        claims["exp"] = str(claims["exp"])

    ten_past = NOW + timedelta(minutes=10)
    list_signed = NOW - timedelta(minutes=10)  # the iat of the "fresh" context's lists
    return [
        _vector("jwt_valid_es256_khmer", kh, "fresh", "valid", []),
        _vector("jwt_valid_eddsa_lao", credential(LA, LAO), "fresh", "valid", []),
        _vector(
            "jwt_valid_list_past_ttl_warns",
            kh,
            "fresh",
            "valid",
            [],
            now=NOW + timedelta(hours=2),
            freshness="stale",
        ),
        _vector(
            "jwt_valid_silly_ttl_clamped",
            kh,
            "silly_ttl",
            "valid",
            [],
            now=NOW - timedelta(minutes=10) + timedelta(seconds=100),
        ),
        _vector(
            "jwt_unknown_key_kid_clash", kh, "kid_clash", "invalid", ["UNKNOWN_KEY"], freshness=None
        ),
        _vector(
            "jwt_unknown_key_broken_jwk",
            kh,
            "broken_jwk",
            "invalid",
            ["UNKNOWN_KEY"],
            freshness=None,
        ),
        _vector(
            "jwt_bad_signature",
            tamper(kh, 2),
            "fresh",
            "invalid",
            ["BAD_SIGNATURE"],
            freshness=None,
        ),
        _vector(
            "jwt_tampered_payload",
            tamper(kh, 1),
            "fresh",
            "invalid",
            ["BAD_SIGNATURE"],
            freshness=None,
        ),
        _vector(
            "jwt_eddsa_bad_signature",
            tamper(credential(LA, LAO), 2),
            "fresh",
            "invalid",
            ["BAD_SIGNATURE"],
            freshness=None,
        ),
        _vector(
            "jwt_unknown_key",
            credential(KH, KHMER, signer=STRANGER),
            "fresh",
            "invalid",
            ["UNKNOWN_KEY"],
            freshness=None,
        ),
        _vector(
            "jwt_key_of_another_issuer",
            credential(KH, KHMER, signer=LA.signer),
            "fresh",
            "invalid",
            ["UNKNOWN_KEY"],
            freshness=None,
        ),
        _vector(
            "jwt_malformed_duplicate_member",
            duplicate_member(kh, KH.signer),
            "fresh",
            "invalid",
            ["MALFORMED"],
            freshness=None,
        ),
        _vector(
            "jwt_malformed_alg_none",
            _b64(b'{"alg":"none","typ":"JWT"}') + "." + kh.split(".")[1] + ".",
            "fresh",
            "invalid",
            ["MALFORMED"],
            freshness=None,
        ),
        _vector(
            "jwt_malformed_text",
            "this is not a credential",
            "fresh",
            "invalid",
            ["MALFORMED"],
            freshness=None,
        ),
        _vector(
            "jwt_malformed_missing_name",
            credential(KH, KHMER, edit=drop_name),
            "fresh",
            "invalid",
            ["MALFORMED"],
            freshness=None,
        ),
        _vector(
            "jwt_malformed_exp_string",
            credential(KH, KHMER, edit=string_exp),
            "fresh",
            "invalid",
            ["MALFORMED"],
            freshness=None,
        ),
        _vector(
            "jwt_malformed_wrong_typ",
            credential(KH, KHMER, typ="JWT"),
            "fresh",
            "invalid",
            ["MALFORMED"],
            freshness=None,
        ),
        _vector(
            "jwt_expired",
            credential(KH, KHMER, iat=past, days=365),
            "fresh",
            "expired",
            ["EXPIRED"],
        ),
        _vector(
            "jwt_not_yet_valid",
            credential(KH, KHMER, iat=ten_past),
            "fresh",
            "not_yet_valid",
            ["NOT_YET_VALID"],
        ),
        _vector(
            "jwt_revoked", credential(KH, KHMER, idx=IDX_REVOKED), "fresh", "revoked", ["REVOKED"]
        ),
        _vector(
            "jwt_suspended_eddsa",
            credential(LA, LAO, idx=IDX_SUSPENDED),
            "fresh",
            "suspended",
            ["SUSPENDED"],
        ),
        _vector(
            "jwt_expired_and_revoked",
            credential(KH, KHMER, idx=IDX_REVOKED, iat=past, days=365),
            "fresh",
            "revoked",
            ["EXPIRED", "REVOKED"],
        ),
        _vector(
            "jwt_status_unavailable_no_list",
            kh,
            "no_lists",
            "unknown",
            ["STATUS_UNAVAILABLE"],
            freshness="missing",
        ),
        _vector(
            "jwt_status_unavailable_forged_list",
            credential(KH, KHMER, idx=IDX_REVOKED),
            "forged_lists",
            "unknown",
            ["STATUS_UNAVAILABLE"],
            freshness="missing",
        ),
        _vector(
            "jwt_trust_stale_hard_limit",
            kh,
            "eight_days_old",
            "unknown",
            ["TRUST_STALE"],
            freshness="too_old",
        ),
        _vector(
            "jwt_trust_stale_list_iat_in_the_future",
            kh,
            "list_from_the_future",
            "unknown",
            ["TRUST_STALE"],
            freshness="too_old",
        ),
        _vector(
            "jwt_trust_stale_eddsa_list_iat_in_the_future",
            credential(LA, LAO, idx=IDX_REVOKED),
            "list_from_the_future",
            "unknown",
            ["TRUST_STALE"],
            freshness="too_old",
        ),
        # The phone's clock may lag the server's by up to the leeway (60 s), not more.
        _vector(
            "jwt_valid_list_iat_within_clock_skew",
            kh,
            "fresh",
            "valid",
            [],
            now=list_signed - timedelta(seconds=60),
        ),
        _vector(
            "jwt_trust_stale_list_iat_past_clock_skew",
            kh,
            "fresh",
            "unknown",
            ["TRUST_STALE"],
            now=list_signed - timedelta(seconds=61),
            freshness="too_old",
        ),
        _vector(
            "jwt_trust_stale_list_expired",
            kh,
            "fresh",
            "unknown",
            ["TRUST_STALE"],
            now=NOW + timedelta(days=2),
            freshness="too_old",
        ),
    ]


def qr_vectors() -> list[dict[str, Any]]:
    """The printed-card (Claim 169) vectors, from the project's QR encoder."""
    return claim169_vectors.vectors(
        issuers={"kh": KH, "la": LA, "kh_elsewhere": KH_ELSEWHERE},
        stranger=STRANGER,
        now=NOW,
        make=_vector,
    )


def corpus() -> dict[str, Any]:
    return {
        "about": "Verifier test vectors; generated by tests/vectors/generate.py, do not edit.",
        "hard_limit_seconds": HARD_LIMIT_S,
        "contexts": contexts(),
        "vectors": jwt_vectors() + qr_vectors(),
    }


def write(path: Path = CORPUS) -> None:
    text = json.dumps(corpus(), ensure_ascii=False, indent=1) + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS)
