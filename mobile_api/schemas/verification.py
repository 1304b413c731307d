"""Verifying a credential: ``POST /v1/verifications`` (and the GET by credential id), and card
challenges, where a terminal proves the card in its reader is genuine (``/v1/card-…``)."""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, ConfigDict, Field, field_validator

EXAMPLE_JWT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6ImNpdmlsLXNlcnZhbnQtY3JlZGVudGlhbCtqd3QifQ"
    ".eyJzdWIiOiJLSC1NQ1MtMDEwMDAyIn0.c2lnbmF0dXJl"
)


class VerificationRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"credential": EXAMPLE_JWT}]})

    credential: str = Field(
        min_length=1,
        max_length=16384,
        description="the presented credential: a compact JWT (chip, API) or the printed "
        "card's QR text (Claim 169, base45)",
    )


class VerificationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "valid": True,
                    "status": "valid",
                    "reasons": [],
                    "holder": {
                        "name": "សុខ ចន្ថា",
                        "name_latin": "Sok Chantha",
                        "ministry": "Ministry of Civil Service",
                        "position": "Deputy Director",
                    },
                    "credential_id": "0b8f6a52-3d1e-4c57-9a55-6f2e2f5d9c11",
                    "issuer": "https://id.mcs.gov.kh/issuers/default",
                    "expires_at": "2031-11-22T09:00:00+00:00",
                    "checked_at": "2026-11-25T10:00:00+00:00",
                },
                {
                    "valid": False,
                    "status": "revoked",
                    "reasons": ["REVOKED"],
                    "holder": None,
                    "credential_id": None,
                    "issuer": None,
                    "expires_at": None,
                    "checked_at": "2026-11-25T10:00:00+00:00",
                },
            ]
        }
    )

    valid: bool
    status: str = Field(
        description="valid, revoked, suspended, expired, not_yet_valid, not_genuine, "
        "unknown (status unavailable) or invalid"
    )
    reasons: list[str] = Field(
        description="stable reason codes: BAD_SIGNATURE, UNKNOWN_KEY, MALFORMED, EXPIRED, "
        "NOT_YET_VALID, REVOKED, SUSPENDED, STATUS_UNAVAILABLE, TRUST_STALE, CARD_NOT_GENUINE, "
        "HOLDER_INACTIVE, CHALLENGE_INVALID, HOLDER_BINDING_INVALID"
    )
    holder: dict[str, str] | None = Field(
        default=None,
        description="anonymous callers: name, name_latin, ministry, position (photo when "
        "there is one); clients with a scope also employee_id, unit, grade, category, "
        "card_serial. Never the date of birth.",
    )
    credential_id: str | None = None
    issuer: str | None = None
    expires_at: str | None = None
    checked_at: str = Field(description="when the service checked it (RFC 3339)")


class CardChallengeResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "challenge_id": "5f0c9d3e8a7b41d2a1c3e5f7091b2d4c",
                    "nonce": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
                    "expires_at": "2026-11-25T10:02:00+00:00",
                }
            ]
        }
    )

    challenge_id: str
    nonce: str = Field(
        description="32 random bytes, base64: the card signs them as the SHA-256 digest "
        "(PIV GENERAL AUTHENTICATE, slot 9E, ECDSA P-256)"
    )
    expires_at: str


# Whole base64 quanta, then an optional 2- or 3-character tail; padding optional.
BASE64 = r"^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$"


def _base64(value: str) -> bytes:
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc


class CardVerificationRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "challenge_id": "5f0c9d3e8a7b41d2a1c3e5f7091b2d4c",
                    "certificate": "MIIB...",
                    "credential": EXAMPLE_JWT,
                    "signature": "MEUCIQ...",
                }
            ]
        }
    )

    challenge_id: str = Field(pattern=r"^[0-9a-f]{1,64}$", description="from card-challenges")
    certificate: str = Field(
        min_length=4,
        max_length=8192,
        pattern=BASE64,
        description="card certificate (slot 9E), DER, base64 (standard or URL-safe alphabet)",
    )
    credential: str = Field(min_length=1, max_length=16384, description="credential from the card")
    signature: str = Field(
        min_length=4,
        max_length=512,
        pattern=BASE64,
        description="the card's DER ECDSA signature over the nonce, base64",
    )

    @field_validator("certificate", "signature")
    @classmethod
    def _is_base64(cls, value: str) -> str:
        _base64(value)
        return value

    def certificate_der(self) -> bytes:
        return _base64(self.certificate)

    def signature_der(self) -> bytes:
        return _base64(self.signature)
