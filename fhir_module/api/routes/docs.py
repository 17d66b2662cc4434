"""`/docs` (Swagger UI) and `/redoc` (ReDoc), with every asset served by the service itself.

Hospitals run services on closed networks, where FastAPI's default pages (scripts from a CDN) are
blank. The assets come from the `fastapi-offline` package (Swagger UI: Apache-2.0, ReDoc: MIT; its
licence file names both), mounted at `/static/docs`. ReDoc's script names one outside address (its
"powered by" logo), which is rewritten to the local favicon. Public like /openapi.json: no patient data.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/docs"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
REDOC_JS = "redoc.standalone.js"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

router = APIRouter(include_in_schema=False)


def assets() -> StaticFiles:
    return StaticFiles(directory=ASSETS_DIR)


@lru_cache(maxsize=1)
def _redoc_script() -> bytes:
    return (ASSETS_DIR / REDOC_JS).read_bytes().replace(REDOC_LOGO.encode(), f"{ASSETS_URL}/favicon.png".encode())


@router.get(f"{ASSETS_URL}/{REDOC_JS}")
async def redoc_script() -> Response:
    """ReDoc without its one outside address (matched before the static mount)."""
    return Response(_redoc_script(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"})


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title}: Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
        # No badge from the public validator service: nothing leaves the closed network.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title}: ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
