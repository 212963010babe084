"""HTTP answers for sohoa's error tree (:mod:`sohoa.errors`): never a bare 500.

* :class:`~sohoa.errors.TransientError` (storage, index or broker unavailable) → ``503`` with
  ``Retry-After`` and ``{"detail": {"message": "<Vietnamese> (<English>)", "backend": …}}``: nothing was
  lost, the client sends the same request again later (uploads are idempotent);
* :class:`~sohoa.errors.ConfigError` (the installation is wrong) → ``503`` with a longer ``Retry-After``;
* any other :class:`~sohoa.errors.SohoaError` → ``500`` with a message, logged.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sohoa.errors import ConfigError, SohoaError, TransientError, unavailable_message

log = logging.getLogger("sohoa.api")


def transient_error(request: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, TransientError)
    log.warning("%s %s: %s unavailable: %s", request.method, request.url.path, e.backend or "backend", e)
    return JSONResponse(
        {"detail": {"message": unavailable_message(e), "backend": e.backend or "backend"}},
        status_code=503,
        headers={"Retry-After": str(e.retry_after_s)},
    )


def config_error(request: Request, e: Exception) -> JSONResponse:
    log.error("%s %s: configuration error: %s", request.method, request.url.path, e)
    return JSONResponse(
        {"detail": {"message": "hệ thống đang được cấu hình sai, quản trị viên cần kiểm tra "
                               f"(service misconfigured: {type(e).__name__})"}},
        status_code=503,
        headers={"Retry-After": "300"},
    )  # fmt: skip


def internal_error(request: Request, e: Exception) -> JSONResponse:
    log.error("%s %s failed: %s: %s", request.method, request.url.path, type(e).__name__, e)
    return JSONResponse(
        {"detail": {"message": f"lỗi hệ thống, không thực hiện được yêu cầu (internal error: {type(e).__name__})"}},
        status_code=500,
    )


def register(app: FastAPI) -> None:
    app.add_exception_handler(TransientError, transient_error)
    app.add_exception_handler(ConfigError, config_error)
    app.add_exception_handler(SohoaError, internal_error)
