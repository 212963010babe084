"""Subcommands of the scanning station: print cover sheets, watch a hot folder."""

from __future__ import annotations

import argparse
import os
import re
import signal
import threading
import time
from pathlib import Path

from sohoa.cli.common import CliError, Runtime, command, console


def sheet_info(rt: Runtime, code: str, kind: str = "", component: str = "") -> object:
    """What to print on a dossier's sheet: the registry row's procedure and required components if known."""
    from ingest.stack import SheetInfo

    info = SheetInfo(code, kind, component)
    reg = rt.ctx.index.dossier_record(code)
    if reg is not None:
        rec, _ = reg
        info.procedure, info.procedure_name, info.unit, info.required = (
            rec.procedure, rec.procedure_name, rec.unit, list(rec.required))  # fmt: skip
    return info


def cmd_cover(rt: Runtime, args: argparse.Namespace) -> int:
    from ingest import InputError
    from ingest.stack import cover_pdf
    from ingest.validate import validate_metadata

    sheets = []
    for code in args.codes:
        try:
            code, kind, comp, _ = validate_metadata(rt.settings, code, args.kind or "input", args.component or "")
        except InputError as e:
            raise CliError(str(e)) from None
        sheets.append(sheet_info(rt, code, args.kind or "", comp))
    out = Path(args.out)
    out.write_bytes(cover_pdf(sheets))  # type: ignore[arg-type]
    rt.audit("cover.print", str(out), codes=args.codes)
    console.print(
        f"wrote {len(sheets)} cover sheet(s) to {out}: print them, put each before its dossier, scan the stack"
    )
    return 0


def _code_from_name(name: str, pattern: str) -> str:
    m = re.search(pattern.strip("^$").replace(r"\d", "[0-9]"), name)
    return m.group(0) if m else ""


def cmd_watch(rt: Runtime, args: argparse.Namespace) -> int:
    from ingest.hotfolder import HotFolder, Outcome

    folder = Path(args.folder)
    if not folder.is_dir():
        raise CliError(f"không có thư mục {folder} (no such folder)")
    token = args.token or os.environ.get("SOHOA_API_TOKEN", "")
    if args.api and not token:
        raise CliError("--api needs a token: --token or SOHOA_API_TOKEN (sohoa token create NAME --role clerk …)")

    def fields(p: Path) -> dict[str, str]:
        code = args.dossier or _code_from_name(p.name, rt.settings.dossier_code_pattern)
        return {"dossier_code": code, "kind": args.kind or "input", "component": args.component or "",
                "unit": args.unit or ""}  # fmt: skip

    def _said(a: object) -> str:
        """A document id, and how a duplicate was handled (logged with the file's move to done/)."""
        from ingest.service import Accepted

        assert isinstance(a, Accepted)
        m = a.manifest
        if a.duplicate:
            return f"{m.id} (duplicate: already stored, not stored twice; --keep-duplicate keeps a new version)"
        return f"{m.id} (kept as a new version of {m.duplicate_of})" if m.duplicate_of else m.id

    def submit_local(p: Path) -> Outcome:
        from ingest import InputError, UploadItem, accept_batch
        from ingest.service import Accepted
        from ingest.stack import ingest_stack

        f = fields(p)
        if args.split:
            results = ingest_stack(rt.ctx, p, p.name, f["dossier_code"], f["kind"], f["component"], f["unit"],
                                   uploaded_by="cli:hot-folder", keep_duplicate=args.keep_duplicate)  # fmt: skip
        else:
            if not f["dossier_code"]:
                return Outcome(
                    False, "không có mã hồ sơ: tên tệp không chứa mã, không có --dossier, không dùng --split"
                )
            item = UploadItem(p, p.name, f["dossier_code"], f["kind"], f["component"], f["unit"],
                              uploaded_by="cli:hot-folder", keep_duplicate=args.keep_duplicate)  # fmt: skip
            results = list(accept_batch(rt.ctx, [item], all_or_nothing=False))
        errors = [str(r) for r in results if isinstance(r, InputError)]
        accepted = [r for r in results if isinstance(r, Accepted)]
        for a in accepted:
            rt.audit("document.upload", a.manifest.id, a.manifest.dossier_code, filename=p.name, via="hot folder",
                     duplicate=a.duplicate)  # fmt: skip
        if errors:
            return Outcome(False, "; ".join(errors))
        return Outcome(True, " ".join(_said(a) for a in accepted))

    def submit_remote(p: Path) -> Outcome:
        import httpx

        f = fields(p)
        url = args.api.rstrip("/") + ("/stacks" if args.split else "/documents")
        if args.keep_duplicate:
            f["keep_duplicate"] = "1"
        with open(p, "rb") as fh:
            r = httpx.post(url, headers={"Authorization": f"Bearer {token}"}, data=f,
                           files={"file" if args.split else "files": (p.name, fh)}, timeout=600)  # fmt: skip
        if r.status_code >= 500 or r.status_code in (401, 429):
            raise RuntimeError(f"API answered {r.status_code}")  # transient: the file stays for the next look
        if r.status_code >= 400:
            detail = r.json().get("detail", {})
            per = detail.get("errors") if isinstance(detail, dict) else None
            return Outcome(False, "; ".join(e["message"] for e in per) if per else str(detail))
        body = r.json()
        bad = [x["message"] for x in body.get("rejected", [])]
        said = [d["id"] + (" (duplicate: already stored, not stored twice)" if d.get("duplicate") else "")
                for d in body.get("documents", [])]  # fmt: skip
        return Outcome(not bad, "; ".join(bad) or " ".join(said))

    if not args.api and rt.settings.embedded_broker:
        rt.ctx.queue.start_worker(rt.settings.worker_threads)
        rt.ctx.recover()
    hot = HotFolder(folder, submit_remote if args.api else submit_local, settle_s=args.settle)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"watching {folder} (every {args.interval} s){' → ' + args.api if args.api else ''} — Ctrl+C to stop")
    if args.once:  # two looks, the second after the settle time: only complete files are taken
        hot.scan_once()
        time.sleep(max(args.settle, 0.0))
        hot.scan_once()
    else:
        hot.run(stop.is_set, args.interval)
    console.print(f"done {hot.counts['done']}, failed {hot.counts['failed']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = command(sub, "cover", cmd_cover, "print A4 cover sheets (QR code + dossier code) to put before each dossier")
    s.add_argument("codes", nargs="+", metavar="CODE")
    s.add_argument("--kind", choices=["input", "output"])
    s.add_argument("--component", help="component name printed and carried by the QR code")
    s.add_argument("--out", default="phieu-tach.pdf")

    s = command(sub, "watch", cmd_watch, "ingest the scans a scanner drops into a folder (done/ and failed/ beside)")
    s.add_argument("folder")
    s.add_argument("--split", action="store_true", help="split each file at its cover sheets (many dossiers)")
    s.add_argument("--dossier", help="dossier code for files without cover sheets or code in their name")
    s.add_argument("--kind", choices=["input", "output"])
    s.add_argument("--component")
    s.add_argument("--unit")
    s.add_argument("--api", help="send to a remote sohoa API (with --token or SOHOA_API_TOKEN) instead of local")
    s.add_argument("--token")
    s.add_argument("--interval", type=float, default=2.0)
    s.add_argument("--settle", type=float, default=1.0, help="seconds a file must stay unchanged")
    s.add_argument("--once", action="store_true", help="look once and exit")
    s.add_argument("--keep-duplicate", action="store_true",
                   help="store a file whose content is already stored, as a new version")  # fmt: skip
