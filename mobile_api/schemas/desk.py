"""What a remote issuance desk sends (``/v1/desk/…``): enrolment, sign-in, issuance, approvals
(``mobile_api.routes.desk``) and its card checks, printing and registrar's actions
(``mobile_api.routes.desk_actions``). Every body refuses unknown members; the answers are built
by the routes (no response model).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from idsvc.register.photo_rule import MAX_PHOTO_BYTES

# The largest photo as base64: the one desk body larger than the app's global body limit.
PHOTO_B64_MAX = (MAX_PHOTO_BYTES + 2) // 3 * 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrolmentRequest(_Strict):
    code: str = Field(max_length=64)
    public_jwk: dict[str, str]


class LoginRequest(_Strict):
    operator: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    otp: str = Field(max_length=16)


class EligibilityRequest(_Strict):
    employee_id: str = Field(max_length=64)


class AttestationCertificates(_Strict):
    certificate: str = Field(max_length=16384)  # base64 DER: ATTEST on the card key's slot
    signer: str = Field(max_length=16384)  # base64 DER: the card's F9 attestation certificate


class IssuanceRequest(_Strict):
    employee_id: str = Field(max_length=64)
    card_jwk: dict[str, str]
    card_uuid: uuid.UUID
    # The proof that the key was made on the card.
    key_attestation: AttestationCertificates | None = None


class AbandonmentRequest(_Strict):
    reason: str = Field(max_length=200)


class RejectionRequest(_Strict):
    reason: str = Field(max_length=255)


class CardCheckRequest(_Strict):
    credential: str = Field(max_length=8192)
    card_jwk: dict[str, str] | None = None


class CardFaceRequest(_Strict):
    employee_id: str = Field(max_length=64)


class CardWipeRequest(_Strict):
    credential_id: str | None = Field(default=None, max_length=64)
    card_uuid: str | None = Field(default=None, max_length=64)
    revoke_reason: str | None = Field(default=None, min_length=1, max_length=255)


class WipeReport(_Strict):
    report_id: uuid.UUID
    card_uuid: str | None = Field(default=None, max_length=64)
    credential_id: str | None = Field(default=None, max_length=64)
    wiped_at: datetime
    operator: str | None = Field(default=None, max_length=64)


class WipeReportsRequest(_Strict):
    reports: list[WipeReport] = Field(min_length=1, max_length=100)


class RevocationRequest(_Strict):
    credential_id: str = Field(max_length=64)
    reason: str = Field(min_length=1, max_length=255)


class LossRequest(_Strict):
    employee_id: str = Field(max_length=64)
    reason: str = Field(min_length=1, max_length=255)


class CorrectionRequest(_Strict):
    employee_id: str = Field(max_length=64)
    status: str = Field(max_length=32)
    reason: str = Field(max_length=255)
    status_date: date | None = None


class PhotoRequest(_Strict):
    employee_id: str = Field(max_length=64)
    photo: str = Field(max_length=PHOTO_B64_MAX, description="JPEG or PNG, base64")
