"""App factory: ``create_app(service)``; uvicorn calls it with no argument (``--factory``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from idsvc.config import Settings, key_passphrase
from idsvc.service import IdService
from mobile_api import problems
from mobile_api.limits import BodyLimit
from mobile_api.schemas import Health, VerifyRequest, VerifyResponse

MAX_BODY = 64 * 1024


def get_service(request: Request) -> IdService:
    service: IdService = request.app.state.service
    return service


def get_now() -> datetime:
    return datetime.now(UTC)


Service = Annotated[IdService, Depends(get_service)]
Now = Annotated[datetime, Depends(get_now)]

router = APIRouter()


@router.get("/health", response_model=Health)
def health(service: Service) -> dict[str, str]:
    return service.health()


@router.get("/.well-known/jwks.json")
def jwks(service: Service) -> JSONResponse:
    return JSONResponse(service.jwks(), headers={"Cache-Control": "public, max-age=300"})


@router.get("/issuers/{slug}/jwks.json")
def issuer_jwks(slug: str, service: Service) -> JSONResponse:
    return JSONResponse(service.jwks(slug), headers={"Cache-Control": "public, max-age=300"})


@router.get("/status-lists/{name}")
def status_list(name: str, service: Service, now: Now) -> Response:
    token = service.status_list_token(name, now=now)
    return Response(
        token,
        media_type="application/statuslist+jwt",
        headers={"Cache-Control": f"public, max-age={service.settings.status_list_ttl}"},
    )


@router.post("/v1/verify", response_model=VerifyResponse)
def verify(body: VerifyRequest, service: Service, now: Now) -> dict[str, object]:
    return service.verify(body.credential, now=now).as_dict()


def create_app(service: IdService | None = None) -> FastAPI:
    if service is None:
        settings = Settings()
        service = IdService.from_settings(settings, lambda: key_passphrase(settings))
    app = FastAPI(title="idsvc", version="0.1.0", docs_url="/docs", redoc_url=None)
    app.state.service = service
    problems.install(app)
    app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY)
    return app
