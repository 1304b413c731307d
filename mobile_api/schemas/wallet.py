"""The phone credential's bodies: a credential offer (``POST /v1/wallet/offers``, and the desk's
``POST /v1/desk/wallet-offers``) and the OpenID4VCI answers as OpenAPI describes them
(``mobile_api.routes.openid4vci``; the token and credential requests are parsed there by hand,
as the specs define them: form-encoded, and JSON whose errors have the spec's own codes).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OfferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: str = Field(min_length=1, max_length=64)


class OfferResponse(BaseModel):
    offer_uri: str = Field(description="openid-credential-offer://?credential_offer=… (the QR)")
    tx_code: str = Field(description="the 6-digit transaction code, read out separately")
    expires_at: str = Field(description="when the offer and its codes stop working (UTC)")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = Field(description="Bearer")
    expires_in: int


class NonceResponse(BaseModel):
    c_nonce: str


class IssuedCredential(BaseModel):
    credential: str = Field(description="the SD-JWT VC: issuer JWT and every disclosure, '~'")


class CredentialResponse(BaseModel):
    credentials: list[IssuedCredential]


# OAuth 2.0 (RFC 6749 §5.2, RFC 6750 §3) and OpenID4VCI (§8.3.1.2) error answers.
OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "error_description": {"type": "string"},
    },
}


def oauth_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for answers in the specs' ``{"error", ...}`` form."""
    return {
        s: {
            "description": "refused, in the OAuth / OpenID4VCI error form",
            "content": {"application/json": {"schema": OAUTH_ERROR_SCHEMA}},
        }
        for s in statuses
    }
