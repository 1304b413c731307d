"""Remote issuance desks over HTTP: enrolment, operator login, and the issuance protocol.

Every request carries ``Desk-Proof`` (a JWT signed with the desk's enrolled key over method,
path, body hash, time and a single-use id; see ``idsvc.formats.desk_proof``); past login it
also carries ``Desk-Session`` (the operator's session token, bound to that desk). Each route
calls one ``DeskGateway`` use case. Answers for desk and operator errors are problem+json:
401 not signed in / bad proof, 403 refused (role, office, disabled desk), 423 locked.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from idsvc.credentials.handover import KeyAttestation
from idsvc.errors import KeyNotAttested
from mobile_api.deps import Desks, JsonBody, Now
from mobile_api.desk_requests import ERRORS, MaybeSession, SessionToken, Signed, answer
from mobile_api.json_body import StrictJsonRoute
from mobile_api.schemas.desk import (
    AbandonmentRequest,
    AttestationCertificates,
    EligibilityRequest,
    EnrolmentRequest,
    IssuanceRequest,
    LoginRequest,
    RejectionRequest,
)

router = APIRouter(tags=["remote desks"], route_class=StrictJsonRoute)


def _attestation(body: AttestationCertificates | None) -> KeyAttestation | None:
    if body is None:
        return None
    try:
        return KeyAttestation(
            base64.b64decode(body.certificate, validate=True),
            base64.b64decode(body.signer, validate=True),
        )
    except ValueError:
        raise KeyNotAttested("the key attestation is not base64") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@router.post("/v1/desk/enrolment", dependencies=[JsonBody], responses=ERRORS, status_code=201)
def enrol(body: EnrolmentRequest, signed: Signed, desks: Desks, now: Now) -> Response:
    """Enrol this desk's key with its one-time code (the request is signed with that key)."""

    def call() -> dict[str, Any]:
        done = desks.enrol(code=body.code, jwk=body.public_jwk, request=signed, now=now)
        return done.desk.as_dict() | {
            "receipt": done.receipt,
            "ca_certificate": _b64(done.ca_certificate_der),
        }

    return answer(call, 201)


@router.post("/v1/desk/sessions", dependencies=[JsonBody], responses=ERRORS, status_code=201)
def login(body: LoginRequest, signed: Signed, desks: Desks, now: Now) -> Response:
    """An operator signs in at this desk (password and one-time code)."""

    def call() -> dict[str, Any]:
        s = desks.login(signed, name=body.operator, password=body.password, otp=body.otp, now=now)
        return {
            "session": s.token,
            "operator": s.actor.name,
            "role": s.actor.role,
            "office": s.actor.office,
            "desk": s.actor.desk,
            "expires_at": s.expires_at.isoformat(),
            "idle_minutes": s.idle_minutes,
        }

    return answer(call, 201)


@router.delete("/v1/desk/sessions/current", responses=ERRORS, status_code=204)
def logout(signed: Signed, session: SessionToken, desks: Desks, now: Now) -> Response:
    return answer(lambda: desks.logout(signed, session, now=now))


@router.get("/v1/desk/state", responses=ERRORS)
def state(signed: Signed, desks: Desks, now: Now, session: MaybeSession = None) -> Response:
    """This desk as the centre sees it, and whether the given session is still valid
    (``idsvc desk status``); a disabled desk is refused here as everywhere."""
    return answer(lambda: desks.desk_state(signed, session, now=now))


@router.post("/v1/desk/eligibility", dependencies=[JsonBody], responses=ERRORS, status_code=204)
def eligibility(
    body: EligibilityRequest, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    """204 if the register lets this person have a card now (asked before the card is touched)."""
    return answer(lambda: desks.check_eligible(signed, session, body.employee_id, now=now))


@router.post("/v1/desk/issuances", dependencies=[JsonBody], responses=ERRORS, status_code=201)
def begin(
    body: IssuanceRequest, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    """Sign the card certificate and the credential for the card key; nothing is live yet."""

    def call() -> dict[str, Any]:
        started = desks.begin(
            signed,
            session,
            body.employee_id,
            card_jwk=body.card_jwk,
            card_uuid=body.card_uuid,
            now=now,
            attestation=_attestation(body.key_attestation),
        )
        p = started.pending
        return {
            "credential_id": p.credential_id,
            "employee_id": p.employee_id,
            "token": p.token,
            "card_serial": p.card_serial,
            "card_uuid": p.card_uuid,
            "card_certificate": _b64(p.card_certificate_der or b""),
            "holder": p.holder.__dict__ | {"birthdate": p.holder.birthdate.isoformat()},
            "pending_until": p.pending_until.isoformat(),
            "issuer_code": p.issuer_code,
            "qr": {
                "text": p.qr.text,
                "version": p.qr.version,
                "payload_bytes": p.qr.payload_bytes,
            },
            "ca_certificate": _b64(started.ca_certificate_der),
            "verify_url": started.verify_url,
        }

    return answer(call, 201)


@router.post("/v1/desk/issuances/{credential_id}/confirmation", responses=ERRORS, status_code=200)
def confirm(
    credential_id: str, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    """Make the credential live (after the card was written and read back). Idempotent."""

    def call() -> dict[str, Any]:
        view = desks.confirm(signed, session, credential_id, now=now)
        return {k: v for k, v in view.as_dict().items() if k != "token"}

    return answer(call)


@router.post(
    "/v1/desk/issuances/{credential_id}/abandonment",
    dependencies=[JsonBody],
    responses=ERRORS,
    status_code=204,
)
def abandon(
    credential_id: str,
    body: AbandonmentRequest,
    signed: Signed,
    session: SessionToken,
    desks: Desks,
    now: Now,
) -> Response:
    """The card step failed: the pending credential will never go live."""
    return answer(
        lambda: desks.abandon(signed, session, credential_id, reason=body.reason, now=now)
    )


@router.get("/v1/desk/approvals", responses=ERRORS)
def approvals(signed: Signed, session: SessionToken, desks: Desks, now: Now) -> Response:
    """Pending approvals (a supervisor or admin at a desk)."""

    def call() -> list[dict[str, Any]]:
        return [v.as_dict() for v in desks.approvals(signed, session, now=now)]

    return answer(call)


@router.post("/v1/desk/approvals/{approval_id}/approval", responses=ERRORS)
def approve(
    approval_id: str, signed: Signed, session: SessionToken, desks: Desks, now: Now
) -> Response:
    """Approve (not the requester; supervisor or admin): the action is performed now."""

    def call() -> dict[str, Any]:
        view, once = desks.approve(signed, session, approval_id, now=now)
        return view.as_dict() | {"otpauth_uri": once or None}

    return answer(call)


@router.post(
    "/v1/desk/approvals/{approval_id}/rejection", dependencies=[JsonBody], responses=ERRORS
)
def reject(
    approval_id: str,
    body: RejectionRequest,
    signed: Signed,
    session: SessionToken,
    desks: Desks,
    now: Now,
) -> Response:
    return answer(
        lambda: desks.reject(signed, session, approval_id, reason=body.reason, now=now).as_dict()
    )
