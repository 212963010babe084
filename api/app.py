"""FastAPI application: wiring of the routers (one per resource), middlewares and the app's state.

Who may call what is decided in one place, ``api.deps.require`` (one permission per route); every
read of personal data is audited there or in the route, through ``api.deps.audit``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import AppState, LoginRequired, login_url, require
from api.docs import add_offline_docs
from api.errors import register as register_error_handlers
from api.routes import audit as audit_routes
from api.routes import auth as auth_routes
from api.routes import documents, dossiers, health, pages, reports, search, station, ui_admin, ui_clerk, ui_manage
from ingest import InputError
from sohoa import __version__
from sohoa.audit import AuditLog
from sohoa.auth import AuthStore, LoginThrottle, Principal
from sohoa.context import Context
from sohoa.settings import Settings

log = logging.getLogger("sohoa.api")


def create_app(
    settings: Settings | None = None,
    ctx: Context | None = None,
    run_workers: bool | None = None,
    audit_log: Any = None,
) -> FastAPI:
    """The app. *audit_log* replaces the object-storage audit log (benches compare with ``NullAudit``)."""
    settings = settings or (ctx.settings if ctx else Settings.from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from sohoa.tempfiles import remove_stale

        own = ctx is None
        c = ctx or Context(settings)
        audit = audit_log if audit_log is not None else AuditLog(c.store)
        app.state.sohoa = AppState(settings, c, AuthStore(c.store, settings.secret_key), audit, LoginThrottle())
        removed = remove_stale()
        if removed:
            log.info("removed %d temp folder(s) left by dead processes", removed)
        if not app.state.sohoa.auth.has_users():
            log.warning("no user accounts yet: create one with `sohoa user add NAME --role admin --unit '*'`")
        workers = settings.embedded_broker if run_workers is None else run_workers
        if workers:
            c.queue.start_worker(settings.worker_threads)
            requeued = c.recover()
            if requeued:
                log.info("re-queued %d unfinished document(s) after restart", len(requeued))
        try:
            yield
        finally:
            audit.close()
            if own:
                c.close()

    app = FastAPI(
        title="sohoa",
        version=__version__,
        description=(
            "Số hóa hồ sơ TTHC: upload scans, OCR them into Vietnamese, search, count digitization. "
            "Every route needs credentials: `Authorization: Bearer <token>` (see `sohoa token create`) or the "
            "session cookie of a signed-in user (state-changing requests then carry `X-CSRF-Token`)."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    _add_middlewares(app, settings)

    plain_openapi = app.openapi

    def openapi_with_errors() -> dict[str, Any]:
        """FastAPI documents 422 as a list of validation errors; sohoa's own refusals (bad dates, pages,
        files) answer ``{"detail": {"message": …}}``: the schema says both, and how to authenticate."""
        if app.openapi_schema:
            return app.openapi_schema
        schema = plain_openapi()
        comps = schema.setdefault("components", {})
        comps.setdefault("schemas", {})["HTTPValidationError"] = {
            "title": "HTTPValidationError",
            "type": "object",
            "required": ["detail"],
            "properties": {
                "detail": {
                    "anyOf": [
                        {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                        {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
                    ]
                }
            },
        }
        comps["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi_with_errors  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Principal = Depends(require("docs.read"))) -> JSONResponse:
        return JSONResponse(app.openapi())

    app.openapi_url = "/openapi.json"  # read by the docs pages
    add_offline_docs(
        app,
        dependencies=[Depends(require("docs.read", html=True))],
        csrf_token=lambda request: getattr(getattr(request.state, "session", None), "csrf", None),
    )

    app.include_router(health.router)  # /health, /health/live, /health/ready, /health/details

    for module in (documents, search, dossiers, reports, station, auth_routes, audit_routes, pages, ui_clerk,
                   ui_manage, ui_admin):  # fmt: skip
        app.include_router(module.router)
    from pathlib import Path

    from fastapi.staticfiles import StaticFiles

    app.mount("/static/app", StaticFiles(directory=Path(__file__).parent / "static" / "app"), name="app-assets")

    register_error_handlers(app)  # sohoa.errors: transient → 503 + Retry-After, never a bare 500

    @app.exception_handler(InputError)
    def input_error(_: Request, e: InputError) -> JSONResponse:
        return JSONResponse({"detail": {"message": str(e)}}, status_code=e.status)

    html_prefixes = ("/view/", "/doc/", "/queue", "/upload", "/reports", "/registry", "/admin/", "/audit-log")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> Response:
        """The pages answer errors with a page in Vietnamese; the API with JSON."""
        path = request.url.path
        if request.method == "GET" and (path == "/" or path.startswith(html_prefixes)):
            from api.ui import page

            principal = getattr(request.state, "principal", None)
            if principal is not None:
                detail = e.detail.get("message") if isinstance(e.detail, dict) else str(e.detail)
                titles = {403: "Không có quyền", 404: "Không tìm thấy"}
                return page(request, principal, "error.html", status_code=e.status_code, status=e.status_code,
                            title=titles.get(e.status_code, "Có lỗi"), message=detail)  # fmt: skip
        return await http_exception_handler(request, e)

    @app.exception_handler(LoginRequired)
    def login_required(_: Request, e: LoginRequired) -> Response:
        return RedirectResponse(login_url(e.next_url), status_code=303)

    @app.middleware("http")
    async def refresh_session(request: Request, call_next: Any) -> Response:
        from api.deps import set_session_cookie

        response: Response = await call_next(request)
        value = getattr(request.state, "refresh_session", None)
        if value:
            set_session_cookie(request, response, value)
        return response

    return app


def _add_middlewares(app: FastAPI, settings: Settings) -> None:
    from api.limits import BodyLimit
    from api.security import SecurityHeaders, cors_middleware_kwargs

    def limit_for(scope: dict[str, Any]) -> int | None:
        """Request body limits, enforced while the body streams in: a batch upload, any other file upload
        (stack, re-scan, registry file, unit list), and 1 MiB for forms and JSON."""
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return None
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path == "/documents":
            return settings.max_batch_mb * 1024 * 1024
        ctype = dict(scope.get("headers") or []).get(b"content-type", b"")
        if ctype.startswith(b"multipart/form-data") or path == "/dossiers":
            return settings.max_upload_mb * 1024 * 1024
        return 1024 * 1024

    cors = cors_middleware_kwargs(settings.cors_origins)
    if cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, **cors)
    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(SecurityHeaders, trusted_proxy=settings.trusted_proxy)
