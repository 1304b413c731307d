"""App factory: ``create_app(service)``; uvicorn calls it with no argument (``--factory``).

Each route calls one ``IdService`` use case and holds no business rules. The clock is read
here (``clock``, injectable for tests) and passed down as ``now``.

Middleware, outermost first: ``SecurityHeaders`` (nosniff; no-store unless the route set a
cache policy) → ``ErrorGuard`` (any unhandled error → generic 500 problem) → ``BodyLimit``
(64 KiB) → FastAPI's exception handlers (``problems``) → routes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.message import Message
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from idsvc.config import Settings, key_passphrase
from idsvc.service import IdService
from mobile_api import problems
from mobile_api.limits import BodyLimit
from mobile_api.middleware import ErrorGuard, SecurityHeaders
from mobile_api.schemas import Health, Problem, VerifyRequest, VerifyResponse

MAX_BODY = 64 * 1024
KEYS_CACHE = "public, max-age=300"

Clock = Callable[[], datetime]


def get_service(request: Request) -> IdService:
    service: IdService = request.app.state.service
    return service


def get_now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON (``application/json`` or ``*+json``)."""
    message = Message()
    message["content-type"] = request.headers.get("content-type", "")
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        raise HTTPException(415, "send the body as application/json")


Service = Annotated[IdService, Depends(get_service)]
Now = Annotated[datetime, Depends(get_now)]

router = APIRouter()


@router.get("/health", response_model=Health, responses=problems.responses(503))
def health(service: Service) -> dict[str, str]:
    return service.health()


@router.get("/.well-known/jwks.json", responses=problems.responses(503))
def jwks(service: Service) -> JSONResponse:
    return JSONResponse(service.jwks(), headers={"Cache-Control": KEYS_CACHE})


@router.get("/issuers/{slug}/jwks.json", responses=problems.responses(503))
def issuer_jwks(slug: str, service: Service) -> JSONResponse:
    return JSONResponse(service.jwks(slug), headers={"Cache-Control": KEYS_CACHE})


@router.get(
    "/status-lists/{name}",
    response_class=Response,
    responses={
        200: {"content": {"application/statuslist+jwt": {"schema": {"type": "string"}}}},
        **problems.responses(404, 503),
    },
)
def status_list(name: str, service: Service, now: Now) -> Response:
    token = service.status_list_token(name, now=now)
    return Response(
        token,
        media_type="application/statuslist+jwt",
        headers={"Cache-Control": f"public, max-age={service.settings.status_list_ttl}"},
    )


@router.post(
    "/v1/verify",
    response_model=VerifyResponse,
    dependencies=[Depends(require_json)],
    responses=problems.responses(413, 415, 422, 503),
    summary="Verify a credential",
    description="Always 200 with the result when the request is well formed: an invalid "
    "credential is an answer (`valid: false` and reason codes), not an error.",
)
def verify(body: VerifyRequest, service: Service, now: Now) -> dict[str, object]:
    return service.verify(body.credential, now=now).as_dict()


class IdsvcApi(FastAPI):
    def openapi(self) -> dict[str, Any]:
        """FastAPI's schema plus ``Problem``, which error responses reference by name."""
        schema = super().openapi()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault(Problem.__name__, Problem.model_json_schema())
        return schema


def create_app(service: IdService | None = None, *, clock: Clock | None = None) -> FastAPI:
    if service is None:
        settings = Settings()
        service = IdService.from_settings(settings, lambda: key_passphrase(settings))
    app = IdsvcApi(title="idsvc", version="0.1.0", docs_url="/docs", redoc_url=None)
    app.state.service = service
    app.state.clock = clock or (lambda: datetime.now(UTC))
    problems.install(app)
    app.include_router(router)
    # add_middleware puts each new one outside the previous ones.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY)
    app.add_middleware(ErrorGuard)
    app.add_middleware(SecurityHeaders)
    return app
