"""What verifiers cache: the JWKS and the status lists. Public, cacheable, CORS for any origin.

Each answer carries an ``ETag``; a matching ``If-None-Match`` gets a 304 without a body, so a
phone or a CDN revalidates cheaply. The status-list path never moves: every credential names it.

A status-list token is signed with ``iat`` at the start of the current minute, so every
worker produces the same payload within a minute while the list is unchanged. Its ETag is weak
and names that payload (ECDSA signatures differ at each signing, the content does not): a
revocation changes the payload, and so the ETag, at once. Both documents are kept as served
(``idsvc.credentials.publication``): a revalidation costs one indexed read, never a signature.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from idsvc.credentials.publication import Published
from mobile_api import problems
from mobile_api.deps import Credentials, Now

router = APIRouter(tags=["keys and status"])

KEYS_CACHE = "public, max-age=300"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Cache-Control",
}
_304: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified (the ETag in If-None-Match is current)"}
}


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    if header.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §8.8.3.2): W/ prefixes do not matter for If-None-Match.
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return etag.removeprefix("W/") in tags


def _cacheable(request: Request, response: Response, etag: str, cache: str) -> Response:
    headers = {**CORS, "ETag": etag, "Cache-Control": cache}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response


def _jwks(request: Request, document: Published) -> Response:
    response = Response(document.body, media_type="application/json")
    return _cacheable(request, response, f'"{document.tag}"', KEYS_CACHE)


@router.get(
    "/.well-known/jwks.json",
    responses={**_304, **problems.responses(503)},
    operation_id="getJwks",
    summary="Public keys of every issuer key (current and retired)",
)
def jwks(request: Request, credentials: Credentials) -> Response:
    return _jwks(request, credentials.jwks_document())


@router.get(
    "/issuers/{slug}/jwks.json",
    responses={**_304, **problems.responses(404, 503)},
    operation_id="getIssuerJwks",
    summary="Public keys of one issuer",
)
def issuer_jwks(slug: str, request: Request, credentials: Credentials) -> Response:
    return _jwks(request, credentials.jwks_document(slug))


@router.get(
    "/status-lists/{name}",
    response_class=Response,
    responses={
        200: {"content": {"application/statuslist+jwt": {"schema": {"type": "string"}}}},
        **_304,
        **problems.responses(404, 503),
    },
    operation_id="getStatusList",
    summary="A signed Token Status List (statuslist+jwt)",
)
def status_list(name: str, request: Request, credentials: Credentials, now: Now) -> Response:
    document = credentials.status_list_document(name, now=now.replace(second=0, microsecond=0))
    response = Response(document.body, media_type="application/statuslist+jwt")
    return _cacheable(
        request,
        response,
        f'W/"{document.tag}"',
        f"public, max-age={credentials.settings.status_list_ttl}",
    )


@router.options("/.well-known/jwks.json", include_in_schema=False)
@router.options("/issuers/{slug}/jwks.json", include_in_schema=False)
@router.options("/status-lists/{name}", include_in_schema=False)
def preflight() -> Response:
    """CORS preflight, for pages that send If-None-Match themselves: GET only, no cookies."""
    return Response(
        status_code=204,
        headers={
            **CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": "If-None-Match",
            "Access-Control-Max-Age": "86400",
        },
    )
