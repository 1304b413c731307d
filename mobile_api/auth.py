"""Who is calling: API clients by ``Authorization: Bearer <secret>``, or anonymous callers.

    Payroll = Annotated[Caller, Depends(require_scope("payroll"))]   # a client with the scope
    Anyone = Annotated[Caller, Depends(optional_caller)]             # anonymous allowed

Answers: 401 + ``WWW-Authenticate: Bearer`` for a missing, malformed, unknown, rotated-out
or disabled credential (one answer for all, so a caller learns nothing about which); 403
for a valid client without the scope; 429 + ``Retry-After`` past the rate limit (per client,
and per address for anonymous callers), counted in the database so that every worker shares
it. The secret is checked against the database on every request (idsvc.clients.api_clients):
disabling a
client or rotating its secret takes effect on the next request, on every worker.

``address`` is the TCP peer as uvicorn reports it (``idsvc serve`` does not trust
``X-Forwarded-For``: a client could forge it to escape its limit). Behind a reverse proxy every
anonymous caller therefore shares the proxy's address and its budget: rate-limit anonymous
callers at the proxy, or raise ``IDSVC_RATE_LIMIT_ANONYMOUS``.

Mutual TLS (banks): the reverse proxy verifies the client certificate and passes it on in
``X-Client-Cert`` (URL-escaped PEM, nginx's ``$ssl_client_escaped_cert``). That header is
believed only when the TCP peer is in ``IDSVC_TRUSTED_PROXIES``; from anyone else it is
ignored, as if absent. The certificate's SHA-256 then names the client
(``ApiClients.authenticate_certificate``); a bearer secret sent with it must be the same
client's. A header from a trusted proxy that holds no readable certificate is a 401.

OpenAPI: ``require_scope`` reads the secret through ``BEARER`` (a FastAPI security scheme)
with its scope, so ``/openapi.json`` declares the ``bearer`` scheme and, on each operation, the
scope that dependency enforces: the declaration and the check are one object. Routes open to
anonymous callers (``optional_caller``) declare nothing.
"""

from __future__ import annotations

import inspect
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, HTTPException, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from starlette.concurrency import run_in_threadpool

from idsvc.clients.api_clients import SCOPES, ApiClients, fingerprint_of_certificate
from idsvc.clients.rate_limits import Limit, RateLimits
from idsvc.config import Settings
from idsvc.errors import ApiClientError, AuthenticationFailed, RateLimited
from mobile_api.deps import get_now, now_of

REALM = 'Bearer realm="idsvc"'
CERT_HEADER = "x-client-cert"
_MAX_CERT_HEADER = 16384  # a client certificate chain's leaf, URL-escaped, fits easily


@dataclass(frozen=True)
class Caller:
    client_id: str | None  # None: anonymous
    client_name: str | None
    scopes: frozenset[str]
    address: str

    @property
    def anonymous(self) -> bool:
        return self.client_id is None


class Unauthenticated(HTTPException):
    def __init__(self, detail: str, error: str | None = None) -> None:
        challenge = REALM + (f', error="{error}"' if error else "")
        super().__init__(401, detail, headers={"WWW-Authenticate": challenge})


class MissingScope(HTTPException):
    def __init__(self, scope: str) -> None:
        super().__init__(
            403,
            f"this client lacks the scope {scope!r}",
            headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'},
        )


class TooManyRequests(HTTPException):
    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "rate limit reached", headers={"Retry-After": str(retry_after)})


def _bearer(request: Request) -> str | None:
    """The bearer secret, None when no Authorization header; 401 when it is not Bearer."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("send Authorization: Bearer <client secret>", "invalid_request")
    return secret.strip()


class BearerSecret(SecurityBase):
    """``Authorization: Bearer <secret>`` as a dependency that OpenAPI declares (``bearer``)."""

    def __init__(self) -> None:
        self.scheme_name = "bearer"
        self.model = HTTPBearerModel(
            bearerFormat="idsvc_<client id>_<secret>",
            description="An API client's secret (`idsvc client add`). Banks on mutual TLS "
            "may send no secret instead: the reverse proxy verifies the client certificate and "
            f"passes it in `{CERT_HEADER.title()}`; its SHA-256 names the client and its "
            "scopes (`idsvc client add --cert`). A secret sent with a certificate must "
            "be the same client's. Each operation lists the scope it needs.",
        )

    async def __call__(self, request: Request) -> str | None:
        return _bearer(request)


BEARER = BearerSecret()


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@lru_cache(maxsize=8)
def _networks(setting: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(
        ipaddress.ip_network(item.strip(), strict=False)
        for item in setting.split(",")
        if item.strip()
    )


def _proxied_certificate(request: Request) -> str | None:
    """SHA-256 of the client certificate a trusted proxy passed on; None when there is none
    or the peer is not a trusted proxy (the header is then ignored)."""
    value = request.headers.get(CERT_HEADER)
    if not value:
        return None
    networks = _networks(request.app.state.services.settings.trusted_proxies)
    try:
        peer = ipaddress.ip_address(_address(request))
    except ValueError:
        return None
    if not any(peer in network for network in networks):
        return None
    try:
        if len(value) > _MAX_CERT_HEADER:
            raise ApiClientError("certificate header too long")
        return fingerprint_of_certificate(unquote(value, errors="strict").encode("ascii"))
    except (ApiClientError, UnicodeError) as exc:
        raise Unauthenticated("the proxy passed no readable client certificate") from exc


def _count(request: Request, key: str, limit: Limit, now: datetime) -> None:
    limits: RateLimits = request.app.state.rate_limits
    try:
        limits.hit(key, limit, now)
    except RateLimited as exc:
        raise TooManyRequests(exc.retry_after) from exc


def _client_caller(
    request: Request, secret: str | None, cert_sha256: str | None, now: datetime
) -> Caller:
    clients: ApiClients = request.app.state.clients
    try:
        if cert_sha256 is not None:
            client = clients.authenticate_certificate(cert_sha256, secret, now)
        elif secret is not None:
            client = clients.authenticate(secret, now)
        else:  # pragma: no cover - callers check that one of them is there
            raise AuthenticationFailed()
    except AuthenticationFailed as exc:
        raise Unauthenticated("invalid or disabled client credentials", "invalid_token") from exc
    limit = Limit(request.app.state.services.settings.rate_limit_client)
    _count(request, f"client:{client.id}", limit, now)
    return Caller(client.id, client.name, client.scopes, _address(request))


def require_scope(
    scope: str, *, waived: Callable[[Settings], bool] | None = None
) -> Callable[..., Caller]:
    """A dependency that admits only an authenticated, enabled client holding ``scope``
    (anyone, as an anonymous caller, when ``waived(settings)`` is true)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def dependency(request: Request, now: datetime, secret: str | None) -> Caller:
        if waived is not None and waived(request.app.state.services.settings):
            return Caller(None, None, frozenset(), _address(request))
        cert = _proxied_certificate(request)
        if secret is None and cert is None:
            raise Unauthenticated("this endpoint needs an API client: Authorization: Bearer")
        caller = _client_caller(request, secret, cert, now)
        if scope not in caller.scopes:
            raise MissingScope(scope)
        return caller

    dependency.__name__ = f"require_scope_{scope.replace(':', '_')}"
    # The signature FastAPI reads, built here because the scope is a value of this call (a
    # string annotation could not name it): the secret comes through BEARER with the scope,
    # which is what puts the scheme and the scope in /openapi.json.
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("request", positional, annotation=Request),
            inspect.Parameter("now", positional, annotation=Annotated[datetime, Depends(get_now)]),
            inspect.Parameter(
                "secret",
                positional,
                annotation=Annotated[str | None, Security(BEARER, scopes=[scope])],
            ),
        ],
        return_annotation=Caller,
    )
    return dependency


async def optional_caller(request: Request) -> Caller:
    """Anonymous callers are allowed (public verification), rate-limited per address; a
    client that sends credentials is authenticated (bad credentials are a 401, never a silent
    fall-back to anonymous) and rate-limited as itself.

    The clock is read here rather than through ``Now``: each dependency FastAPI solves costs
    ~8 µs a request (a verification is ~500 µs)."""
    return await anyone(request, now_of(request))


async def anyone(request: Request, now: datetime) -> Caller:
    """``optional_caller`` at ``now``, for a dependency that also needs the clock
    (``routes.verifications``). ``async`` so that the common case (an anonymous request
    counted in memory) costs no thread hop; whatever touches the database runs in the thread
    pool."""
    secret = _bearer(request)
    cert = _proxied_certificate(request)
    if secret is not None or cert is not None:
        return await run_in_threadpool(_client_caller, request, secret, cert, now)
    address = _address(request)
    key = f"addr:{address}"
    limit = Limit(request.app.state.services.settings.rate_limit_anonymous)
    limits: RateLimits = request.app.state.rate_limits
    if limits.needs_database(key, limit, now):
        await run_in_threadpool(_count, request, key, limit, now)
    else:
        _count(request, key, limit, now)
    return Caller(None, None, frozenset(), address)


Anyone = Annotated[Caller, Depends(optional_caller)]
Admin = Annotated[Caller, Depends(require_scope("admin"))]
