"""Health: liveness, readiness with each backend's state and latency, details for admins; and the
background maintenance every API process runs (the reconciler, one active at a time across processes).

* ``GET /health`` and ``GET /health/live`` — the process answers (no backend is touched), public;
* ``GET /health/ready`` — storage, index and broker each probed (in parallel, ≤ 3 s): ``200`` when all
  answer, else ``503`` with ``Retry-After``. Public, like liveness, for load balancers and orchestrators:
  it names the three backends with a state and a latency and nothing else (no URL, host or error text);
* ``GET /health/details`` — the same probes with the masked URLs and the error messages, for admins.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from api.deps import app_state, require
from sohoa.auth import Principal
from sohoa.context import Context
from sohoa.errors import TransientError
from sohoa.settings import mask_url

PROBE_TIMEOUT_S = 3.0
_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="health")


@asynccontextmanager
async def maintenance(app: FastAPI) -> AsyncIterator[None]:
    """Start the reconciler of this process (after the app's own start-up, which opened the backends)."""
    from workers.reconcile import Reconciler

    state = getattr(app.state, "sohoa", None)
    rec = None
    if state is not None and state.settings.reconcile_interval_s > 0:
        rec = Reconciler(state.ctx).start()
    app.state.reconciler = rec
    try:
        yield
    finally:
        if rec is not None:
            await asyncio.to_thread(rec.stop)


router = APIRouter(tags=["health"], lifespan=maintenance)


def _probes(ctx: Context) -> dict[str, Callable[[], None]]:
    return {"storage": ctx.store.check, "index": ctx.index.check, "broker": ctx.queue.check}


def probe(ctx: Context, with_errors: bool = False) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Every backend probed in parallel: (all ok, {name: {status, latency_ms[, error]}})."""

    def timed(fn: Callable[[], None]) -> tuple[str, float, str]:
        t0 = time.perf_counter()
        try:
            fn()
            state, err = "ok", ""
        except TransientError as e:
            state, err = "unavailable", str(e)
        except Exception as e:  # noqa: BLE001 - reported, never raised
            state, err = "error", f"{type(e).__name__}: {e}"
        return state, round((time.perf_counter() - t0) * 1000, 1), err

    futures = {name: _pool.submit(timed, fn) for name, fn in _probes(ctx).items()}
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    out: dict[str, dict[str, Any]] = {}
    for name, fut in futures.items():
        try:
            state, ms, err = fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            state, ms, err = "unavailable", PROBE_TIMEOUT_S * 1000, f"no answer within {PROBE_TIMEOUT_S:.0f} s"
        out[name] = {"status": state, "latency_ms": ms, **({"error": err} if with_errors and err else {})}
    return all(v["status"] == "ok" for v in out.values()), out


def _answer(ok: bool, body: dict[str, Any]) -> JSONResponse:
    if ok:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": "10"})


@router.get("/health")
def health() -> dict[str, Any]:
    """Liveness only (no credentials needed); readiness is /health/ready, the backends' details /health/details."""
    return {"status": "ok"}


@router.get("/health/live")
def live() -> dict[str, Any]:
    """The process is up (no backend is touched; no credentials needed)."""
    return {"status": "ok"}


@router.get("/health/ready", response_model=None)
def ready(request: Request) -> JSONResponse:
    """Storage, index and broker reachable: each one's state and latency (no credentials needed; no URLs)."""
    ok, checks = probe(app_state(request).ctx)
    return _answer(ok, {"status": "ok" if ok else "unavailable", "checks": checks})


@router.get("/health/details", response_model=None)
def details(request: Request, _: Principal = Depends(require("admin"))) -> JSONResponse:
    """The probes with masked URLs and error messages, and this process's reconciler (admins)."""
    st = app_state(request)
    ok, checks = probe(st.ctx, with_errors=True)
    rec = getattr(request.app.state, "reconciler", None)
    return _answer(ok, {
        "status": "ok" if ok else "unavailable",
        "storage": mask_url(st.ctx.store.url),
        "index": mask_url(st.ctx.index.url),
        "broker": mask_url(st.settings.broker_url),
        "checks": checks,
        "reconciler": {"running": rec is not None, "active": bool(rec and rec.leader),
                       "passes": rec.passes if rec else 0},
    })  # fmt: skip
