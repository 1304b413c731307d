"""``/health``: kept as it is until the operations routes (``/healthz``, ``/readyz``) land."""

from __future__ import annotations

from fastapi import APIRouter

from mobile_api import problems
from mobile_api.deps import Service
from mobile_api.schemas import Health

router = APIRouter(tags=["system"])


@router.get(
    "/health", response_model=Health, responses=problems.responses(503), operation_id="getHealth"
)
def health(service: Service) -> dict[str, str]:
    return service.health()
