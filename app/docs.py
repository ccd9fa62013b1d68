"""The API's documentation pages, served with their assets by the app itself.

FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN (and ReDoc its fonts from
Google), so without internet they are blank pages. The same pages here point at the copies that
the `fastapi-offline` package ships, served from STATIC_PATH; the HTML names no other host.
ReDoc's bundle itself draws its sidebar logo from its CDN, with no option to turn that off: the
app serves the bundle with that one address removed (the image then hides itself).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
STATIC_PATH = "/docs-assets"
_ASSETS = Path(fastapi_offline.__file__).parent / "static"
_OAUTH2_REDIRECT_PATH = f"{DOCS_PATH}/oauth2-redirect"
_REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@lru_cache(maxsize=1)
def _redoc_bundle() -> bytes:
    # Read on first use: an app that never serves /redoc never holds the megabyte.
    return (_ASSETS / "redoc.standalone.js").read_bytes().replace(_REDOC_LOGO, b"")


def install_docs(app: FastAPI) -> None:
    """Add /docs, /redoc, their assets and the redirect from / to /docs: none of them in the schema."""
    title = app.title
    openapi_path = app.openapi_url or "/openapi.json"

    async def swagger_ui(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_path}",
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=f"{root}{_OAUTH2_REDIRECT_PATH}",
            swagger_js_url=f"{root}{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_PATH}/favicon.png",
            # A token survives a reload of the page, so "Authorize" is once per browser session;
            # no validator badge, which would send the schema to validator.swagger.io.
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        )

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_path}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_PATH}/favicon.png",
            with_google_fonts=False,
        )

    async def redoc_bundle(request: Request) -> Response:
        return Response(_redoc_bundle(), media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})

    async def home(request: Request) -> Response:
        return RedirectResponse(f"{request.scope.get('root_path', '')}{DOCS_PATH}", status_code=307)

    app.router.routes.extend(
        [
            Route("/", home, methods=["GET"], include_in_schema=False),
            Route(DOCS_PATH, swagger_ui, methods=["GET"], include_in_schema=False),
            Route(_OAUTH2_REDIRECT_PATH, oauth2_redirect, methods=["GET"], include_in_schema=False),
            Route(REDOC_PATH, redoc, methods=["GET"], include_in_schema=False),
            # Before the mount, which would serve the bundle as shipped.
            Route(f"{STATIC_PATH}/redoc.standalone.js", redoc_bundle, methods=["GET"], include_in_schema=False),
            Mount(STATIC_PATH, StaticFiles(directory=_ASSETS), name="docs-assets"),
        ]
    )
