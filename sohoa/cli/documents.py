"""Subcommands for documents: ingest, status, search, dossier, worker, reindex, recover."""

from __future__ import annotations

import argparse
import csv
import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sohoa.cli.common import CliError, Runtime, command, console, docs_table, iso_date, logs_on_console, wait_for
from sohoa.models import Manifest, SearchQuery, Status
from sohoa.text import nfc
from storage import NotFound

log = logging.getLogger("sohoa.cli")


# what scanners and file managers leave beside the scans: skipped and counted, never uploaded
SIDECAR_SUFFIXES = {".txt", ".md", ".csv", ".xml", ".json", ".ini", ".db", ".log"}
SIDECAR_NAMES = {"thumbs.db", ".ds_store", "desktop.ini"}


def is_sidecar(p: Path) -> bool:
    return p.name.lower() in SIDECAR_NAMES or p.suffix.lower() in SIDECAR_SUFFIXES or p.name.startswith((".", "~$"))


@dataclass
class Gathered:
    items: list  # list[UploadItem]
    ignored: list[Path] = field(default_factory=list)  # sidecar files skipped
    not_walked: list[Path] = field(default_factory=list)  # sub-folders left out without --recursive


def _items_from_args(args: argparse.Namespace) -> Gathered:
    from ingest import UploadItem

    keep = bool(getattr(args, "keep_duplicate", False))
    out = Gathered([])
    if args.manifest:
        mpath = Path(args.manifest)
        if not mpath.is_file():
            raise CliError(f"không tìm thấy tệp {mpath} (manifest not found)")
        with open(mpath, encoding="utf-8-sig", newline="") as f:
            for lineno, row in enumerate(csv.DictReader(f), 2):
                if not row.get("file"):
                    raise CliError(f"{mpath}:{lineno}: cột 'file' trống (column 'file' is empty)")
                p = Path(row["file"])
                p = p if p.is_absolute() else mpath.parent / p
                out.items.append(
                    UploadItem(
                        p,
                        nfc(p.name),
                        row.get("dossier_code") or args.dossier or "",
                        row.get("kind") or args.kind or "",
                        row.get("component") or args.component or "",
                        row.get("unit") or args.unit or "",
                        keep_duplicate=keep,
                    )
                )
    for raw in args.paths:
        p = Path(raw)
        if not p.exists():
            raise CliError(f"không tìm thấy {p} (no such file or folder)")
        if p.is_dir():
            entries = sorted(p.rglob("*") if args.recursive else p.iterdir())
            out.not_walked += [x for x in entries if x.is_dir() and not args.recursive]
            paths = [x for x in entries if x.is_file()]
        else:
            paths = [p]
        for x in paths:
            if is_sidecar(x):
                out.ignored.append(x)
                continue
            out.items.append(UploadItem(x, nfc(x.name), args.dossier or "", args.kind or "", args.component or "",
                                        args.unit or "", keep_duplicate=keep))  # fmt: skip
    return out


def cmd_ingest(rt: Runtime, args: argparse.Namespace) -> int:
    """Exit 0: every file accepted (duplicates included); 1: some rejected; 2: usage or configuration."""
    from ingest import InputError, accept_batch
    from ingest.service import Accepted
    from sohoa.errors import ConfigError

    if args.jobs < 1:
        raise CliError("--jobs phải ≥ 1 (--jobs must be at least 1)")
    got = _items_from_args(args)
    items = got.items
    for d in got.not_walked:
        console.print(f"[yellow]not walked[/yellow] {d}/ (sub-folder: add --recursive to include it)", highlight=False)
    if got.ignored:
        console.print(f"ignored {len(got.ignored)} sidecar file(s) (.txt, .md, Thumbs.db, .DS_Store, desktop.ini …)")
    if not items:
        raise CliError("không có tệp nào (no files given): sohoa ingest FOLDER|FILE… or --manifest CSV")
    try:
        ctx = rt.ctx
        if ctx.settings.embedded_broker:
            ctx.queue.start_worker(ctx.settings.worker_threads)
    except ConfigError as e:
        raise CliError(f"cấu hình sai (bad configuration): {e}") from None

    def one(item: object) -> list:
        from ingest import UploadItem

        assert isinstance(item, UploadItem)
        item.uploaded_by = rt.cli_user
        if args.split:  # a stack of many dossiers separated by cover sheets
            from ingest.stack import ingest_stack

            try:
                return list(ingest_stack(ctx, item.path, item.filename, item.dossier_code, item.kind,
                                         item.component, item.unit, rt.cli_user, item.keep_duplicate))  # fmt: skip
            except InputError as refused:
                refused.filename = item.filename
                return [refused]
        return list(accept_batch(ctx, [item], all_or_nothing=False))

    results: list = []
    t0 = time.perf_counter()
    try:
        with logs_on_console(), Progress(TextColumn("[bold]upload"), BarColumn(), MofNCompleteColumn(),
                                         TimeElapsedColumn(), console=console) as bar:  # fmt: skip
            task = bar.add_task("", total=len(items))
            with ThreadPoolExecutor(max_workers=args.jobs) as pool:
                for res in pool.map(one, items):  # in the given order, done N at a time
                    results.extend(res)
                    bar.advance(task)
    except ConfigError as e:
        raise CliError(f"cấu hình sai (bad configuration): {e}") from None
    upload_s = time.perf_counter() - t0
    errors = [r for r in results if isinstance(r, InputError)]
    accepted = [r for r in results if isinstance(r, Accepted)]
    for err in errors:
        console.print(f"[red]rejected[/red] {err}", highlight=False)
    for a in accepted:
        if a.duplicate:
            console.print(f"[yellow]duplicate[/yellow] {a.manifest.filename}: already stored as document "
                          f"{a.manifest.id} (not stored twice; --keep-duplicate keeps a new version)",
                          highlight=False)  # fmt: skip
        elif a.manifest.duplicate_of:
            console.print(f"[yellow]kept as a new version[/yellow] {a.manifest.filename}: same content as "
                          f"document {a.manifest.duplicate_of}", highlight=False)  # fmt: skip
        for w in a.manifest.warnings:
            console.print(f"[yellow]warning[/yellow] {a.manifest.filename}: {w}", highlight=False)
    for a in accepted:
        rt.audit("document.upload", a.manifest.id, a.manifest.dossier_code, filename=a.manifest.filename,
                 duplicate=a.duplicate)  # fmt: skip
    dups = sum(a.duplicate for a in accepted)
    pages = sum(a.manifest.declared_pages for a in accepted if not a.duplicate)
    console.print(f"accepted {len(accepted)} file(s), rejected {len(errors)}")
    console.print(
        f"summary: {len(items)} file(s), {len(accepted) - dups} new, {dups} duplicate, {len(errors)} rejected, "
        f"{len(got.ignored)} ignored; {pages} page(s) uploaded in {upload_s:.1f} s "
        f"({_per_min(pages, upload_s)} pages/min, --jobs {args.jobs})",
        highlight=False,
    )
    wait = args.wait if args.wait is not None else ctx.settings.embedded_broker
    if wait and accepted:
        t1 = time.perf_counter()
        ms = wait_for(ctx, [a.manifest.id for a in accepted if not a.duplicate] or [accepted[0].manifest.id])
        ocr_s = time.perf_counter() - t1
        console.print(docs_table(ms))
        for m in ms:
            if m.blank_pages:
                console.print(f"blank pages left out of {m.filename}: {', '.join(map(str, m.blank_pages))} "
                              "(kept in the original)", highlight=False)  # fmt: skip
        new = {a.manifest.id for a in accepted if not a.duplicate}
        done = sum(m.page_count for m in ms if m.id in new)
        if new:  # duplicates were processed before: their pages are not this run's work
            console.print(f"OCR: {done} page(s) in {ocr_s:.1f} s ({_per_min(done, ocr_s)} pages/min)",
                          highlight=False)  # fmt: skip
    else:
        for a in accepted:
            console.print(f"{a.manifest.id}  {a.manifest.status}  {a.manifest.filename}")
    return 1 if errors else 0


def _per_min(pages: int, seconds: float) -> str:
    return f"{pages * 60 / seconds:.0f}" if seconds > 0 and pages else "0"


def _load(rt: Runtime, doc_id: str) -> Manifest:
    try:
        return rt.ctx.load_manifest(doc_id)
    except NotFound:
        raise CliError(f"không có tài liệu {doc_id} (no such document)", 1) from None


def cmd_status(rt: Runtime, args: argparse.Namespace) -> int:
    if args.ids:
        ms = [_load(rt, i) for i in args.ids]
    else:
        docs = rt.ctx.index.list_documents(
            dossier_code=nfc(args.dossier) if args.dossier else None,
            statuses=[args.status] if args.status else None,
            limit=args.limit,
        )
        ms = [rt.ctx.load_manifest(d.id) for d in docs]
    rt.audit("document.list", dossier=args.dossier or "", ids=args.ids, count=len(ms))
    console.print(docs_table(ms))
    counts: dict[str, int] = {}
    for m in ms:
        counts[m.status] = counts.get(m.status, 0) + 1
    console.print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no documents")
    return 0


def cmd_search(rt: Runtime, args: argparse.Namespace) -> int:
    try:
        query = SearchQuery(
            q=nfc(" ".join(args.query)),
            dossier_code=nfc(args.dossier) if args.dossier else None,
            kind=args.kind,
            unit=nfc(args.unit) if args.unit else None,
            date_from=args.date_from,
            date_to=args.date_to,
            page=args.page,
            size=args.size,
        )
    except ValueError as e:
        raise CliError(str(e)) from None
    res = rt.ctx.index.search(query)
    rt.audit("search", dossier=query.dossier_code or "", q=query.q, kind=args.kind, unit=args.unit,
             date_from=args.date_from, date_to=args.date_to, total=res.total)  # fmt: skip
    console.print(f"{res.total} page(s) match «{res.query}»")
    for h in res.hits:
        snip = h.snippet.replace("<mark>", "[bold yellow]").replace("</mark>", "[/]")
        mark = "=" if h.exact else "~"
        console.print(f"{mark} [cyan]{h.dossier_code}[/] {h.kind} {h.filename} p.{h.page}  ({h.document_id})")
        console.print(f"    {snip}", highlight=False)
    return 0


def cmd_dossier(rt: Runtime, args: argparse.Namespace) -> int:
    code = nfc(args.code)
    s = rt.ctx.index.dossier(code)
    reg = rt.ctx.index.dossier_record(code)
    if not s.documents and reg is None:
        console.print(f"[red]không có tài liệu và không có trong sổ đăng ký: hồ sơ {code} (unknown dossier)")
        return 1
    rt.audit("dossier.read", code, code)
    console.print(f"dossier {s.code}: input digitized={s.input_digitized} output digitized={s.output_digitized}")
    if reg is not None:
        rec, flags = reg
        console.print(
            f"registry: {rec.procedure} · received {rec.received} · resolved {rec.resolved or '-'} · "
            f"required components digitized={flags.required_ok}",
            highlight=False,
        )
    else:
        console.print("registry: no row for this dossier yet (sohoa registry FILE)")
    if s.documents:
        console.print(docs_table([rt.ctx.load_manifest(d.id) for d in s.documents]))
    return 0


def cmd_worker(rt: Runtime, args: argparse.Namespace) -> int:
    if rt.settings.embedded_broker:
        raise CliError("SOHOA_BROKER_URL is memory://: workers run inside `sohoa serve`; set redis:// or amqp://")
    from sohoa.errors import ConfigError
    from sohoa.settings import mask_url
    from workers.reconcile import Reconciler

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        rt.ctx.queue.start_worker(args.threads or rt.settings.worker_threads)
    except ConfigError as e:  # e.g. tesseract missing: reported now, not once per document
        raise CliError(f"không chạy được worker (cannot start the worker): {e}") from None
    reconciler = Reconciler(rt.ctx).start() if rt.settings.reconcile_interval_s > 0 else None
    log.info("worker running", extra={"broker": mask_url(rt.settings.broker_url)})
    console.print(f"worker running on {mask_url(rt.settings.broker_url)} — Ctrl+C to stop")
    stop.wait()
    log.info("worker stopping")
    if reconciler is not None:
        reconciler.stop()
    return 0


def cmd_reindex(rt: Runtime, args: argparse.Namespace) -> int:
    with Progress(TextColumn("[bold]reindex"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("", total=None)
        n = rt.ctx.reindex(lambda i, total: bar.update(task, completed=i, total=total))
    rows = sum(1 for _ in rt.ctx.registry.registry())
    rt.audit("index.rebuild", documents=n, registry_rows=rows)
    console.print(f"re-indexed {n} document(s) from {rt.ctx.store.url}")
    console.print(f"registry: {rows} dossier row(s) and the rate counters rebuilt from the stored imports")
    return 0


def cmd_recover(rt: Runtime, args: argparse.Namespace) -> int:
    """One reconciler pass now: documents with a live lease (being processed) are never touched."""
    ids = rt.ctx.recover()
    rt.audit("document.recover", documents=len(ids))
    console.print(f"re-queued {len(ids)} document(s)")
    if ids and rt.settings.embedded_broker:
        rt.ctx.queue.start_worker(rt.settings.worker_threads)
        console.print(docs_table(wait_for(rt.ctx, ids)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = command(sub, "ingest", cmd_ingest, "upload files or folders")
    s.add_argument("paths", nargs="*")
    s.add_argument("--dossier", help="dossier code (mã hồ sơ) for all files")
    s.add_argument("--kind", choices=["input", "output"])
    s.add_argument("--component", help="component name")
    s.add_argument("--unit", help="receiving unit")
    s.add_argument("--manifest", help="CSV with columns file,dossier_code,kind,component,unit")
    s.add_argument("--split", action="store_true", help="each file is a stack of dossiers separated by cover sheets")
    s.add_argument("--recursive", "-r", action="store_true", help="walk sub-folders too (not walked without it)")
    s.add_argument("--jobs", "-j", type=int, default=2, help="files uploaded and validated at once (default 2)")
    s.add_argument("--keep-duplicate", action="store_true",
                   help="store a file whose content is already stored, as a new version")  # fmt: skip
    s.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wait for OCR with a progress bar (default: yes with the in-process queue)",
    )

    s = command(sub, "status", cmd_status, "show documents and their processing status")
    s.add_argument("ids", nargs="*")
    s.add_argument("--dossier")
    s.add_argument("--status", choices=[x.value for x in Status])
    s.add_argument("--limit", type=int, default=200)

    s = command(sub, "search", cmd_search, "full-text search (diacritics optional)")
    s.add_argument("query", nargs="+")
    s.add_argument("--dossier")
    s.add_argument("--kind", choices=["input", "output"])
    s.add_argument("--unit")
    s.add_argument("--from", dest="date_from", type=iso_date, metavar="YYYY-MM-DD")
    s.add_argument("--to", dest="date_to", type=iso_date, metavar="YYYY-MM-DD")
    s.add_argument("--page", type=int, default=1)
    s.add_argument("--size", type=int, default=10)

    s = command(sub, "dossier", cmd_dossier, "digitization state of one dossier")
    s.add_argument("code")

    s = command(sub, "worker", cmd_worker, "run queue workers (redis:// or amqp:// broker)")
    s.add_argument("--threads", type=int)

    command(sub, "reindex", cmd_reindex, "rebuild the search index from object storage")
    command(sub, "recover", cmd_recover, "re-queue documents left unfinished (never one that is being processed)")
