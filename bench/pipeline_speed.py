"""Upload→searchable throughput, side by side in one run: sohoa vs raw Tesseract vs OCRmyPDF; Redis 1 vs 2 workers.

    .venv/bin/python bench/pipeline_speed.py [--pages 20] [--docs 10] [--doc-pages 2] [--threads 2]
        [--ocrmypdf PATH] [--no-redis] [--repeat 1]
    .venv/bin/python bench/pipeline_speed.py --pages 2 --docs 2 --doc-pages 1   # smoke test, about a minute

Workloads (the same generated A4 scans, 300 dpi JPEG, in every contender):

* one ``--pages``-page PDF, and ``--docs`` PDFs of ``--doc-pages`` pages each.

Contenders:

* ``sohoa``: the embedded default (in-process queue, ``--threads`` worker threads, the page pool with one
  process per core) from upload to "done" (stored, indexed, archival PDF written);
* ``raw tesseract``: ``tesseract page.jpg stdout -l vie`` with sohoa's model, one process per page, as many at
  once as there are cores (``OMP_THREAD_LIMIT=1``): no cleanup, no orientation, no PDF, no storage;
* ``ocrmypdf``: ``ocrmypdf --deskew --clean --rotate-pages -l vie`` (only when installed: ``--ocrmypdf`` or on
  PATH; it needs ``unpaper`` and a tessdata folder with Tesseract's ``configs/``, made as in
  bench/ocr_quality.py); the big PDF with ``--jobs`` = cores, the small ones one per core at a time. NB:
  OCRmyPDF lowers its own priority (nice 5): on a busy machine that starves it, so (as root) it is started at
  nice -5 to run at the others' priority;
* ``redis 1 / 2 workers``: ``sohoa worker`` processes on a Redis broker, each pinned to one core (taskset) with
  one thread and ``SOHOA_PAGE_WORKERS=1``, running the small documents: 2 workers vs 1 shows whether idle
  workers take work (goal ≥ 1.9×). With them, ``raw tesseract, 1 core`` (the small documents' pages, one
  process pinned to one core): raw Tesseract on every core over it is the machine's own ceiling for that ratio
  (two vCPUs may share a physical core, caches or memory bandwidth), printed beside it.

Printed: pages/min of each, ratios to raw Tesseract and OCRmyPDF, peak RSS (VmHWM) of the sohoa process and of
each page process, bytes stored per page vs the scan's. The machine may be shared and noisy: only ratios
measured in the same run mean anything; ``--repeat`` runs every contender again, interleaved, and prints min.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import img2pdf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import UploadItem, accept_batch  # noqa: E402
from ingest.service import Accepted  # noqa: E402
from sohoa.context import Context  # noqa: E402
from sohoa.demo import TEXTS, image_bytes, render_page  # noqa: E402
from sohoa.models import Status  # noqa: E402
from sohoa.settings import Settings  # noqa: E402
from workers import pagepool  # noqa: E402

CODE = "000.00.06.H56-261105-{:04d}"
# OCRmyPDF lowers its own priority by 5; started at -5 (root only) it runs at the priority of the others
UNNICE = ["nice", "-n", "-5"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def hwm_kb(pid: int | str = "self") -> int:
    """Peak resident memory (VmHWM) of a process, kB; 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_hwm(pid: int | str = "self") -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def make_pages(n: int, offset: int = 0) -> list[bytes]:
    texts = list(TEXTS.values())
    return [
        image_bytes(
            render_page(texts[(i + offset) % len(texts)], 300, skew=((i % 3) - 1) * 0.8, noise=True, seed=i),
            "JPEG",
            300,
        )  # fmt: skip
        for i in range(n)
    ]


def write_pdf(path: Path, jpgs: list[bytes]) -> Path:
    out = img2pdf.convert(jpgs, layout_fun=img2pdf.get_fixed_dpi_layout_fun((300, 300)))
    assert out is not None
    path.write_bytes(bytes(out))
    return path


def ocrmypdf_setup(given: str) -> tuple[str, str]:
    """(ocrmypdf program, tessdata folder with configs/) or ("", "") when OCRmyPDF or unpaper is missing."""
    import ocr_quality

    exe = given or ocr_quality.ocrmypdf_bin() or ""
    if not exe or not shutil.which("unpaper"):
        return "", ""
    from ocr.tesseract import resolve_model

    return exe, ocr_quality._ocrmypdf_tessdata(resolve_model(None)[0])


def warm_pool() -> None:
    """Start (and warm up) every page process before the clock starts, as a worker does once, at its start."""
    pagepool.start_pool(pagepool.page_workers(0))


def wait_done(ctx: Context, ids: list[str], poll_s: float = 0.2) -> None:
    """Until every document is terminal. Reads one manifest per poll (the first not yet done), not all of them
    every 0.1 s: in the embedded run this process is sohoa's, and polling took the GIL from its worker threads."""
    pending = list(ids)
    while pending:
        if Status(ctx.load_manifest(pending[0]).status).terminal:
            pending.pop(0)
            continue
        time.sleep(poll_s)


# -- contenders ------------------------------------------------------------------------------------------------
def run_sohoa(tmp: Path, docs: list[Path], threads: int) -> tuple[float, dict[str, int], float]:
    """Seconds from upload to every document done; peak RSS (kB) of this process and the page processes;
    bytes stored per page (everything under documents/ but the originals) over the scan's bytes per page."""
    data = Path(tempfile.mkdtemp(dir=tmp, prefix="sohoa-"))
    ctx = Context(Settings(data_dir=data, worker_threads=threads))
    ctx.queue.start_worker(threads)
    items = [UploadItem(p, p.name, CODE.format(i), "input") for i, p in enumerate(docs)]
    warm_pool()
    for pid in [*map(str, pagepool.pool_pids()), "self"]:
        reset_hwm(pid)
    t0, cpu0 = time.perf_counter(), time.process_time()
    ids = [r.manifest.id for r in accept_batch(ctx, items) if isinstance(r, Accepted)]
    wait_done(ctx, ids)
    elapsed = time.perf_counter() - t0
    main_cpu = time.process_time() - cpu0  # upload, page extraction, storage, index, archive writer, polling
    rss: dict[str, int] = {"sohoa process": hwm_kb()}
    for k, child in enumerate(pagepool.pool_pids(), 1):
        rss[f"page process {k}"] = hwm_kb(child)
    ms = [ctx.load_manifest(i) for i in ids]
    bad = [m.error for m in ms if m.status != "done"]
    if bad:
        raise SystemExit(f"sohoa failed: {bad}")
    scan = sum(m.size for m in ms)
    stored = 0
    for m in ms:
        for key in ctx.store.list(f"documents/{m.id}/out/"):
            stored += ctx.store.size(key)
    pages = sum(len(m.pages) for m in ms)
    ratio = (stored + scan) / scan
    print(f"    sohoa main process: {main_cpu / pages:.3f} CPU s/page (upload, page extraction, storage, index, "
          f"archive); wall {elapsed / pages:.2f} s/page")  # fmt: skip
    print(f"    sohoa storage: {stored / pages / 1024:.0f} KiB/page of outputs (pdf+preview+text+hocr), "
          f"scan {scan / pages / 1024:.0f} KiB/page: original + outputs = {ratio:.2f} × the scan")  # fmt: skip
    ctx.close()
    return elapsed, rss, ratio


def run_raw_tesseract(tmp: Path, jpgs: list[Path], workers: int, pin: int | None = None) -> float:
    """Seconds for ``tesseract`` over *jpgs*, *workers* processes at once (pinned to core *pin* if given)."""
    from ocr.tesseract import resolve_model

    tessdata = resolve_model(None)[0]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    taskset = ["taskset", "-c", str(pin)] if pin is not None else []

    def one(p: Path) -> None:
        subprocess.run([*taskset, "tesseract", str(p), "stdout", "-l", "vie", "--tessdata-dir", tessdata],
                       capture_output=True, env=env, check=True)  # fmt: skip

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, jpgs))
    return time.perf_counter() - t0


def run_ocrmypdf(exe: str, tmp: Path, docs: list[Path], workers: int, tessdata_dir: str) -> float:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1", "TESSDATA_PREFIX": tessdata_dir}
    jobs = workers if len(docs) == 1 else 1

    def one(p: Path) -> None:
        out = tmp / f"{p.stem}.ocrmypdf.pdf"
        subprocess.run([*UNNICE, exe, "-q", "-l", "vie", "--deskew", "--clean", "--rotate-pages", "--jobs", str(jobs),
                        "--output-type", "pdf", str(p), str(out)], env=env, check=True)  # fmt: skip

    t0 = time.perf_counter()
    with ThreadPoolExecutor(1 if len(docs) == 1 else workers) as ex:
        list(ex.map(one, docs))
    return time.perf_counter() - t0


def core_ids() -> list[int]:
    """The cores this process may run on, in order: the Redis workers are pinned to them one each, and the
    one-core raw Tesseract run to the first (the 1-worker run's core)."""
    return sorted(os.sched_getaffinity(0))


def run_redis(tmp: Path, docs: list[Path], n_workers: int, redis_url: str) -> tuple[float, float]:
    """Seconds for *n_workers* ``sohoa worker`` processes (one core, one thread, one page process each) to
    finish *docs* uploaded at once, and the seconds of the upload itself (a batch is queued when the whole of
    it is stored: the workers wait for it, whatever their number); the workers are ready before the upload."""
    data = Path(tempfile.mkdtemp(dir=tmp, prefix=f"redis{n_workers}-"))
    env = {**os.environ, "SOHOA_DATA_DIR": str(data), "SOHOA_BROKER_URL": redis_url, "SOHOA_PAGE_WORKERS": "1",
           "SOHOA_WORKER_THREADS": "1", "SOHOA_RECONCILE_INTERVAL_S": "0", "OMP_THREAD_LIMIT": "1"}  # fmt: skip
    cores = core_ids()
    procs = []
    for k in range(n_workers):
        log = open(data.parent / f"worker-{n_workers}-{k}.log", "wb")  # noqa: SIM115 - kept while it runs
        cmd = ["taskset", "-c", str(cores[k % len(cores)]), str(Path(sys.executable).parent / "sohoa"), "worker"]
        procs.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            logs = [(data.parent / f"worker-{n_workers}-{k}.log").read_text(errors="replace") for k in range(n_workers)]
            if all("worker running" in s for s in logs):
                break
            if any(p.poll() is not None for p, _ in procs):
                raise SystemExit(f"a worker stopped: {logs}")
            time.sleep(0.2)
        ctx = Context(Settings.from_env(env))
        items = [UploadItem(p, p.name, CODE.format(i), "input") for i, p in enumerate(docs)]
        t0 = time.perf_counter()
        ids = [r.manifest.id for r in accept_batch(ctx, items) if isinstance(r, Accepted)]
        upload = time.perf_counter() - t0
        wait_done(ctx, ids)
        elapsed = time.perf_counter() - t0
        bad = [m.error for m in (ctx.load_manifest(i) for i in ids) if m.status != "done"]
        if bad:
            raise SystemExit(f"redis run failed: {bad}")
        keep = os.environ.get("BENCH_KEEP_LOGS")  # a path prefix: the workers' logs are copied there
        for k in range(n_workers if keep else 0):
            shutil.copy(data.parent / f"worker-{n_workers}-{k}.log", f"{keep}-{n_workers}-{k}.log")
        ctx.close()
        return elapsed, upload
    finally:
        for p, _ in procs:
            p.send_signal(signal.SIGTERM)
        for p, log in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
            log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20, help="pages of the one large document")
    ap.add_argument("--docs", type=int, default=10, help="number of small documents")
    ap.add_argument("--doc-pages", type=int, default=2, help="pages of each small document")
    ap.add_argument("--threads", type=int, default=2, help="sohoa worker threads (embedded)")
    ap.add_argument("--ocrmypdf", default="", help="ocrmypdf program (default: on PATH or beside this python)")
    ap.add_argument("--no-redis", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default="", help="contenders to run, comma-separated: raw,ocrmypdf,sohoa,redis")
    args = ap.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}

    def wanted(name: str) -> bool:
        return not only or name in only

    cores = pagepool.available_cores()
    exe, tessdata_dir = ocrmypdf_setup(args.ocrmypdf)
    with tempfile.TemporaryDirectory(prefix="sohoa-pipeline-bench-") as t:
        tmp = Path(t)
        big_jpgs = make_pages(args.pages)
        small_jpgs = [make_pages(args.doc_pages, offset=d + 1) for d in range(args.docs)]
        big = [write_pdf(tmp / "big.pdf", big_jpgs)]
        small = [write_pdf(tmp / f"small{d:02d}.pdf", j) for d, j in enumerate(small_jpgs)]
        files: dict[str, list[Path]] = {"big": [], "small": []}
        for name, jpgs in (("big", big_jpgs), ("small", [j for js in small_jpgs for j in js])):
            for i, data in enumerate(jpgs):
                p = tmp / f"{name}-{i:04d}.jpg"
                p.write_bytes(data)
                files[name].append(p)
        workloads = {"big": (big, args.pages), "small": (small, args.docs * args.doc_pages)}
        times: dict[tuple[str, str], list[float]] = {}
        rss: dict[str, int] = {}
        storage: list[float] = []
        redis_srv = None
        if not args.no_redis and wanted("redis"):
            from servers import start_redis

            redis_srv = start_redis(tmp / "redis")
        print(f"{cores} core(s); big: 1 × {args.pages} pages, small: {args.docs} × {args.doc_pages} pages; "
              f"ocrmypdf: {exe or 'not installed'}")  # fmt: skip
        try:
            for r in range(args.repeat):
                for wl, (docs, _) in workloads.items():
                    runs: list[tuple[str, Callable[[], float]]] = []
                    if wanted("raw"):
                        runs.append(("raw tesseract", functools.partial(run_raw_tesseract, tmp, files[wl], cores)))
                    if exe and wanted("ocrmypdf"):
                        runs.append(("ocrmypdf", functools.partial(run_ocrmypdf, exe, tmp, docs, cores, tessdata_dir)))
                    for name, fn in runs:
                        times.setdefault((wl, name), []).append(fn())
                        print(f"  [{r + 1}] {wl:5} {name:14} {times[(wl, name)][-1]:7.1f} s", flush=True)
                    if not wanted("sohoa"):
                        continue
                    secs, peak, ratio = run_sohoa(tmp, docs, args.threads)
                    times.setdefault((wl, "sohoa"), []).append(secs)
                    storage.append(ratio)
                    for k, v in peak.items():
                        rss[f"{wl}: {k}"] = max(rss.get(f"{wl}: {k}", 0), v)
                    print(f"  [{r + 1}] {wl:5} {'sohoa':14} {secs:7.1f} s", flush=True)
                if redis_srv is not None:
                    # the machine's own ceiling for "2 workers / 1": the same pages, raw Tesseract on one core
                    # (vs on every core, measured above): two vCPUs may share a physical core or memory bandwidth
                    secs = run_raw_tesseract(tmp, files["small"], 1, pin=core_ids()[0])
                    times.setdefault(("small", "raw tesseract, 1 core"), []).append(secs)
                    print(f"  [{r + 1}] small raw tesseract, 1 core {secs:5.1f} s", flush=True)
                    for n in (1, 2):
                        secs, upload = run_redis(tmp, small, n, redis_srv.url)
                        times.setdefault(("small", f"redis {n} worker(s)"), []).append(secs)
                        print(f"  [{r + 1}] small redis {n} worker(s) {secs:5.1f} s, upload {upload:.1f} s", flush=True)
        finally:
            pagepool.shutdown()
            if redis_srv is not None:
                redis_srv.stop()
        print("\nworkload  contender              pages/min   × raw tesseract   × ocrmypdf   (min of runs)")
        for wl, (_, n_pages) in workloads.items():
            ppm = {name: n_pages / min(v) * 60 for (w, name), v in times.items() if w == wl}
            for name, v in ppm.items():
                raw = v / ppm["raw tesseract"] if "raw tesseract" in ppm else float("nan")
                omp = f"{v / ppm['ocrmypdf']:.2f}" if "ocrmypdf" in ppm else "-"
                print(f"{wl:9} {name:22} {v:9.1f}   {raw:15.2f}   {omp:>9}")
        if ("small", "redis 1 worker(s)") in times:
            one, two = min(times[("small", "redis 1 worker(s)")]), min(times[("small", "redis 2 worker(s)")])
            print(f"\nredis: 2 workers / 1 worker = {one / two:.2f}× (goal ≥ 1.9; each worker on its own core)")
            raw_all, raw_one = times.get(("small", "raw tesseract")), times.get(("small", "raw tesseract, 1 core"))
            if raw_all and raw_one and cores >= 2:
                ceiling = min(raw_one) / min(raw_all)
                print(f"  this machine's ceiling: raw Tesseract on {cores} cores / on 1 core = {ceiling:.2f}× "
                      f"(same pages, same run): the workers reach {one / two / ceiling:.0%} of it")  # fmt: skip
            else:
                print("  this machine's ceiling: not measured (needs 2+ cores and the raw contender)")
        if storage:
            print(f"storage: original + outputs = {max(storage):.2f} × the scan's bytes (goal ≤ 1.5)")
        print("peak RSS (VmHWM):")
        for k, v in rss.items():
            print(f"  {k:28} {v / 1024:7.0f} MiB")
        print("(shared, noisy machine: compare only figures of one run)")


if __name__ == "__main__":
    main()
