"""Asking a phone for its credential (OpenID4VP): the official's request, its result, and the
wallet's error answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mobile_api.schemas.verification import VerificationResponse

_ID = "3f1c2a9e-8b7d-4e6f-9a1b-2c3d4e5f6a7b"
_EXPIRES = "2026-11-25T10:05:00+00:00"


_CLAIM_NAMES = (
    "name, name_latin, birthdate, ministry, ministry_local, unit, position, position_local, "
    "grade, category, photo"
)


class CreatePresentationRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"claims": ["name", "photo"], "optional": ["ministry", "position"]},
                {"claims": ["name", "photo"]},
            ]
        },
    )

    claims: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="the claims the holder must disclose (default name, name_latin, photo), "
        f"from: {_CLAIM_NAMES}; any other is a 422 `UNKNOWN_CLAIM`",
    )
    optional: list[str] | None = Field(
        default=None,
        max_length=16,
        description="claims the holder may leave out, from the same list (default: ministry "
        "and position when neither member is given, none when only `claims` is); at most 4 "
        "(else 422 `TOO_MANY_OPTIONAL_CLAIMS`); a claim also in `claims` is a 422 "
        "`CLAIM_REQUIRED_AND_OPTIONAL`. The wallet is told by DCQL `claim_sets`.",
    )


class PresentationRequestCreatedResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _ID,
                    "openid4vp_uri": "openid4vp://?client_id=x509_hash%3A...&request_uri=...",
                    "request_uri": f"https://id.mcs.gov.kh/v1/presentation-requests/{_ID}/request",
                    "expires_at": _EXPIRES,
                    "poll_token": "Zk9yX3RoZV9wYWdlX3RoYXRfYXNrZWRfb25seV8uLi4",
                }
            ]
        }
    )

    id: str
    openid4vp_uri: str = Field(description="show it as a QR code: the phone's wallet opens it")
    request_uri: str = Field(description="where the wallet fetches the signed request object")
    expires_at: str = Field(description="the request's end (5 minutes)")
    poll_token: str = Field(
        description="keep it: `GET /v1/presentation-requests/{id}` answers only with it, in "
        "the `Presentation-Poll-Token` header"
    )


class PresentationResult(VerificationResponse):
    """The verification result of the presented credential, as `POST /v1/verifications`."""

    disclosed: dict[str, Any] = Field(
        description="the claims the holder disclosed, of those asked for: every required one "
        "and the optional ones the holder chose to show (`photo`: a "
        "`data:image/jpeg;base64,...` URI); empty when the signature did not verify"
    )


class PresentationFailure(BaseModel):
    """The wallet answered with an OpenID4VP error (the holder declined...), or with a
    `vp_token` that could not be read, or with a presentation leaving out a required claim."""

    error: str = Field(description="the OAuth/OpenID4VP error code, e.g. `access_denied`")
    error_description: str | None = None
    missing: list[str] | None = Field(
        default=None,
        description="the required claims the presentation left out (`error` is then "
        "`invalid_request`); absent otherwise",
    )


class PresentationRequestResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": _ID, "status": "pending", "expires_at": _EXPIRES, "result": None},
                {
                    "id": _ID,
                    "status": "failed",
                    "expires_at": _EXPIRES,
                    "result": {"error": "access_denied", "error_description": "declined"},
                },
            ]
        }
    )

    id: str
    status: str = Field(
        description="pending (no answer yet), answered (`result` is the verification), failed "
        "(`result` is the wallet's error), expired (no answer came in time)"
    )
    expires_at: str
    result: PresentationResult | PresentationFailure | None = None


class WalletErrorResponse(BaseModel):
    """What the wallet-facing endpoints answer when they refuse (RFC 6749 §5.2 shape)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": "invalid_request", "error_description": "this request has expired"}
            ]
        }
    )

    error: str
    error_description: str | None = None
