"""Time a yearly digitization report with every breakdown over N dossiers on the embedded backend.

    .venv/bin/python bench/report_speed.py [--n 1000000] [--runs 3]

The registry rows (with their digitization flags) are written straight into a fresh SQLite index
(setup, timed separately); the figure that matters is the report time (goal: under 2 s for 1,000,000).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from index.rates import parse_period
from index.sqlite import SqliteIndex


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", help="keep the generated database here and reuse it on later runs")
    args = ap.parse_args()
    rnd = random.Random(1)
    units = [(f"UBND xã {i:03d}", "xã") for i in range(120)] + [(f"Sở {i:02d}", "tỉnh") for i in range(20)]
    fields = [f"Lĩnh vực {i:02d}" for i in range(40)]
    procs = [f"1.{i:06d}" for i in range(400)]
    channels = ["trực tiếp", "trực tuyến", "bưu chính công ích"]
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(args.db) if args.db else Path(tmp) / "index.sqlite3"
        reuse = db_path.exists()
        ix = SqliteIndex(db_path)
        t0 = time.perf_counter()
        start = date(2026, 1, 1)

        def rows():  # noqa: ANN202
            for i in range(args.n):
                unit, level = rnd.choice(units)
                rec = start + timedelta(days=rnd.randrange(365))
                res = (rec + timedelta(days=rnd.randrange(30))).isoformat() if rnd.random() < 0.85 else ""
                has_in = int(rnd.random() < 0.9)
                yield (f"000.00.06.H56-{rec:%y%m%d}-{i:07d}", rnd.choice(procs), rnd.choice(fields),
                       rnd.choice(channels),
                       rec.isoformat(), res, unit, level, int(rnd.random() < 0.05), has_in,
                       int(has_in and rnd.random() < 0.8), int(rnd.random() < 0.7))  # fmt: skip

        with ix._tx() as db:
            if reuse:
                db.execute("DELETE FROM dossiers WHERE 0")
            else:
                db.executemany(
                    "INSERT INTO dossiers (code, procedure, field_name, channel, received, resolved, unit, level, "
                    "no_result, has_input, required_ok, has_output) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows(),
                )
        n = ix._conn().execute("SELECT count(*) FROM dossiers").fetchone()[0]
        print(f"setup: {n:,} dossiers {'reused' if reuse else 'written'} in {time.perf_counter() - t0:.1f} s")
        for label, period, rule in (
            ("yearly", parse_period("year:2026"), "any"),
            ("yearly", parse_period("year:2026"), "required"),
            ("Q3", parse_period("quarter:2026-Q3"), "any"),
            ("explicit dates 2026-01-15..2026-12-20", parse_period(None, "2026-01-15", "2026-12-20"), "any"),
        ):
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                rep = ix.rate_report(period, rule)
                times.append(time.perf_counter() - t)
            dims = ", ".join(f"{k}={len(v)}" for k, v in rep.breakdowns.items())
            print(
                f"{label} report, rule {rule}: median {statistics.median(times):.2f} s over {args.runs} runs "
                f"(min {min(times):.2f} s); received {rep.total.received:,} input rate {rep.total.input_rate} %, "
                f"resolved {rep.total.resolved:,} output rate {rep.total.output_rate} %; lines: {dims}"
            )
        ix.close()


if __name__ == "__main__":
    main()
