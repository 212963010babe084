"""What auditing every search costs: ``index.search()`` alone vs ``index.search()`` + ``AuditLog.record()``.

    .venv/bin/python bench/audit_overhead.py [--pages 20000] [--queries 500] [--flush-interval 1.0]

Builds a fresh SQLite index of N pages of Vietnamese-like text (words of the demo pages, sohoa/demo.py),
then runs Q queries (one to three words, half typed with diacritics, half without) twice each: plain, and
followed by the audit record of the search (``AuditLog`` on a file:// store in a temporary folder, its
flusher thread writing a segment every flush interval meanwhile). The two runs of a query are
interleaved, their order alternating, so machine noise weighs on both alike. Prints p50/p95 of each,
the p95 ratio, and the cost of ``record()`` itself.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from pathlib import Path

from index.sqlite import SqliteIndex
from sohoa.audit import AuditEvent, AuditLog, read_events, verify
from sohoa.demo import TEXTS
from sohoa.models import DocRecord, PageText, SearchQuery, Status
from sohoa.text import fold, words
from storage import open_store

PAGES_PER_DOC = 10


def vocabulary() -> list[str]:
    vocab = {w.lower() for lines in TEXTS.values() for line in lines for w in words(line)}
    return sorted(w for w in vocab if len(w) > 1 and not w.isdigit())


def page_text(rnd: random.Random, vocab: list[str], lines: list[str]) -> str:
    out = []
    for _ in range(rnd.randint(12, 25)):
        if rnd.random() < 0.3:
            out.append(rnd.choice(lines))  # a real sentence of the demo forms
        else:
            out.append(" ".join(rnd.choice(vocab) for _ in range(rnd.randint(6, 14))))
    return "\n".join(out)


def build_index(ix: SqliteIndex, n_pages: int, rnd: random.Random, vocab: list[str]) -> None:
    lines = [line for ls in TEXTS.values() for line in ls]
    n_docs = (n_pages + PAGES_PER_DOC - 1) // PAGES_PER_DOC
    units = [f"UBND xã {name}" for name in ("Quảng Định", "Quảng Đức", "Đông Phú", "Hoằng Hóa", "Nga Sơn")]
    left = n_pages
    for d in range(n_docs):
        k = min(PAGES_PER_DOC, left)
        left -= k
        doc_id = hashlib.sha1(str(d).encode()).hexdigest()[:16]
        day = 1 + d % 28
        rec = DocRecord(
            id=doc_id,
            dossier_code=f"000.00.06.H56-2607{day:02d}-{d:04d}",
            kind="input" if d % 3 else "output",
            component="Đơn đề nghị",
            unit=units[d % len(units)],
            filename=f"ho-so-{d}.pdf",
            status=Status.DONE.value,
            received_at=f"2026-07-{day:02d}T08:00:00+00:00",
            sha256=hashlib.sha256(str(d).encode()).hexdigest(),
            page_count=k,
            mean_confidence=90.0,
        )
        ix.replace_pages(rec, [PageText(p + 1, page_text(rnd, vocab, lines)) for p in range(k)])


def make_queries(n: int, rnd: random.Random, vocab: list[str]) -> list[str]:
    qs = []
    for i in range(n):
        q = " ".join(rnd.sample(vocab, rnd.choice((1, 1, 2, 2, 3))))
        qs.append(fold(q) if i % 2 else q)  # every other query typed without diacritics
    return qs


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--flush-interval", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=30)
    args = ap.parse_args()
    rnd = random.Random(1)
    vocab = vocabulary()
    with tempfile.TemporaryDirectory() as tmp:
        ix = SqliteIndex(Path(tmp) / "index.sqlite3")
        t0 = time.perf_counter()
        build_index(ix, args.pages, rnd, vocab)
        print(f"setup: {args.pages:,} pages ({len(vocab)} distinct words) indexed in {time.perf_counter() - t0:.1f} s")
        store = open_store((Path(tmp) / "objects").as_uri())
        audit = AuditLog(store, flush_interval_s=args.flush_interval)
        queries = make_queries(args.queries, rnd, vocab)

        def plain(q: str) -> None:
            ix.search(SearchQuery(q=q))

        build_ms: list[float] = []
        record_ms: list[float] = []

        def audited(q: str) -> None:
            sq = SearchQuery(q=q)
            res = ix.search(sq)
            t = time.perf_counter()
            event = AuditEvent(
                actor="nguyenvana",
                actor_kind="user",
                roles=["clerk"],
                ip="10.0.0.5",
                action="search",
                target=q,
                details={"q": q, "filters": {"dossier_code": sq.dossier_code, "unit": sq.unit}, "total": res.total},
                status=200,
            )
            t1 = time.perf_counter()
            audit.record(event)
            t2 = time.perf_counter()
            build_ms.append((t1 - t) * 1000)
            record_ms.append((t2 - t1) * 1000)

        for q in queries[: args.warmup]:
            plain(q)
            audited(q)
        build_ms.clear()
        record_ms.clear()
        base_ms: list[float] = []
        with_ms: list[float] = []
        t_run = time.perf_counter()
        for i, q in enumerate(queries):
            order = ((plain, base_ms), (audited, with_ms))
            for fn, sink in order if i % 2 == 0 else reversed(order):
                t = time.perf_counter()
                fn(q)
                sink.append((time.perf_counter() - t) * 1000)
        run_s = time.perf_counter() - t_run
        totals = [ix.search(SearchQuery(q=q)).total for q in queries[:50]]
        audit.close()
        events = read_events(store, limit=10 * args.queries + args.warmup)
        check = verify(store)
        print(
            f"{len(queries)} queries interleaved in {run_s:.1f} s; hits per query (first 50): "
            f"median {statistics.median(totals):,.0f}"
        )
        print(f"search alone      : p50 {pct(base_ms, 0.5):7.2f} ms   p95 {pct(base_ms, 0.95):7.2f} ms")
        print(f"search + audit    : p50 {pct(with_ms, 0.5):7.2f} ms   p95 {pct(with_ms, 0.95):7.2f} ms")
        print(
            f"p95 ratio (audited / alone): {pct(with_ms, 0.95) / pct(base_ms, 0.95):.3f}; "
            f"p50 ratio {pct(with_ms, 0.5) / pct(base_ms, 0.5):.3f}"
        )
        diff = [w - b for w, b in zip(with_ms, base_ms, strict=True)]
        print(
            f"paired difference (audited - alone, same query): median {statistics.median(diff):+.3f} ms, "
            f"mean {statistics.mean(diff):+.3f} ms"
        )
        print(f"AuditEvent(...)   : p50 {pct(build_ms, 0.5) * 1000:6.1f} µs  p95 {pct(build_ms, 0.95) * 1000:6.1f} µs")
        print(
            f"audit.record()    : p50 {pct(record_ms, 0.5) * 1000:6.1f} µs  p95 {pct(record_ms, 0.95) * 1000:6.1f} µs"
        )
        print(
            f"audit: {len(events)} events written in {check.segments} segment(s), chain "
            f"{'verified' if check.ok else 'BROKEN: ' + '; '.join(check.problems[:3])}"
        )
        ix.close()


if __name__ == "__main__":
    main()
