"""The ``sohoa`` command line."""

from __future__ import annotations

import argparse
import csv
import logging
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sohoa.context import Context
from sohoa.logs import setup_logging
from sohoa.models import Manifest, SearchQuery, Status
from sohoa.settings import Settings, documented_variables
from sohoa.text import nfc

console = Console()
log = logging.getLogger("sohoa.cli")


def _items_from_args(args: argparse.Namespace) -> list:  # list[UploadItem]
    from ingest import UploadItem

    items: list[UploadItem] = []
    if args.manifest:
        mpath = Path(args.manifest)
        with open(mpath, encoding="utf-8-sig", newline="") as f:
            for lineno, row in enumerate(csv.DictReader(f), 2):
                if not row.get("file"):
                    raise SystemExit(f"{mpath}:{lineno}: column 'file' is empty")
                p = Path(row["file"])
                p = p if p.is_absolute() else mpath.parent / p
                items.append(
                    UploadItem(
                        p,
                        nfc(p.name),
                        row.get("dossier_code") or args.dossier or "",
                        row.get("kind") or args.kind or "",
                        row.get("component") or args.component or "",
                        row.get("unit") or args.unit or "",
                    )
                )
    for raw in args.paths:
        p = Path(raw)
        paths = sorted(x for x in p.rglob("*") if x.is_file() and x.suffix.lower() != ".csv") if p.is_dir() else [p]
        for x in paths:
            items.append(
                UploadItem(x, nfc(x.name), args.dossier or "", args.kind or "", args.component or "", args.unit or "")
            )
    return items


def _wait(ctx: Context, ids: list[str], timeout_s: float = 24 * 3600) -> list[Manifest]:
    """Show a progress bar (pages) until every document is done or failed."""
    manifests = {i: ctx.load_manifest(i) for i in ids}
    total = sum(max(1, m.declared_pages) for m in manifests.values())
    deadline = time.monotonic() + timeout_s
    with Progress(
        TextColumn("[bold]OCR"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("", total=total)
        while True:
            manifests = {i: ctx.load_manifest(i) for i in ids}
            done_pages = sum(
                max(1, m.declared_pages) if Status(m.status).terminal else len(m.pages) for m in manifests.values()
            )
            finished = sum(Status(m.status).terminal for m in manifests.values())
            bar.update(task, completed=done_pages, description=f"{finished}/{len(ids)} documents")
            if finished == len(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    return list(manifests.values())


def _docs_table(manifests: list[Manifest]) -> Table:
    t = Table(title="documents")
    for col in ("id", "dossier", "kind", "file", "status", "pages", "conf", "seconds"):
        t.add_column(col)
    for m in manifests:
        status = m.status + (f" ({m.error})" if m.error else "")
        if m.status == Status.PROCESSING.value:
            status += f" {len(m.pages)}/{m.declared_pages}"
        conf = f"{m.mean_confidence:.1f}" if m.mean_confidence is not None else ""
        if any(p.low_confidence for p in m.pages):
            conf += " ⚠"
        t.add_row(
            m.id[:12],
            m.dossier_code,
            m.kind,
            m.filename,
            status,
            str(m.page_count),
            conf,
            f"{m.timings.get('total', 0):.1f}",
        )
    return t


def cmd_ingest(ctx: Context, args: argparse.Namespace) -> int:
    from ingest import InputError, accept_batch
    from ingest.service import Accepted

    items = _items_from_args(args)
    if not items:
        console.print("[red]no files given")
        return 2
    if ctx.settings.embedded_broker:
        ctx.queue.start_worker(ctx.settings.worker_threads)
    results = []
    with Progress(TextColumn("[bold]upload"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("", total=len(items))
        for item in items:
            results.extend(accept_batch(ctx, [item], all_or_nothing=False))
            bar.advance(task)
    errors = [r for r in results if isinstance(r, InputError)]
    accepted = [r for r in results if isinstance(r, Accepted)]
    for e in errors:
        console.print(f"[red]rejected[/red] {e}")
    for a in accepted:
        if a.duplicate:
            console.print(f"[yellow]duplicate[/yellow] {a.manifest.filename} is already document {a.manifest.id}")
        for w in a.manifest.warnings:
            console.print(f"[yellow]warning[/yellow] {a.manifest.filename}: {w}")
    console.print(f"accepted {len(accepted)} file(s), rejected {len(errors)}")
    wait = args.wait if args.wait is not None else ctx.settings.embedded_broker
    if wait and accepted:
        ms = _wait(ctx, [a.manifest.id for a in accepted])
        console.print(_docs_table(ms))
    else:
        for a in accepted:
            console.print(f"{a.manifest.id}  {a.manifest.status}  {a.manifest.filename}")
    return 1 if errors else 0


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    if args.ids:
        ms = [ctx.load_manifest(i) for i in args.ids]
    else:
        docs = ctx.index.list_documents(
            dossier_code=args.dossier, statuses=[args.status] if args.status else None, limit=args.limit
        )
        ms = [ctx.load_manifest(d.id) for d in docs]
    console.print(_docs_table(ms))
    counts: dict[str, int] = {}
    for m in ms:
        counts[m.status] = counts.get(m.status, 0) + 1
    console.print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no documents")
    return 0


def cmd_search(ctx: Context, args: argparse.Namespace) -> int:
    res = ctx.index.search(
        SearchQuery(
            q=nfc(" ".join(args.query)),
            dossier_code=args.dossier,
            kind=args.kind,
            unit=args.unit,
            date_from=args.date_from,
            date_to=args.date_to,
            page=args.page,
            size=args.size,
        )
    )
    console.print(f"{res.total} page(s) match «{res.query}»")
    for h in res.hits:
        snip = h.snippet.replace("<mark>", "[bold yellow]").replace("</mark>", "[/]")
        mark = "=" if h.exact else "~"
        console.print(f"{mark} [cyan]{h.dossier_code}[/] {h.kind} {h.filename} p.{h.page}  ({h.document_id})")
        console.print(f"    {snip}", highlight=False)
    return 0


def cmd_dossier(ctx: Context, args: argparse.Namespace) -> int:
    s = ctx.index.dossier(nfc(args.code))
    if not s.documents:
        console.print(f"[red]no documents for dossier {args.code}")
        return 1
    console.print(f"dossier {s.code}: input digitized={s.input_digitized} output digitized={s.output_digitized}")
    console.print(_docs_table([ctx.load_manifest(d.id) for d in s.documents]))
    return 0


def cmd_worker(ctx: Context, args: argparse.Namespace) -> int:
    if ctx.settings.embedded_broker:
        console.print("[red]SOHOA_BROKER_URL is memory://: workers run inside `sohoa serve`; set redis:// or amqp://")
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ctx.queue.start_worker(args.threads or ctx.settings.worker_threads)
    log.info("worker running", extra={"broker": ctx.settings.broker_url})
    stop.wait()
    log.info("worker stopping")
    return 0


def cmd_reindex(ctx: Context, args: argparse.Namespace) -> int:
    with Progress(TextColumn("[bold]reindex"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("", total=None)
        n = ctx.reindex(lambda i, total: bar.update(task, completed=i, total=total))
    console.print(f"re-indexed {n} document(s) from {ctx.store.url}")
    return 0


def cmd_recover(ctx: Context, args: argparse.Namespace) -> int:
    ids = ctx.recover()
    console.print(f"re-queued {len(ids)} document(s)")
    if ids and ctx.settings.embedded_broker:
        ctx.queue.start_worker(ctx.settings.worker_threads)
        console.print(_docs_table(_wait(ctx, ids)))
    return 0


def cmd_registry(ctx: Context, args: argparse.Namespace) -> int:
    from ingest.registry_file import RegistryFileError
    from sohoa.reports import import_registry

    try:
        res = import_registry(ctx.index, Path(args.file), ctx.settings.dossier_code_pattern, strict=args.strict)
    except RegistryFileError as e:
        console.print(f"[red]{args.file}: {e}")
        return 2
    for line, msg in res.errors:
        console.print(f"[red]{args.file}:{line}[/red] {msg}", highlight=False)
    if res.refused:
        console.print(f"[red]refused (--strict): {len(res.errors)} bad row(s), nothing imported")
        return 1
    console.print(
        f"imported: {res.inserted} new, {res.updated} updated, {res.unchanged} unchanged, "
        f"{len(res.errors)} row(s) with errors skipped"
    )
    return 1 if res.errors else 0


def cmd_report(ctx: Context, args: argparse.Namespace) -> int:
    from index.rates import RULES, parse_period
    from sohoa import reports

    try:
        period = parse_period(args.period, args.date_from, args.date_to)
    except ValueError as e:
        console.print(f"[red]{e}")
        return 2
    if args.unregistered:
        codes = ctx.index.unregistered()
        console.print(f"{len(codes)} dossier code(s) have scans but no registry row:")
        for c in codes:
            console.print(c, highlight=False)
        return 0
    if args.undigitized:
        rows = ctx.index.undigitized(period, args.rule, args.undigitized, limit=args.limit)
        t = Table(title=f"not digitized ({args.undigitized}) — {period.label}, rule {args.rule}")
        for col in ("dossier", "procedure", "unit", "received", "resolved", "missing components"):
            t.add_column(col)
        for r in rows:
            t.add_row(
                r["code"],
                r["procedure"],
                r["unit"],
                r["received"],
                r["resolved"],
                ", ".join(r["missing_components"]) or ("no scan" if not r["has_input"] else ""),
            )
        console.print(t)
        return 0
    rep = ctx.index.rate_report(period, args.rule)
    for by in args.by or ["total"]:
        headers, cells = reports.table(rep, by)
        t = Table(title=f"{period.label} ({period.start} – {period.end}) · rule {args.rule}: {RULES[args.rule]}")
        for h in headers:
            t.add_column(h)
        for row in cells:
            t.add_row(*["" if v is None else str(v) for v in row])
        console.print(t)
    if args.csv:
        Path(args.csv).write_text(reports.to_csv(rep, (args.by or ["total"])[0]), encoding="utf-8")
        console.print(f"wrote {args.csv}")
    if args.xlsx:
        Path(args.xlsx).write_bytes(reports.to_xlsx(rep))
        console.print(f"wrote {args.xlsx}")
    return 0


def cmd_export_portal(ctx: Context, args: argparse.Namespace) -> int:
    import json

    from sohoa.reports import portal_export

    data = portal_export(ctx.index)
    Path(args.out).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    console.print(f"wrote {len(data)} dossier(s) in the national portal's field names to {args.out}")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api import create_app

    uvicorn.run(create_app(settings), host=args.host or settings.host, port=args.port or settings.port, log_config=None)
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from ingest import UploadItem, accept_batch
    from ingest.service import Accepted
    from sohoa.demo import make_demo_batch

    folder = settings.data_dir / "demo-batch"
    files = make_demo_batch(folder)
    console.print(f"demo batch: {len(files)} scans for 3 dossiers written to {folder}")
    ctx = Context(settings)
    try:
        if settings.embedded_broker:
            ctx.queue.start_worker(settings.worker_threads)
        t0 = time.perf_counter()
        results = accept_batch(
            ctx, [UploadItem(f.path, f.path.name, f.dossier_code, f.kind, f.component, f.unit) for f in files]
        )
        ids = [r.manifest.id for r in results if isinstance(r, Accepted)]
        ms = _wait(ctx, ids)
        elapsed = time.perf_counter() - t0
        console.print(_docs_table(ms))
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
    finally:
        ctx.close()
    if args.no_serve:
        return 0
    console.print(
        f"serving the API at http://{settings.host}:{args.port or settings.port} "
        f"(OpenAPI docs at /docs, search page at /) — Ctrl+C to stop"
    )
    args.host = None
    return cmd_serve(settings, args)


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    for k, v in asdict(settings).items():
        console.print(f"SOHOA_{k.upper()}={v}", highlight=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sohoa", description="Số hóa hồ sơ TTHC: upload, OCR, search, count.")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the HTTP API (and, with memory://, the workers)")
    s.add_argument("--host")
    s.add_argument("--port", type=int)

    s = sub.add_parser("demo", help="generate a demo batch, process it, print counts, then serve the API")
    s.add_argument("--no-serve", action="store_true")
    s.add_argument("--port", type=int)

    s = sub.add_parser("ingest", help="upload files or folders")
    s.add_argument("paths", nargs="*")
    s.add_argument("--dossier", help="dossier code (mã hồ sơ) for all files")
    s.add_argument("--kind", choices=["input", "output"])
    s.add_argument("--component", help="component name")
    s.add_argument("--unit", help="receiving unit")
    s.add_argument("--manifest", help="CSV with columns file,dossier_code,kind,component,unit")
    s.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wait for OCR with a progress bar (default: yes with the in-process queue)",
    )

    s = sub.add_parser("status", help="show documents and their processing status")
    s.add_argument("ids", nargs="*")
    s.add_argument("--dossier")
    s.add_argument("--status", choices=[x.value for x in Status])
    s.add_argument("--limit", type=int, default=200)

    s = sub.add_parser("search", help="full-text search (diacritics optional)")
    s.add_argument("query", nargs="+")
    s.add_argument("--dossier")
    s.add_argument("--kind", choices=["input", "output"])
    s.add_argument("--unit")
    s.add_argument("--from", dest="date_from")
    s.add_argument("--to", dest="date_to")
    s.add_argument("--page", type=int, default=1)
    s.add_argument("--size", type=int, default=10)

    s = sub.add_parser("dossier", help="digitization state of one dossier")
    s.add_argument("code")

    s = sub.add_parser("worker", help="run queue workers (redis:// or amqp:// broker)")
    s.add_argument("--threads", type=int)

    s = sub.add_parser("registry", help="import the dossier registry (CSV, XLSX or JSON, portal field names)")
    s.add_argument("file")
    s.add_argument("--strict", action="store_true", help="refuse the whole file if any row is bad")

    s = sub.add_parser("report", help="digitization rate (QĐ 766) for a period, with breakdowns and exports")
    s.add_argument("--period", help="month:2026-07, quarter:2026-Q3, half:2026-H1, 9months:2026, year:2026")
    s.add_argument("--from", dest="date_from")
    s.add_argument("--to", dest="date_to")
    s.add_argument("--rule", choices=["any", "required"], default="any")
    s.add_argument(
        "--by", action="append", choices=["total", "unit", "level", "field", "procedure", "channel", "month"]
    )
    s.add_argument("--csv", help="write the (first --by) table as CSV")
    s.add_argument("--xlsx", help="write every breakdown as an XLSX workbook")
    s.add_argument("--undigitized", choices=["input", "output"], help="list the dossiers still to scan")
    s.add_argument("--unregistered", action="store_true", help="list scanned dossier codes missing in the registry")
    s.add_argument("--limit", type=int, default=1000)

    s = sub.add_parser("export-portal", help="per-dossier export in the national portal's field names (JSON)")
    s.add_argument("out")

    sub.add_parser("reindex", help="rebuild the search index from object storage")
    sub.add_parser("recover", help="re-queue documents left unfinished")
    sub.add_parser("config", help="print the settings in force (" + ", ".join(documented_variables()[:3]) + " …)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    setup_logging(settings.log_level, settings.log_json)
    if args.cmd in ("serve", "demo", "config"):
        return {"serve": cmd_serve, "demo": cmd_demo, "config": cmd_config}[args.cmd](settings, args)
    ctx = Context(settings)
    try:
        fn = {
            "ingest": cmd_ingest,
            "status": cmd_status,
            "search": cmd_search,
            "dossier": cmd_dossier,
            "worker": cmd_worker,
            "reindex": cmd_reindex,
            "recover": cmd_recover,
        }[args.cmd]
        return fn(ctx, args)
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
