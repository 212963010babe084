"""``sohoa audit``: who read, searched, exported or changed what (the audit log in object storage).

Times are UTC, and ``--from``/``--to`` are UTC days (07:00 in Hà Nội starts a UTC day).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from rich.table import Table
from rich.text import Text

from sohoa.cli.common import CliError, Runtime, command, console, iso_date


def cmd_audit(rt: Runtime, args: argparse.Namespace) -> int:
    from sohoa.audit import read_events

    since = date.fromisoformat(args.date_from) if args.date_from else None
    until = date.fromisoformat(args.date_to) if args.date_to else None
    if since and until and since > until:
        raise CliError(f"--from {since} là sau --to {until} (--from is after --to)")
    if args.limit < 1:
        raise CliError("--limit phải ≥ 1 (--limit must be at least 1)")
    events = read_events(
        rt.ctx.store,
        user=args.user,
        dossier=args.dossier,
        action=args.action,
        since=since,
        until=until,
        limit=args.limit,
        outcome=args.outcome,
    )
    if args.json:
        for e in events:
            sys.stdout.write(json.dumps(e.to_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return 0
    t = Table(title="audit log (newest first)")
    for col in ("ts", "actor", "ip", "action", "target", "dossier", "outcome"):
        t.add_column(col, overflow="fold")
    for e in events:
        outcome = e.outcome + (f" {e.status}" if e.status else "")
        # Text(): what users typed (names, targets) is shown as is, never read as rich markup
        t.add_row(*(Text(v) for v in (e.ts, e.actor, e.ip, e.action, e.target, e.dossier, outcome)))
    console.print(t)
    more = " (--limit reached)" if len(events) >= args.limit else ""
    console.print(f"{len(events)} event(s){more}", highlight=False)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    s = command(sub, "audit", cmd_audit, "show the audit log: who read, searched, exported or changed what")
    s.add_argument("--user", help="exact actor: a user name, token:<id> or cli:<os user>")
    s.add_argument("--dossier", metavar="CODE", help="dossier code")
    s.add_argument("--action", help="e.g. search, document.read, or a prefix such as document.*")
    s.add_argument("--outcome", choices=["ok", "denied", "failed"])
    s.add_argument(
        "--from", dest="date_from", type=iso_date, metavar="YYYY-MM-DD", help="first UTC day (default: 31 days to --to)"
    )
    s.add_argument("--to", dest="date_to", type=iso_date, metavar="YYYY-MM-DD", help="last UTC day (default: today)")
    s.add_argument("--limit", type=int, default=1000)
    s.add_argument("--json", action="store_true", help="one JSON event per line")
