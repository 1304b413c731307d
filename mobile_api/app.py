"""App factory: ``create_app(services)``; uvicorn calls it with no argument (``--factory``).

Routes live in ``mobile_api/routes`` (one module per area, gathered by ``mobile_api.api``);
each calls one use case and holds no business rules. The clock is read here (``clock``,
injectable for tests) and passed down as ``now``. The use-case objects the routes share are
made once per worker and kept on ``app.state``: the services (``idsvc.services.Services``, whose
features the routes get through ``mobile_api.deps``), the API clients, the rate limits and the
database metrics.

Middleware, outermost first: ``RequestContext`` (request id, metrics, access log;
``mobile_api.request_context``) → ``SecurityHeaders`` (nosniff; no-store unless the route set a
cache policy) → ``ErrorGuard`` (any unhandled error → generic 500 problem) → ``BodyLimit``
(64 KiB) → FastAPI's exception handlers (``problems``) → routes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

from idsvc.clients.api_clients import ApiClients
from idsvc.clients.rate_limits import RateLimits
from idsvc.config import key_passphrase, load_settings
from idsvc.services import Services
from mobile_api import docs, problems
from mobile_api.api import api_router
from mobile_api.deps import Clock
from mobile_api.limits import BodyLimit
from mobile_api.metrics import DatabaseCollector, count_checks, watch_pool
from mobile_api.middleware import ErrorGuard, SecurityHeaders
from mobile_api.request_context import RequestContext
from mobile_api.schemas.problem import ProblemResponse

MAX_BODY = 64 * 1024


class IdsvcApi(FastAPI):
    def openapi(self) -> dict[str, Any]:
        """FastAPI's schema plus ``ProblemResponse``, which error responses reference by name."""
        schema = super().openapi()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault(ProblemResponse.__name__, ProblemResponse.model_json_schema())
        return schema


def flat_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes of ``routes`` with every included router replaced by its own routes, in order.

    Why: FastAPI keeps an included router as one nested route and matches a request through
    every level twice (match, then handle), re-reading the version of every router below it
    each time: with ``api_router``'s fifteen routers that was 12% of a verification's
    instructions (callgrind, in-process: 3.31 -> 2.90 M a request). ``api_router`` includes
    its routers with no prefix, tags or dependencies of its own, so its routes are the same
    routes one level up (tests/mobile_api/test_app_routes.py checks that the OpenAPI document
    is unchanged).
    """
    for route in routes:
        nested = getattr(route, "original_router", None)  # FastAPI's included router
        if isinstance(nested, APIRouter):
            yield from flat_routes(nested.routes)
        else:
            yield route


def create_app(services: Services | None = None, *, clock: Clock | None = None) -> FastAPI:
    worker = services is None  # uvicorn's call (--factory): this process serves this app only
    if services is None:
        settings = load_settings()  # every setting checked before the first request
        services = Services.from_settings(settings, lambda: key_passphrase(settings))
    infra = services.infra
    # /docs comes from mobile_api.docs: Swagger UI served from the package, not a CDN.
    app = IdsvcApi(title="idsvc", version="0.1.0", docs_url=None, redoc_url=None)
    app.state.services = services
    app.state.clock = clock or (lambda: datetime.now(UTC))
    app.state.clients = ApiClients(infra.db)
    app.state.rate_limits = RateLimits(infra.db, sync_interval=infra.settings.rate_limit_sync)
    app.state.database_metrics = DatabaseCollector(infra)
    watch_pool(infra)
    # Every check the who-checked log records is also counted by result and reason
    # (mobile_api.metrics); the verifier's caches and the log's write-behind are per worker.
    services.verification.check_log.listen(count_checks)
    services.build_for_serving()
    problems.install(app)
    app.router.routes.extend(flat_routes(api_router.routes))
    docs.install(app)
    # add_middleware puts each new one outside the previous ones.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY)
    app.add_middleware(ErrorGuard)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext)  # outermost: request id, metrics, access log
    if worker:
        # What the worker has built (modules, tables, schemas, routes, caches) lives as long as
        # it does. Frozen, the collector stops re-scanning it at every full collection: a
        # 10,000-line payroll batch set off ~13, a quarter of its CPU. Not for an app made
        # in-process (tests make many): frozen objects are never freed.
        gc.freeze()
    return app
