"""What a remote desk does besides issuing: check a card against the register, print a card
face, wipe a card, and the registrar's and issuer's sensitive actions (revocation, re-issue
after loss, HR status correction, a holder's photo).

Signed and authenticated as in ``mobile_api.routes.desk`` (``Desk-Proof`` + ``Desk-Session``);
each route calls one ``DeskGateway`` use case. An action held for a second person's approval
answers 202 with the pending approval; done at once, 200.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from idsvc.credentials.views import CredentialView
from idsvc.desks.gateway import ReportedWipe
from idsvc.staff.maker_checker import Pending
from mobile_api import problems
from mobile_api.deps import Desks, JsonBody, Now, Wallet
from mobile_api.desk_requests import ERRORS, SessionToken, Signed, answer
from mobile_api.json_body import StrictJsonRoute
from mobile_api.limits import PATH_LIMITS
from mobile_api.schemas.desk import (
    PHOTO_B64_MAX,
    CardCheckRequest,
    CardFaceRequest,
    CardWipeRequest,
    CorrectionRequest,
    LossRequest,
    PhotoRequest,
    RevocationRequest,
    WipeReportsRequest,
)
from mobile_api.schemas.wallet import OfferRequest

router = APIRouter(tags=["remote desks"], route_class=StrictJsonRoute)
HELD = ERRORS | {202: {"description": "Held: waiting for a second person's approval"}}

PHOTO_PATH = "/v1/desk/photos"
# The photo is the one desk body larger than the global limit: a camera's original, base64.
PATH_LIMITS[PHOTO_PATH] = PHOTO_B64_MAX + 4096


def _credential(view: CredentialView) -> dict[str, Any]:
    # The token is on the card already; an answer that is logged or cached never repeats it.
    return {k: v for k, v in view.as_dict().items() if k != "token"}


def _held_or_done(call: Callable[[], object]) -> Response:
    """200 with the outcome, or 202 with the approval the action now waits for."""
    held: list[bool] = []

    def run() -> dict[str, Any]:
        result = call()
        if isinstance(result, Pending):
            held.append(True)
            return {"state": "pending_approval", "approval": result.approval.as_dict()}
        if isinstance(result, CredentialView):
            return {"state": "done", "credential": _credential(result)}
        return {"state": "done", "outcome": None if result is None else str(result)}

    response = answer(run)
    if held and response.status_code == 200:
        response.status_code = 202
    return response


@router.post("/v1/desk/verifications", dependencies=[JsonBody], responses=ERRORS)
def verify_card(
    body: CardCheckRequest, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    """Check the credential read from a card, bound to the card's key when it is given."""
    return answer(
        lambda: desks.verify_card(
            signed, session, body.credential, card_jwk=body.card_jwk, now=now
        ).as_dict()
    )


@router.post("/v1/desk/card-faces", dependencies=[JsonBody], responses=ERRORS)
def card_face(
    body: CardFaceRequest, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    """What the printed card shows (the desk draws it); refused if it must not be printed."""

    def call() -> dict[str, Any]:
        d = desks.card_face(signed, session, body.employee_id, now=now)
        return {
            "employee_id": d.employee_id,
            "name_local": d.name_local,
            "name_latin": d.name_latin,
            "ministry": d.ministry,
            "position": d.position,
            "expires": d.expires.isoformat(),
            "issuer_name": d.issuer_name,
            "issuer_uri": d.issuer_uri,
            "card_serial": d.card_serial,
            "qr_text": d.qr_text,
            "photo_jpeg": base64.b64encode(d.photo_jpeg).decode("ascii"),
            "ministry_local": d.ministry_local,
            "position_local": d.position_local,
            "issuer_name_local": d.issuer_name_local,
        }

    return answer(call)


@router.post("/v1/desk/card-wipes", dependencies=[JsonBody], responses=HELD)
def card_wipe(
    body: CardWipeRequest, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    """Allow (and audit) a wipe before the desk touches the card; revoke first if asked."""
    return _held_or_done(
        lambda: desks.card_wipe(
            signed,
            session,
            credential_id=body.credential_id,
            card_uuid=body.card_uuid,
            revoke_reason=body.revoke_reason,
            now=now,
        )
    )


@router.post("/v1/desk/card-wipe-reports", dependencies=[JsonBody], responses=ERRORS)
def card_wipe_reports(body: WipeReportsRequest, signed: Signed, desks: Desks, now: Now) -> Response:
    """Wipes the desk did without the centre (``card wipe --offline``), sent at its next
    request: audited, and a credential still live is named for a registrar (not revoked)."""
    reports = [
        ReportedWipe(
            report_id=str(r.report_id),
            card_uuid=r.card_uuid,
            credential_id=r.credential_id,
            wiped_at=r.wiped_at,
            operator=r.operator,
        )
        for r in body.reports
    ]
    return answer(lambda: desks.report_wipes(signed, reports, now=now))


@router.post("/v1/desk/revocations", dependencies=[JsonBody], responses=HELD)
def revoke(
    body: RevocationRequest, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    return _held_or_done(
        lambda: desks.revoke(signed, session, body.credential_id, reason=body.reason, now=now)
    )


@router.post("/v1/desk/losses", dependencies=[JsonBody], responses=HELD)
def declare_lost(
    body: LossRequest, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    """Re-issue after loss: the live card is revoked as lost so a new one can be issued."""
    return _held_or_done(
        lambda: desks.declare_lost(signed, session, body.employee_id, reason=body.reason, now=now)
    )


@router.post("/v1/desk/corrections", dependencies=[JsonBody], responses=HELD)
def correct_status(
    body: CorrectionRequest, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    """An HR status correction by a registrar (the register's rules: reason, dates, feed)."""
    return _held_or_done(
        lambda: desks.correct_status(
            signed,
            session,
            body.employee_id,
            status=body.status,
            reason=body.reason,
            status_date=body.status_date,
            now=now,
        )
    )


@router.post("/v1/desk/wallet-offers", dependencies=[JsonBody], responses=ERRORS)
def wallet_offer(
    body: OfferRequest,
    signed: Signed,
    session: SessionToken,
    desks: Desks,
    wallet: Wallet,
    now: Now,
) -> Response:
    """A phone credential offer (issuer role, the person in the desk's office): the QR's URI
    and the transaction code to read out, as ``POST /v1/wallet/offers`` answers them."""
    return answer(
        lambda: desks.wallet_offer(
            signed, session, body.employee_id, wallet=wallet, now=now
        ).as_dict()
    )


@router.post(PHOTO_PATH, dependencies=[JsonBody], responses=ERRORS | problems.responses(413))
def store_photo(
    body: PhotoRequest, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    """Store a holder's photo (registrar); checked and normalised as at the centre."""

    def call() -> dict[str, Any]:
        return desks.store_photo(signed, session, body.employee_id, body.photo, now=now).as_dict()

    return answer(call)
