"""App factory: ``create_app(service)``; uvicorn calls it with no argument (``--factory``).

Routes live in ``mobile_api/routes`` (one module per area, gathered by ``mobile_api.api``);
each calls one use case and holds no business rules. The clock is read here (``clock``,
injectable for tests) and passed down as ``now``. The use-case objects the routes share are
made once per worker and kept on ``app.state``: the service, the API clients, the rate limits,
the cached verifier, the card challenges and the who-checked log.

Middleware, outermost first: ``RequestContext`` (request id, metrics, access log;
``mobile_api.request_context``) → ``SecurityHeaders`` (nosniff; no-store unless the route set a
cache policy) → ``ErrorGuard`` (any unhandled error → generic 500 problem) → ``BodyLimit``
(64 KiB) → FastAPI's exception handlers (``problems``) → routes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from idsvc.clients.api_clients import ApiClients
from idsvc.clients.rate_limits import RateLimits
from idsvc.config import key_passphrase, load_settings
from idsvc.service import IdService
from idsvc.verification.card_challenges import CardChallenges
from idsvc.verification.online import OnlineVerifier
from mobile_api import docs, problems
from mobile_api.api import api_router
from mobile_api.deps import Clock
from mobile_api.limits import BodyLimit
from mobile_api.metrics import CountingCheckLog, watch_pool
from mobile_api.middleware import ErrorGuard, SecurityHeaders
from mobile_api.request_context import RequestContext
from mobile_api.schemas import Problem

MAX_BODY = 64 * 1024


class IdsvcApi(FastAPI):
    def openapi(self) -> dict[str, Any]:
        """FastAPI's schema plus ``Problem``, which error responses reference by name."""
        schema = super().openapi()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault(Problem.__name__, Problem.model_json_schema())
        return schema


def create_app(service: IdService | None = None, *, clock: Clock | None = None) -> FastAPI:
    if service is None:
        settings = load_settings()  # every setting checked before the first request
        service = IdService.from_settings(settings, lambda: key_passphrase(settings))
    # /docs comes from mobile_api.docs: Swagger UI served from the package, not a CDN.
    app = IdsvcApi(title="idsvc", version="0.1.0", docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.clock = clock or (lambda: datetime.now(UTC))
    app.state.clients = ApiClients(service.db)
    app.state.rate_limits = RateLimits(service.db, sync_interval=service.settings.rate_limit_sync)
    # Write-behind: a check reaches the database within IDSVC_CHECK_LOG_FLUSH seconds.
    # CountingCheckLog: the same log, also counted by result and reason (mobile_api.metrics).
    app.state.check_log = CountingCheckLog(
        service.db, flush_interval=service.settings.check_log_flush
    )
    watch_pool(service)
    app.state.verifier = OnlineVerifier(service, check_log=app.state.check_log)
    app.state.challenges = CardChallenges(service, app.state.verifier)
    problems.install(app)
    app.include_router(api_router)
    docs.install(app)
    # add_middleware puts each new one outside the previous ones.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY)
    app.add_middleware(ErrorGuard)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext)  # outermost: request id, metrics, access log
    return app
