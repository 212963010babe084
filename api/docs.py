"""OpenAPI pages (Swagger UI, ReDoc) served with the app's own copies of their scripts: no CDN, no inline script.

One-stop centres often run without internet; FastAPI's default pages load their JavaScript from
jsDelivr and render blank offline. The assets come from the PyPI package ``fastapi-offline`` (its
``static`` folder: swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png).

The app's Content-Security-Policy (:mod:`api.security`) has ``script-src 'self'`` and no
``'unsafe-inline'``, so FastAPI's ``get_swagger_ui_html`` (which starts Swagger UI with an inline
script) and its OAuth2 redirect page would be blocked. The pages here are our own small HTML: the
settings go in ``data-`` attributes and the start-up code is ``/static/docs/swagger-init.js`` and
``/static/docs/oauth2-redirect.js`` (files in ``api/static/docs/``, served from the same mount as
the fastapi-offline assets). ReDoc starts itself from its ``<redoc spec-url>`` element; its search
box is off because it runs in a ``blob:`` web worker that the policy does not allow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/docs"
OWN_ASSETS = Path(__file__).parent / "static" / "docs"


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def _attr(value: str) -> str:
    return escape(value, quote=True)


def swagger_ui_page(
    title: str, openapi_url: str, assets_url: str, oauth2_redirect_url: str, csrf_token: str | None = None
) -> str:
    csrf = f' data-csrf-token="{_attr(csrf_token)}"' if csrf_token else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{_attr(assets_url)}/swagger-ui.css">
<link rel="icon" href="{_attr(assets_url)}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{_attr(openapi_url)}"
     data-oauth2-redirect-url="{_attr(oauth2_redirect_url)}"{csrf}></div>
<script src="{_attr(assets_url)}/swagger-ui-bundle.js"></script>
<script src="{_attr(assets_url)}/swagger-init.js"></script>
</body>
</html>
"""


def redoc_page(title: str, openapi_url: str, assets_url: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="{_attr(assets_url)}/favicon.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<noscript>ReDoc needs JavaScript to show the API documentation.</noscript>
<redoc spec-url="{_attr(openapi_url)}" disable-search="true"></redoc>
<script src="{_attr(assets_url)}/redoc.standalone.js"></script>
</body>
</html>
"""


def oauth2_redirect_page(assets_url: str) -> str:
    return f"""<!doctype html>
<html lang="en-US">
<head><meta charset="utf-8"><title>Swagger UI: OAuth2 Redirect</title></head>
<body>
<script src="{_attr(assets_url)}/oauth2-redirect.js"></script>
</body>
</html>
"""


def add_offline_docs(
    app: FastAPI,
    docs_url: str = "/docs",
    redoc_url: str = "/redoc",
    dependencies: Sequence[Any] | None = None,
    csrf_token: Callable[[Request], str | None] | None = None,
) -> None:
    """Serve ``docs_url`` (Swagger UI), ``redoc_url`` (ReDoc) and their assets under ``/static/docs``.

    *dependencies* (e.g. ``[Depends(require("docs.read"))]``) guard the HTML pages; the assets are
    public library files. *csrf_token*, if given, returns the caller's session CSRF token: Swagger UI
    then sends it as ``X-CSRF-Token`` with its "Try it out" requests.
    """
    # Our own files first, then fastapi-offline's; one mount serves both.
    app.mount(
        ASSETS_URL,
        StaticFiles(directory=OWN_ASSETS, packages=[("fastapi_offline", "static")]),
        name="docs-assets",
    )
    oauth2_url = docs_url + "/oauth2-redirect"
    deps = list(dependencies or [])

    def title() -> str:
        return f"{app.title} — API"

    @app.get(docs_url, include_in_schema=False, dependencies=deps)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return HTMLResponse(
            swagger_ui_page(
                title(),
                f"{root}{app.openapi_url}",
                f"{root}{ASSETS_URL}",
                f"{root}{oauth2_url}",
                csrf_token(request) if csrf_token else None,
            )
        )

    @app.get(oauth2_url, include_in_schema=False, dependencies=deps)
    def swagger_oauth2_redirect(request: Request) -> HTMLResponse:
        return HTMLResponse(oauth2_redirect_page(f"{request.scope.get('root_path', '')}{ASSETS_URL}"))

    @app.get(redoc_url, include_in_schema=False, dependencies=deps)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return HTMLResponse(redoc_page(title(), f"{root}{app.openapi_url}", f"{root}{ASSETS_URL}"))
