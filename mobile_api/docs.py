"""``/docs`` served from the package: Swagger UI files vendored in ``static/docs`` (see the
README there), an HTML page with no inline script, so it works without internet and under the
strict Content-Security-Policy that ``SecurityHeaders`` sends.

``install(app)`` mounts the assets at ``/static/docs`` and adds the page; build the app with
``docs_url=None`` so FastAPI's CDN-based page is not registered too.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

ASSETS = Path(__file__).parent / "static" / "docs"
ASSETS_PATH = "/static/docs"
# The files change only with a release of the package; a day is a good compromise.
ASSETS_CACHE = "public, max-age=86400"


class _CachedStaticFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["cache-control"] = ASSETS_CACHE
        return response


def page(openapi_url: str, title: str, assets: str = ASSETS_PATH) -> str:
    assets = escape(assets)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n"
        f'<link rel="stylesheet" href="{assets}/swagger-ui.css">\n'
        f'<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">\n'
        "</head>\n<body>\n"
        f'<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>\n'
        f'<script src="{assets}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{assets}/init.js"></script>\n'
        "</body>\n</html>\n"
    )


def install(app: FastAPI, *, path: str = "/docs") -> None:
    app.mount(ASSETS_PATH, _CachedStaticFiles(directory=ASSETS), name="docs-assets")

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return HTMLResponse(
            page(f"{root}{app.openapi_url}", f"{app.title} API", f"{root}{ASSETS_PATH}")
        )

    app.add_api_route(path, docs, methods=["GET"], include_in_schema=False)
