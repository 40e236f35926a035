"""The Swagger UI page at ``/api``, with its assets served by the node when it can.

The assets come from the ``fastapi-offline`` package (Swagger UI 5, which renders
OpenAPI 3.1); without that package the page falls back to FastAPI's CDN assets, which
the browser must then be able to reach. The OpenAPI document is always local.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

__all__ = ["DOCS_URL", "OPENAPI_URL", "STATIC_URL", "install_docs", "swagger_assets"]

DOCS_URL = "/api"
OPENAPI_URL = "/api/openapi.json"
STATIC_URL = "/api/static"


def swagger_assets() -> Path | None:
    """The directory holding ``swagger-ui-bundle.js`` and ``swagger-ui.css``, if shipped."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        return None
    static = Path(spec.origin).parent / "static"
    if (static / "swagger-ui-bundle.js").is_file() and (static / "swagger-ui.css").is_file():
        return static
    return None


def install_docs(app: FastAPI, title: str) -> None:
    assets = swagger_assets()
    if assets is None:

        @app.get(DOCS_URL, include_in_schema=False)
        async def swagger_ui_cdn() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{title} API")

        return
    app.mount(STATIC_URL, StaticFiles(directory=assets), name="swagger-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{title} API",
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon.png",
        )
