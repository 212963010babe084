"""Search latency of the embedded SQLite index at province scale (issue 15).

Builds N pages (default 1,000,000) of realistic Vietnamese text through the real index API
(:meth:`index.sqlite.SqliteIndex.bulk_replace_pages`, then ``optimize``): word frequencies from ``wordfreq``
("vi", Zipf-distributed over its 30k most frequent words) mixed with whole lines sampled from the OCR
ground-truth texts under ``tests/data/ocr`` (real phrases, legal vocabulary); documents of 1–20 pages, 1–6
documents per dossier, 120 units, input/output kinds, received dates over 2023–2026. Then prints the build
rate (pages/s), the index size on disk, p50/p95/p99 per query type and queries/s for 1 client and 8
concurrent client threads (one index object, a connection per thread, as the API server runs searches;
SQLite releases the GIL while a statement steps) and, with ``--procs``, 8 client processes.

    .venv/bin/python bench/search_speed.py --pages 2000                       # smoke test, seconds
    nice -n 19 .venv/bin/python bench/search_speed.py --pages 500000 --db /tmp/big.db --no-query --sizes
    nice -n 19 .venv/bin/python bench/search_speed.py --reuse --append 500000 --db /tmp/big.db --no-query
    .venv/bin/python bench/search_speed.py --reuse --db /tmp/big.db --procs   # query an existing build

The machine is shared and noisy (2 cores, other jobs running): compare figures from one run only.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.sqlite import SqliteIndex  # noqa: E402
from sohoa.models import DocRecord, PageText, SearchQuery  # noqa: E402
from sohoa.text import fold, nfc, words  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
UNITS = [f"UBND {k} {n}" for k in ("xã", "phường", "huyện") for n in range(1, 41)]


def vocabulary() -> tuple[list[str], np.ndarray]:
    from wordfreq import top_n_list, word_frequency

    vocab = [nfc(w) for w in top_n_list("vi", 30000) if words(w)]
    freq = np.array([word_frequency(w, "vi") for w in vocab], dtype=np.float64)
    return vocab, freq / freq.sum()


def real_lines() -> list[str]:
    lines: list[str] = []
    for p in sorted((ROOT / "tests/data/ocr").glob("*.txt")):
        lines += [nfc(x.strip()) for x in p.read_text(encoding="utf-8").splitlines() if len(words(x)) >= 4]
    return lines


class TextGen:
    def __init__(self, seed: int) -> None:
        self.vocab, p = vocabulary()
        self.cdf = np.cumsum(p)
        self.lines = real_lines()
        self.rng = np.random.default_rng(seed)
        self.pyrng = random.Random(seed)

    def page(self) -> str:
        n = int(self.rng.integers(150, 450))
        idx = np.minimum(np.searchsorted(self.cdf, self.rng.random(n)), len(self.vocab) - 1)
        toks = [self.vocab[i] for i in idx]
        out: list[str] = []
        i = 0
        while i < n:  # lines of ~12 words; one line in three is a real OCR'd line
            if self.pyrng.random() < 0.33 and self.lines:
                out.append(self.pyrng.choice(self.lines))
                i += 12
            else:
                out.append(" ".join(toks[i : i + 12]))
                i += 12
        return "\n".join(out)


def build(ix: SqliteIndex, n_pages: int, seed: int, first_doc: int = 0) -> tuple[float, int, int]:
    """Add *n_pages* pages in documents numbered after *first_doc* (0: a new index; else appended)."""
    gen = TextGen(seed + first_doc)
    rng = random.Random(seed + first_doc)
    made = 0
    docs = first_doc
    batch: list[tuple[DocRecord, list[PageText]]] = []
    t0 = time.perf_counter()
    dossier = first_doc  # dossier numbers stay unique when appending (fewer dossiers than documents)
    while made < n_pages:
        dossier += 1
        unit = rng.choice(UNITS)
        day = f"{rng.randint(2023, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        code = f"000.00.{dossier % 100:02d}.H56-{day[2:4]}{day[5:7]}{day[8:10]}-{dossier:07d}"
        for k in range(rng.randint(1, 6)):
            if made >= n_pages:
                break
            npg = min(rng.randint(1, 20), n_pages - made)
            docs += 1
            doc = DocRecord(
                id=f"d{docs:08d}",
                dossier_code=code,
                kind="output" if k == 0 and rng.random() < 0.4 else "input",
                component=f"thành phần {k}",
                unit=unit,
                filename=f"hs{docs}.pdf",
                status="done",
                received_at=f"{day}T08:00:00.000+07:00",
                sha256=f"{docs:064x}",
                page_count=npg,
            )
            batch.append((doc, [PageText(i + 1, gen.page()) for i in range(npg)]))
            made += npg
        if len(batch) >= 300:
            ix.bulk_replace_pages(batch)
            batch = []
            if made % 50_000 < 3000:
                print(f"  {made:,} pages, {made / (time.perf_counter() - t0):,.0f} pages/s", flush=True)
    if batch:
        ix.bulk_replace_pages(batch)
    t_insert = time.perf_counter() - t0
    ix.optimize()
    return time.perf_counter() - t0, made, int(t_insert)


def queries(ix: SqliteIndex, seed: int) -> dict[str, list[SearchQuery]]:
    vocab, _ = vocabulary()
    lines = real_lines()
    rng = random.Random(seed + 1)
    conn = ix._conn()
    docs = conn.execute("SELECT dossier_code, unit, id FROM documents ORDER BY random() LIMIT 400").fetchall()
    common = [w for w in vocab[:60] if len(w) > 1]
    mid = vocab[200:3000]
    rare = vocab[8000:30000]
    phrases = []
    for line in lines:
        ws = words(line)
        if len(ws) >= 3:
            phrases.append(" ".join(ws[:3]) if rng.random() < 0.5 else " ".join(ws[1:3]))
    out: dict[str, list[SearchQuery]] = {
        "word, common": [SearchQuery(q=rng.choice(common)) for _ in range(60)],
        "word, rare": [SearchQuery(q=rng.choice(rare)) for _ in range(60)],
        "pair, no diacritics": [SearchQuery(q=fold(f"{rng.choice(mid)} {rng.choice(mid)}")) for _ in range(60)],
        "phrase": [SearchQuery(q=f'"{rng.choice(phrases)}"') for _ in range(60)],
        "common word + dossier": [
            SearchQuery(q=rng.choice(common), dossier_code=rng.choice(docs)["dossier_code"]) for _ in range(60)
        ],
        "common word + unit": [SearchQuery(q=rng.choice(common), unit=rng.choice(docs)["unit"]) for _ in range(60)],
        "word + unit scope (3 units)": [
            SearchQuery(q=rng.choice(mid), units=tuple(rng.sample(UNITS, 3))) for _ in range(60)
        ],
        "common word + 1 month": [
            SearchQuery(q=rng.choice(common), date_from=f"{y}-{m:02d}-01", date_to=f"{y}-{m:02d}-28")
            for y, m in ((rng.randint(2023, 2026), rng.randint(1, 12)) for _ in range(60))
        ],
        "pair + date range (5 months)": [
            SearchQuery(q=f"{rng.choice(mid)} {rng.choice(common)}", date_from="2024-02-15", date_to="2024-07-10")
            for _ in range(60)
        ],
        "page view (word, in one document)": [
            SearchQuery(q=rng.choice(common), document_id=rng.choice(docs)["id"], size=100) for _ in range(60)
        ],
    }
    return out


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def _work(qs: dict[str, list[SearchQuery]]) -> list[tuple[str, SearchQuery]]:
    work = [(k, q) for k, lst in qs.items() for q in lst]
    random.Random(7).shuffle(work)
    return work


Latencies = dict[str, list[float]]


def run(ix: SqliteIndex, qs: dict[str, list[SearchQuery]], clients: int) -> tuple[Latencies, float]:
    """*clients* threads sharing one index object (one SQLite connection per thread), closed loop.
    Returns the latencies (ms) per query type and the wall time (s)."""
    lat: dict[str, list[float]] = {k: [] for k in qs}
    work = _work(qs)
    lock = threading.Lock()
    pos = [0]

    def worker() -> None:
        while True:
            with lock:
                if pos[0] >= len(work):
                    return
                k, q = work[pos[0]]
                pos[0] += 1
            t = time.perf_counter()
            ix.search(q)
            dt = (time.perf_counter() - t) * 1000
            with lock:
                lat[k].append(dt)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, time.perf_counter() - t0


def _proc_client(path: str, work: list[tuple[str, SearchQuery]], start: Any, out: Any) -> None:
    ix = SqliteIndex(path)
    for _, q in work[:3]:  # open the connection, warm
        ix.search(q)
    start.wait()
    res = []
    for k, q in work:
        t = time.perf_counter()
        ix.search(q)
        res.append((k, (time.perf_counter() - t) * 1000))
    out.put(res)
    ix.close()


def run_procs(path: str, qs: dict[str, list[SearchQuery]], clients: int) -> tuple[Latencies, float]:
    """*clients* processes, each with its own index object, each running every clients-th query (no GIL shared)."""
    ctx = mp.get_context("spawn")
    work = _work(qs)
    start = ctx.Barrier(clients + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=_proc_client, args=(path, work[i::clients], start, out)) for i in range(clients)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    lat: dict[str, list[float]] = {k: [] for k in qs}
    for _ in procs:
        for k, dt in out.get():
            lat[k].append(dt)
    secs = time.perf_counter() - t0
    for p in procs:
        p.join()
    return lat, secs


def size_on_disk(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--db", default="", help="index file (default: a temporary file, removed after)")
    ap.add_argument("--reuse", action="store_true", help="query the existing --db without building")
    ap.add_argument("--append", type=int, default=0, help="with --reuse: first add this many pages (then optimize)")
    ap.add_argument("--no-query", action="store_true", help="build (or append) only; query later with --reuse")
    ap.add_argument("--optimize", action="store_true", help="with --reuse: merge the FTS segments first (timed)")
    ap.add_argument("--sizes", action="store_true", help="print the FTS / pages table sizes (scans the whole file)")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--per-type", type=int, default=60, help="queries per query type (at most 60)")
    ap.add_argument("--procs", action="store_true", help="also 8 client processes (vs 8 threads: the GIL's share)")
    a = ap.parse_args()
    path = a.db or f"/tmp/sohoa-search-bench-{os.getpid()}.db"
    if not a.reuse:
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
    ix = SqliteIndex(path)
    if not a.reuse or a.append:
        first = 0
        if a.reuse:
            first = int(ix._conn().execute("SELECT max(CAST(substr(id, 2) AS INTEGER)) FROM documents").fetchone()[0])
        secs, made, t_ins = build(ix, a.append or a.pages, a.seed, first)
        print(f"built {made:,} pages in {secs:,.0f} s (insert {t_ins} s + optimize): {made / secs:,.0f} pages/s")
    elif a.optimize:
        t = time.perf_counter()
        ix.optimize()
        print(f"optimize: {time.perf_counter() - t:,.0f} s")
    if not a.reuse or a.optimize or a.append:
        ix._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    n = ix._conn().execute("SELECT max(rowid) FROM pages").fetchone()[0] or 0
    print(f"index: ~{n:,} pages, {size_on_disk(path) / 1e9:.2f} GB on disk ({path})")
    if a.sizes:
        for name, size in ix._conn().execute(
            "SELECT CASE WHEN name LIKE 'pages_fts%' THEN 'FTS5 (pages_fts*)' ELSE name END AS n, sum(pgsize) "
            "FROM dbstat GROUP BY n ORDER BY 2 DESC LIMIT 6"
        ):
            print(f"  {name:28} {size / 1e9:6.2f} GB")
    if a.no_query:
        ix.close()
        return
    qs = {k: v[: a.per_type] for k, v in queries(ix, a.seed).items()}
    run(ix, {k: v[:5] for k, v in qs.items()}, 1)  # warm the cache a little
    modes: dict[str, Callable[[], tuple[Latencies, float]]] = {
        "1 client": lambda: run(ix, qs, 1),
        "8 threads": lambda: run(ix, qs, 8),
    }
    if a.procs:
        modes["8 processes"] = lambda: run_procs(path, qs, 8)
    results: dict[str, dict[str, list[float]]] = {}
    rate: dict[str, float] = {}
    for mode, fn in modes.items():
        results[mode], secs = fn()
        rate[mode] = sum(map(len, results[mode].values())) / secs
    fmt: Callable[[float], str] = lambda x: f"{x:7.1f}"  # noqa: E731
    print(f"\nlatency ms (p50 / p95 / p99), {a.per_type} queries per type, same run; shared noisy machine")
    print(f"{'query type':36}" + "".join(f"{m:>25}" for m in results))
    both: dict[str, list[float]] = {m: [] for m in results}
    for k in list(qs) + ["ALL"]:
        row = f"{k:36}"
        for m, res in results.items():
            xs = both[m] if k == "ALL" else res[k]
            if k != "ALL":
                both[m] += xs
            row += f"{fmt(pct(xs, 50))} {fmt(pct(xs, 95))} {fmt(pct(xs, 99))}"
        print(row)
    for m in results:
        print(f"{m}: mean {statistics.mean(both[m]):.1f} ms, {rate[m]:.1f} queries/s")
    ix.close()
    if not a.db:
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
