"""``GET /health``: the first health check (initialised, and the database answers), still what
the Dockerfile's HEALTHCHECK and the monitoring table in docs/operations.md call. The operations
probes are ``/healthz`` and ``/readyz`` (``mobile_api.routes.health``)."""

from __future__ import annotations

from fastapi import APIRouter

from mobile_api import problems
from mobile_api.deps import Operations
from mobile_api.schemas.health import HealthResponse

router = APIRouter(tags=["system"])


@router.get(
    "/health",
    response_model=HealthResponse,
    responses=problems.responses(503),
    operation_id="getHealth",
)
def health(operations: Operations) -> dict[str, str]:
    return operations.health()
