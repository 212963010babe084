"""Subcommands that run the system: serve, demo, config."""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from sohoa.cli.common import Runtime, command, console, docs_table, wait_for
from sohoa.models import SearchQuery, Status
from sohoa.settings import documented_variables, effective_settings


def cmd_serve(rt: Runtime, args: argparse.Namespace) -> int:
    import uvicorn

    from api import create_app

    host, port = args.host or rt.settings.host, args.port or rt.settings.port
    console.print(f"serving the API at http://{host}:{port} (OpenAPI docs at /docs) — Ctrl+C to stop")
    uvicorn.run(create_app(rt.settings), host=host, port=port, log_config=None)
    return 0


def cmd_demo(rt: Runtime, args: argparse.Namespace) -> int:
    from ingest import UploadItem, accept_batch
    from ingest.service import Accepted
    from sohoa.demo import make_demo_batch

    settings = rt.settings
    folder = settings.data_dir / "demo-batch"
    files = make_demo_batch(folder)
    console.print(f"demo batch: {len(files)} scans for 3 dossiers written to {folder}")
    ctx = rt.ctx
    try:
        if settings.embedded_broker:
            ctx.queue.start_worker(settings.worker_threads)
        t0 = time.perf_counter()
        results = accept_batch(
            ctx, [UploadItem(f.path, f.path.name, f.dossier_code, f.kind, f.component, f.unit) for f in files]
        )
        ids = [r.manifest.id for r in results if isinstance(r, Accepted)]
        ms = wait_for(ctx, ids)
        elapsed = time.perf_counter() - t0
        console.print(docs_table(ms))
        pages = sum(m.page_count for m in ms if m.status == Status.DONE.value)
        fresh = [m for m in ms if m.timings]
        if fresh:
            console.print(
                f"processed {pages} page(s) in {elapsed:.1f} s = {pages / elapsed * 60:.1f} pages/min "
                f"({settings.worker_threads} worker thread(s)); model: {ms[0].model}"
            )
        codes = sorted({f.dossier_code for f in files})
        t = Table(title="digitization per dossier")
        for col in ("dossier", "input digitized", "result digitized", "documents"):
            t.add_column(col)
        for code in codes:
            s = ctx.index.dossier(code)
            t.add_row(
                code, "yes" if s.input_digitized else "no", "yes" if s.output_digitized else "no", str(len(s.documents))
            )
        console.print(t)
        n_in = sum(ctx.index.dossier(c).input_digitized for c in codes)
        n_out = sum(ctx.index.dossier(c).output_digitized for c in codes)
        console.print(
            f"dossiers with a digitized input component: {n_in}/{len(codes)}; "
            f"with a digitized result: {n_out}/{len(codes)}"
        )
        for q in ("ho so dat dai", "khai sinh Đức"):
            res = ctx.index.search(SearchQuery(q=q, size=3))
            console.print(
                f"search «{q}»: {res.total} page(s); top: "
                + ", ".join(f"{h.dossier_code} {h.filename} p.{h.page}" for h in res.hits)
            )
        accounts(rt)
    finally:
        rt.close()
    if args.no_serve:
        return 0
    args.host = None
    return cmd_serve(rt, args)


def accounts(rt: Runtime) -> None:
    """The demo's unit tree and one account per role, with passwords printed once."""
    from sohoa.auth import AuthStore
    from sohoa.demo import seed_demo_accounts

    rows = seed_demo_accounts(AuthStore(rt.ctx.store, rt.settings.secret_key))
    t = Table(title="demo accounts (sign in at /login; passwords are shown only when created)")
    for col in ("user", "roles", "units", "password"):
        t.add_column(col, overflow="fold")
    for user, roles, units, password in rows:
        t.add_row(user, roles, units, password or "(already existed: sohoa user passwd NAME --generate)")
    console.print(t)


def cmd_config(rt: Runtime, args: argparse.Namespace) -> int:
    for name, value in effective_settings(rt.settings).items():
        console.print(f"{name}={value}", highlight=False, soft_wrap=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = command(sub, "serve", cmd_serve, "run the HTTP API (and, with memory://, the workers)")
    s.add_argument("--host")
    s.add_argument("--port", type=int)

    s = command(sub, "demo", cmd_demo, "generate a demo batch, process it, print counts, then serve the API")
    s.add_argument("--no-serve", action="store_true")
    s.add_argument("--port", type=int)

    command(
        sub,
        "config",
        cmd_config,
        "print the settings in force, secrets masked (" + ", ".join(documented_variables()[:3]) + " …)",
    )
