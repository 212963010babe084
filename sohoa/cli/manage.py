"""Subcommands for managers: registry import, digitization-rate report (QĐ 766), portal export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from sohoa.cli.common import CliError, Runtime, command, console, iso_date


def cmd_registry(rt: Runtime, args: argparse.Namespace) -> int:
    from ingest.registry_file import RegistryFileError
    from sohoa.reports import import_registry

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"không tìm thấy tệp {path} (no such file)")
    try:
        res = import_registry(rt.ctx.index, path, rt.settings.dossier_code_pattern, strict=args.strict)
    except RegistryFileError as e:
        raise CliError(f"{args.file}: {e}") from None
    rt.audit("registry.import", str(path), inserted=res.inserted, updated=res.updated, errors=len(res.errors),
             refused=res.refused)  # fmt: skip
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


def cmd_report(rt: Runtime, args: argparse.Namespace) -> int:
    from sohoa import reports
    from sohoa.domain import parse_period

    if args.unregistered:
        codes = rt.ctx.index.unregistered()
        rt.audit("report.unregistered", count=len(codes))
        console.print(f"{len(codes)} dossier code(s) have scans but no registry row:")
        for c in codes:
            console.print(c, highlight=False)
        return 0
    try:
        period = parse_period(args.period, args.date_from, args.date_to)
    except ValueError as e:
        raise CliError(str(e)) from None
    params = {"min_confidence": args.min_confidence, "require_signature": args.require_signature}
    if args.undigitized:
        rows = rt.ctx.registry.undigitized(period, args.rule, args.undigitized, limit=args.limit, **params)
        rt.audit("report.undigitized", period.label, rule=args.rule, side=args.undigitized, count=len(rows))
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
        console.print(f"{len(rows)} dossier(s) not digitized ({args.undigitized})")
        return 0
    rep = rt.ctx.registry.rate_report(period, args.rule, **params)
    rt.audit("report.read", period.label, rule=args.rule, by=args.by, csv=args.csv, xlsx=args.xlsx,
             min_confidence=rep.min_confidence, require_signature=rep.require_signature)  # fmt: skip
    bys = args.by or ["total"]
    console.print(reports.rules_line(rep), highlight=False)
    for by in bys:
        headers, cells = reports.table(rep, by)
        t = Table(title=f"{period.label} ({period.start} – {period.end}) · rule {args.rule}")
        for h in headers:
            t.add_column(h)
        for row in cells:
            t.add_row(*["" if v is None else str(v) for v in row])
        console.print(t)
    if args.csv:
        Path(args.csv).write_text(reports.to_csv(rep, bys[0]), encoding="utf-8")
        console.print(f"wrote {args.csv}")
    if args.xlsx:
        Path(args.xlsx).write_bytes(reports.to_xlsx(rep))
        console.print(f"wrote {args.xlsx}")
    return 0


def cmd_export_portal(rt: Runtime, args: argparse.Namespace) -> int:
    from sohoa.reports import portal_export

    data = portal_export(rt.ctx.index)
    rt.audit("export.portal", str(args.out), dossiers=len(data))
    out = Path(args.out)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(out)
    console.print(f"wrote {len(data)} dossier(s) in the national portal's field names to {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = command(sub, "registry", cmd_registry, "import the dossier registry (CSV, XLSX or JSON, portal field names)")
    s.add_argument("file")
    s.add_argument("--strict", action="store_true", help="refuse the whole file if any row is bad")

    s = command(sub, "report", cmd_report, "digitization rate (QĐ 766) for a period, with breakdowns and exports")
    s.add_argument("--period", help="month:2026-07, quarter:2026-Q3, half:2026-H1, 9months:2026, year:2026")
    s.add_argument("--from", dest="date_from", type=iso_date, metavar="YYYY-MM-DD")
    s.add_argument("--to", dest="date_to", type=iso_date, metavar="YYYY-MM-DD")
    s.add_argument("--rule", choices=["any", "required"], default="any")
    s.add_argument(
        "--by", action="append", choices=["total", "unit", "level", "field", "procedure", "channel", "month"]
    )
    s.add_argument("--csv", help="write the (first --by) table as CSV")
    s.add_argument("--xlsx", help="write every breakdown as an XLSX workbook")
    s.add_argument("--undigitized", choices=["input", "output"], help="list the dossiers still to scan")
    s.add_argument("--unregistered", action="store_true", help="list scanned dossier codes missing in the registry")
    s.add_argument("--limit", type=int, default=1000)
    s.add_argument("--min-confidence", type=float, metavar="PERCENT",
                   help="count a document as digitized only at this mean OCR confidence (default: "
                        "SOHOA_DIGITIZED_MIN_CONFIDENCE)")  # fmt: skip
    s.add_argument("--require-signature", action=argparse.BooleanOptionalAction, default=None,
                   help="count input only for dossiers the registry marks signed (default: "
                        "SOHOA_DIGITIZED_REQUIRE_SIGNATURE)")  # fmt: skip

    s = command(sub, "export-portal", cmd_export_portal, "per-dossier export in the national portal's field names")
    s.add_argument("out")
