"""Card challenges: an ATM or bank terminal proves that the card in its reader is genuine.

``POST /v1/card-challenges`` gives a nonce; the terminal has the card sign it (PIV GENERAL
AUTHENTICATE, slot 9E, no PIN) and sends ``POST /v1/card-verifications`` with the challenge id,
the card's certificate and credential and the signature. Challenges live in the database:
any worker checks them, once.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter

from mobile_api import problems
from mobile_api.auth import Anyone
from mobile_api.deps import Challenges, JsonBody, Now
from mobile_api.json_body import StrictJsonRoute
from mobile_api.schemas.verification import (
    CardChallengeResponse,
    CardVerificationRequest,
    VerificationResponse,
)
from mobile_api.verdicts import checked_by, verdict

router = APIRouter(tags=["card challenges"], route_class=StrictJsonRoute)


@router.post(
    "/v1/card-challenges",
    response_model=CardChallengeResponse,
    status_code=201,
    responses=problems.responses(401, 429, 503),
    operation_id="createCardChallenge",
    summary="A fresh single-use nonce for the card to sign",
)
def create_card_challenge(caller: Anyone, challenges: Challenges, now: Now) -> dict[str, Any]:
    challenge = challenges.create(now)
    return {
        "challenge_id": challenge.id,
        "nonce": base64.b64encode(challenge.nonce).decode(),
        "expires_at": challenge.expires_at.isoformat(),
    }


@router.post(
    "/v1/card-verifications",
    response_model=VerificationResponse,
    dependencies=[JsonBody],
    responses=problems.responses(401, 413, 415, 422, 429, 503),
    operation_id="createCardVerification",
    summary="Verify a card's answer to a challenge, with its credential",
    description="200 with the result. `CARD_NOT_GENUINE` when the certificate does not chain "
    "to an issuer CA, the signature over the nonce is not the certificate key's, or the "
    "credential's `cnf` names another key; `CHALLENGE_INVALID` for an unknown, expired or "
    "already used challenge.",
)
def create_card_verification(
    body: CardVerificationRequest, caller: Anyone, challenges: Challenges, now: Now
) -> dict[str, Any]:
    result = challenges.verify_card(
        body.challenge_id,
        certificate=body.certificate_der(),
        credential=body.credential,
        signature=body.signature_der(),
        by=checked_by(caller),
        now=now,
    )
    return verdict(result, caller, now)
