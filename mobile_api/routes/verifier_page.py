"""The officials' web verifier (a Progressive Web App) at ``/verify/``.

Static files come from ``mobile_api/static/verify/`` (plain ES modules, no build step) and the
Lao and Khmer fonts from ``idsvc/data/fonts/`` (served as ``fonts/``), read once at start-up
with their ETags. ``/verify/config.json`` tells the page what to download for
offline use (issuers, key sets, status lists) and the ministry's hard limit on data age.
``/v/{credential_id}`` serves the same page: it is the card's NFC tap URL, whose fragment
carries the signed QR payload (docs/claim169.md), so a tap verifies on the phone.

Every answer here carries its own Content-Security-Policy (``SecurityHeaders`` leaves a route's
own policy alone): scripts, styles, fonts and the worker only from this origin, no inline
script, no third-party origin; ``connect-src`` adds the origin of ``IDSVC_PUBLIC_URL`` when
that differs, since status-list URIs inside credentials point there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

import idsvc
from idsvc.config import Settings
from idsvc.verification.offline import TTL_CEILING, TTL_FLOOR
from mobile_api.deps import AppSettings, Verification

STATIC: Final = Path(__file__).resolve().parent.parent / "static" / "verify"
# The Lao and Khmer fonts live with idsvc, whose HTML reports embed the same files; the page
# still finds them at fonts/ (app.css, sw.js).
FONTS: Final = Path(idsvc.__file__).resolve().parent / "data" / "fonts"
PAGE: Final = "index.html"
# Revalidate every time (cheap with the ETag); the service worker is what keeps a copy offline.
CACHE: Final = "no-cache"
_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".ttf": "font/ttf",
    ".woff2": "font/woff2",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _load(root: Path) -> dict[str, Asset]:
    """Every servable file under ``root`` by its relative path; other types are not served."""
    assets: dict[str, Asset] = {}
    for path in sorted(root.rglob("*")):
        media_type = _TYPES.get(path.suffix)
        if not path.is_file() or media_type is None:
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[path.relative_to(root).as_posix()] = Asset(body, media_type, etag)
    return assets


ASSETS: Final = _load(STATIC) | {f"fonts/{n}": a for n, a in _load(FONTS).items()}


def content_security_policy(public_url: str) -> str:
    connect = "'self'"
    parts = urlsplit(public_url)
    if parts.scheme in ("http", "https") and parts.netloc:
        connect += f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; "
        "img-src 'self' data: blob:; media-src blob: mediastream:; worker-src 'self'; "
        f"manifest-src 'self'; connect-src {connect}; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    )


def _headers(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(settings.public_url),
        "Cache-Control": CACHE,
        **(extra or {}),
    }


def _asset(name: str, request: Request, settings: Settings) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise HTTPException(404, "no such file")
    extra = {"ETag": asset.etag}
    if name == "sw.js":
        # One worker script controls both /verify/ and the tap URLs under /v/.
        extra["Service-Worker-Allowed"] = "/"
    headers = _headers(settings, extra)
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


router = APIRouter(include_in_schema=False)


@router.get("/verify")
def verify_root(request: Request) -> RedirectResponse:
    # The service worker's scope is /verify/; browsers keep the #fragment across the redirect.
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/verify/{query}", status_code=308)


@router.get("/verify/")
def verify_page(request: Request, settings: AppSettings) -> Response:
    return _asset(PAGE, request, settings)


@router.get("/v/{credential_id}")
def tap_page(credential_id: str, request: Request, settings: AppSettings) -> Response:
    return _asset(PAGE, request, settings)


@router.get("/verify/config.json")
def verifier_config(verification: Verification, settings: AppSettings) -> JSONResponse:
    sources = verification.verifier_sources()
    body = {
        "hard_limit_seconds": settings.verifier_hard_limit_days * 86_400,
        "ttl_floor": TTL_FLOOR,
        "ttl_ceiling": TTL_CEILING,
        "issuers": [
            {
                "iss": s.iss,
                "jwks_uri": f"/issuers/{s.slug}/jwks.json",
                "status_lists": list(s.status_lists),
            }
            for s in sources
        ],
        "verify_api": ["/v1/verifications", "/v1/verify"],
    }
    return JSONResponse(body, headers=_headers(settings))


@router.get("/verify/{name:path}")
def verify_asset(name: str, request: Request, settings: AppSettings) -> Response:
    return _asset(name, request, settings)
