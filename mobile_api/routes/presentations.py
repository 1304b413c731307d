"""Asking a phone for its credential: OpenID4VP 1.0, request by reference, ``direct_post``.

The official's page (anyone, like ``POST /v1/verifications``: rate-limited per address; an API
client is recorded as the asker) creates a request and polls its result with the poll token.
The wallet fetches the signed request object and posts its answer; those two endpoints speak
OpenID4VP's error vocabulary (``{"error", "error_description"}``), not problem+json, because a
wallet reads them. The domain is ``idsvc.wallet.presentations``; docs/wallet.md explains it.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from idsvc.formats.openid4vp import REQUEST_TYP
from idsvc.wallet.presentations import (
    ANONYMOUS,
    ClaimsRefused,
    PresentationRefused,
    UnknownPresentationRequest,
)
from mobile_api import problems
from mobile_api.auth import Anyone
from mobile_api.deps import Now, Wallet
from mobile_api.json_body import StrictJsonRoute
from mobile_api.schemas.presentations import (
    CreatePresentationRequest,
    PresentationRequestCreatedResponse,
    PresentationRequestResponse,
    WalletErrorResponse,
)

router = APIRouter(tags=["wallet"], route_class=StrictJsonRoute)

NO_STORE = {"Cache-Control": "no-store"}
FORM = "application/x-www-form-urlencoded"
# A wallet's answer has these fields (OpenID4VP §8.2, RFC 6749 §4.1.2.1); anything else in the
# form is ignored, a field given twice is refused.
_FIELDS = ("vp_token", "state", "error", "error_description")
_MAX_FIELDS = 16

RequestId = Annotated[str, Path(description="the request's id (from its creation)", max_length=64)]
_WALLET_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": WalletErrorResponse, "description": "refused: expired, answered, bad state"},
    404: {"model": WalletErrorResponse, "description": "no such request"},
    **problems.responses(422),  # an id longer than any of ours
}


def _wallet_error(status: int, description: str, error: str = "invalid_request") -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=NO_STORE
    )


@router.post(
    "/v1/presentation-requests",
    response_model=PresentationRequestCreatedResponse,
    status_code=201,
    responses=problems.responses(401, 413, 415, 422, 429, 503),
    operation_id="createPresentationRequest",
    summary="Ask a phone for its credential (OpenID4VP): a request to show as a QR code",
    description="Anyone may ask (the officials' web page), rate-limited per address like "
    "`POST /v1/verifications`; an API client is recorded as the asker in the who-checked log. "
    "The body is optional: `claims` the holder must disclose (default name, name_latin, "
    "photo) and `optional` ones the holder may leave out (default ministry, position), told "
    "to the wallet by DCQL `claim_sets`. A presentation leaving out a required claim fails the "
    "request (`result.missing` names them). Show "
    "`openid4vp_uri` as a QR code, keep `poll_token`, and poll "
    "`GET /v1/presentation-requests/{id}` for the result (5 minutes).",
)
def create_presentation_request(
    caller: Anyone, wallet: Wallet, now: Now, body: CreatePresentationRequest | None = None
) -> Response:
    try:
        created = wallet.create_presentation_request(
            None if body is None else body.claims,
            optional=None if body is None else body.optional,
            requested_by=caller.client_id or ANONYMOUS,
            now=now,
        )
    except ClaimsRefused as exc:
        return problems.problem(422, exc.code, exc.title, str(exc))
    return JSONResponse(
        {
            "id": created.id,
            "openid4vp_uri": created.openid4vp_uri,
            "request_uri": created.request_uri,
            "expires_at": created.expires_at.isoformat(),
            "poll_token": created.poll_token,
        },
        status_code=201,
        headers=NO_STORE,
    )


@router.get(
    "/v1/presentation-requests/{request_id}",
    response_model=PresentationRequestResponse,
    responses=problems.responses(404, 422, 429, 503),
    operation_id="getPresentationRequest",
    summary="The answer to a presentation request, for the page that asked",
    description="Send the poll token from the request's creation in `Presentation-Poll-Token`; "
    "without it, or with another, the answer is 404 as for an unknown id. `result` is null "
    "while pending; once answered it is the verification result as `POST /v1/verifications` "
    "gives it (same reason codes; `HOLDER_BINDING_INVALID` when the key binding fails) plus "
    "`disclosed` (the required claims and the optional ones the holder chose); when the "
    "wallet answered with an error, `{error, error_description}`, and when its presentation "
    "left out a required claim, `{error: invalid_request, error_description, missing}`.",
)
def get_presentation_request(
    request_id: RequestId,
    wallet: Wallet,
    now: Now,
    presentation_poll_token: Annotated[
        str | None, Header(max_length=128, description="the poll token")
    ] = None,
) -> Response:
    try:
        view = wallet.presentation_result(request_id, presentation_poll_token, now=now)
    except UnknownPresentationRequest:
        return problems.problem(
            404, "UNKNOWN_PRESENTATION_REQUEST", "no such presentation request", headers=NO_STORE
        )
    body = {
        "id": view.id,
        "status": view.status,
        "expires_at": view.expires_at.isoformat(),
        "result": view.result,
    }
    return JSONResponse(body, headers=NO_STORE)


@router.get(
    "/v1/presentation-requests/{request_id}/request",
    response_class=Response,
    responses={
        200: {
            "description": "the signed request object (JWT, `typ` oauth-authz-req+jwt, "
            "`x5c` = [verifier certificate, issuer CA], client id `x509_hash:...`)",
            "content": {f"application/{REQUEST_TYP}": {"schema": {"type": "string"}}},
        },
        **_WALLET_ERRORS,
    },
    operation_id="getPresentationRequestObject",
    summary="The signed OpenID4VP request object (the wallet fetches it from request_uri)",
)
async def get_request_object(request_id: RequestId, wallet: Wallet, now: Now) -> Response:
    try:
        jwt = await run_in_threadpool(wallet.presentation_request_object, request_id, now=now)
    except UnknownPresentationRequest:
        return _wallet_error(404, "unknown presentation request")
    except PresentationRefused as exc:
        return _wallet_error(400, exc.description, exc.error)
    return Response(jwt, media_type=f"application/{REQUEST_TYP}", headers=NO_STORE)


def _form(raw: bytes) -> dict[str, str] | str:
    """The wallet's form fields, or what is wrong with the form."""
    try:
        text = raw.decode("ascii")  # urlencoded: anything beyond ASCII is percent-encoded
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=_MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        return "the body is not a form (application/x-www-form-urlencoded)"
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in _FIELDS:
            if name in form:
                return f"{name} is given more than once"
            form[name] = value
    return form


@router.post(
    "/v1/presentation-requests/{request_id}/response",
    response_model=dict[str, Any],
    responses={413: problems.responses(413)[413], **_WALLET_ERRORS},
    operation_id="answerPresentationRequest",
    summary="The wallet's answer (OpenID4VP direct_post: form vp_token and state)",
    description="Form-encoded `vp_token` (a JSON object: `civil_servant` → [the SD-JWT VC "
    "presentation with its key-binding JWT]) and `state`; or `error` (and "
    "`error_description`) when the holder declines. 200 `{}` once stored; a request is "
    "answered once (any later answer, an expired request or a wrong `state`: 400 "
    "`invalid_request`). A presentation leaving out a claim the request requires ends the "
    "request (400 `invalid_request` naming the claims). Bodies over 64 KiB are refused (413).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "properties": {name: {"type": "string"} for name in _FIELDS},
                        "required": ["state"],
                    }
                }
            },
        }
    },
)
async def answer_presentation_request(
    request_id: RequestId, request: Request, wallet: Wallet, now: Now
) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM:
        return _wallet_error(400, f"send the answer as {FORM}")
    form = _form(await request.body())
    if isinstance(form, str):
        return _wallet_error(400, form)
    try:
        await run_in_threadpool(
            wallet.answer_presentation,
            request_id,
            state=form.get("state"),
            vp_token=form.get("vp_token"),
            error=form.get("error"),
            error_description=form.get("error_description"),
            now=now,
        )
    except UnknownPresentationRequest:
        return _wallet_error(404, "unknown presentation request")
    except PresentationRefused as exc:
        return _wallet_error(400, exc.description, exc.error)
    return JSONResponse({}, headers=NO_STORE)
