"""Fault scenarios of issue 12 on a larger batch, on real servers, with the default settings; prints one row each.

    .venv/bin/python bench/faults.py [--docs 100] [--outage 120] [--redis-outage 15] [--only s3,es,...]

Scaled shape (SeaweedFS S3 + Elasticsearch API + Redis + ``sohoa serve`` + 2 ``sohoa worker`` processes of one
thread), except ``embedded-kill`` (``sohoa serve`` with the in-process queue, file store, SQLite). Per scenario:

* accepted — documents the API accepted (202; a client retries a failed upload as any client would);
* done / failed — their final state in the object store;
* lost — accepted and not finished 15 minutes after the fault ended (stranded counts here);
* duplicated — processed by two runs at once, or completed twice (from the workers' run events);
* disagree — storage and index differ at the end;
* recovery s — from the end of the fault (the server back, the process restarted) until nothing is stranded any
  more — every unfinished document has a job in the broker (waiting its turn) or a live lease — and a document
  has completed since: processing has resumed and nobody touched anything. The embedded shape's queue lives in
  the server's memory, so there: until every run the kill cut short has started again;
* drain s — from the end of the fault until every accepted document is done.

The issue's target: 0 lost, 0 duplicated for every row with no human action, recovery ≤ 60 s.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from faultkit import Cluster, Sohoa, runs, scans, verdict  # noqa: E402

from sohoa.context import Context  # noqa: E402
from sohoa.models import Status  # noqa: E402
from sohoa.settings import Settings  # noqa: E402

from deploy import wait_for  # noqa: E402

DRAIN_S = 900
LIVE: list[Sohoa] = []  # the processes of the running scenario, stopped after it
CODE = "000.00.06.H56-261201-{:04d}"


@dataclass
class Row:
    scenario: str
    fault: str
    accepted: int = 0
    done: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    disagree: int = 0
    temp_left: int = 0
    zombies: int = 0
    recovery_s: float | None = None
    drain_s: float | None = None
    note: str = ""


def upload_all(sh: Sohoa, files: list[tuple[str, bytes]], code: str, per_request: int = 20) -> list[str]:
    """Upload like a careful client: batches of *per_request*, each retried until the API accepts it."""
    ids: list[str] = []
    for i in range(0, len(files), per_request):
        part = files[i : i + per_request]
        for _ in range(600):
            try:
                r = sh.upload(part, code, timeout=300)
                if r.status_code == 202:
                    ids += [d["id"] for d in r.json()["documents"]]
                    break
                time.sleep(float(r.headers.get("retry-after", "5")))
            except httpx.HTTPError:
                time.sleep(2)
        else:
            raise RuntimeError("upload never accepted")
    return ids


def n_done(ctx: Context, ids: list[str]) -> int:
    n = 0
    for i in ids:
        with contextlib.suppress(Exception):  # a backend may be down while we look
            n += ctx.load_manifest(i).status in (Status.DONE.value, Status.FAILED.value)
    return n


def stranded(ctx: Context, ids: list[str]) -> list[str]:
    """Unfinished documents with no message in the broker and no live lease: nothing would ever move them."""
    from sohoa.context import lease_name
    from sohoa.leases import holder_dead

    pending = ctx.queue.pending() or set()
    leases = ctx.leases.get_many([lease_name(i) for i in ids])
    out = []
    for i in ids:
        if Status(ctx.load_manifest(i).status).terminal or i in pending:
            continue
        lease = leases.get(lease_name(i))
        if lease is None or not lease.alive() or holder_dead(lease):
            out.append(i)
    return out


def recovery(ctx: Context, ids: list[str], sh: Sohoa, t_end: float, rerun: set[str], broker: bool) -> float | None:
    """Seconds from *t_end* until nothing is stranded, the cut-short runs (*rerun*) started again and a document
    completed since (see the module docstring)."""
    while time.time() < t_end + DRAIN_S:
        spans = runs(sh.events(), sh.kills)
        resumed = n_done(ctx, ids) == len(ids) or any(s[2] == "done" and s[1] >= t_end
                                                      for lst in spans.values() for s in lst)  # fmt: skip
        restarted = broker or all(any(s[0] >= t_end for s in spans.get(d, [])) for d in rerun)
        if resumed and restarted:
            try:
                ok = not broker or stranded(ctx, ids) == []
            except Exception:  # noqa: BLE001 - a backend still coming back
                ok = False
            if ok:
                return round(time.time() - t_end, 1)
        time.sleep(1)
    return None


def running_in(sh: Sohoa, name: str) -> bool:
    """Process *name* has a run started and not ended."""
    pid = f":{sh.procs[name].pid}:"
    ev = [e for e in sh.events() if e.get("event") in ("run.start", "run.end") and pid in str(e.get("owner"))]
    return sum(1 if e["event"] == "run.start" else -1 for e in ev) > 0


def cut_short(sh: Sohoa) -> set[str]:
    """Documents whose run was in a process that was killed."""
    return {d for d, lst in runs(sh.events(), sh.kills).items() for s in lst if s[2] == "killed"}


def finish(
    row: Row, ctx: Context, ids: list[str], sh: Sohoa, fault_end: float, rerun: set[str] | None = None,
    broker: bool = True,
) -> Row:  # fmt: skip
    row.recovery_s = recovery(ctx, ids, sh, fault_end, rerun or set(), broker)
    try:
        wait_for(lambda: n_done(ctx, ids) == len(ids), DRAIN_S, interval=2, what="drain")
        row.drain_s = round(time.time() - fault_end, 1)
    except AssertionError:
        pass
    v = verdict(ctx, ids, sh)
    row.accepted, row.done, row.failed, row.lost = v.accepted, v.done, len(v.failed), len(v.lost)
    row.duplicated, row.disagree, row.temp_left, row.zombies = v.duplicated, len(v.disagree), len(v.temp_left), len(
        v.zombies
    )
    return row


def scaled(cluster: Cluster, work: Path, name: str) -> tuple[Sohoa, Context]:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    s = cluster.settings(folder, lease_ttl_s=60.0, reconcile_interval_s=15.0, retry_min_backoff_ms=2000,
                         retry_max_backoff_ms=30000, redis_heartbeat_ms=60000, worker_threads=1)  # fmt: skip
    sh = Sohoa(s, folder)
    LIVE.append(sh)
    sh.start_api()
    sh.start_worker("worker-a")
    sh.start_worker("worker-b")
    return sh, Context(s)


def progress_at(ctx: Context, ids: list[str], share: float, timeout: float = 600) -> None:
    wait_for(lambda: n_done(ctx, ids) >= max(1, int(len(ids) * share)), timeout, interval=1, what="progress")


def scenario_worker_kill(cluster: Cluster, work: Path, docs: int) -> Row:
    sh, ctx = scaled(cluster, work, "worker-kill")
    ids = upload_all(sh, scans(docs), CODE.format(1))
    progress_at(ctx, ids, 0.2)
    wait_for(lambda: running_in(sh, "worker-a"), 120, interval=0.05, what="worker-a in the middle of a document")
    sh.kill("worker-a")  # kill -9 in the middle of a document
    end = time.time()
    sh.start_worker("worker-a2")
    killed = cut_short(sh)
    row = finish(Row("worker kill -9 mid-document", "kill -9 one of 2 workers, restart it"), ctx, ids, sh, end,
                 killed)  # fmt: skip
    row.note = f"{len(killed)} run(s) cut short, started again by the reconciler (dead process, no live lease)"
    return row


def scenario_api_kill(cluster: Cluster, work: Path, docs: int) -> Row:
    sh, ctx = scaled(cluster, work, "api-kill")
    code = CODE.format(2)
    ids = upload_all(sh, scans(docs - 15), code)
    from test_faults import _padded  # the same big scans the suite uses

    batch = [(n, _padded(b)) for n, b in scans(15)]
    t = threading.Thread(target=lambda: _quiet(lambda: sh.upload(batch, code, timeout=300)), daemon=True)
    t.start()
    wait_for(lambda: any(True for _ in ctx.store.list("batches/")), 120, interval=0.005, what="staging")
    time.sleep(0.3)
    sh.kill("api")
    t.join(30)
    staged = sum(1 for k in ctx.store.list("documents/") if "/original" in k) - len(ids)
    visible = len(ctx.index.list_documents(dossier_code=code, limit=100_000)) - len(ids)
    sh.start_api("api2")
    end = time.time()
    ids += upload_all(sh, batch, code, per_request=15)  # the client retries the same batch
    row = finish(Row("API kill -9 while storing a 15-file batch", "kill -9 the API mid-batch, restart, client "
                     "retries"), ctx, ids, sh, end)  # fmt: skip
    stray = sum(1 for k in ctx.store.list("documents/") if k.endswith("/manifest.json")) - len(set(ids))
    row.note = f"{staged} staged when killed, {visible} visible; {stray} stray after sweep; batch all-or-nothing"
    row.lost += max(0, stray)
    return row


def scenario_redis(cluster: Cluster, work: Path, docs: int, outage: float) -> Row:
    sh, ctx = scaled(cluster, work, "redis")
    ids = upload_all(sh, scans(docs), CODE.format(3))
    progress_at(ctx, ids, 0.1)
    cluster.stop("redis")
    time.sleep(outage)
    cluster.start("redis")  # no persistence: every message lost
    end = time.time()
    return finish(Row(f"Redis stopped {outage:.0f} s (no persistence)", "redis-server killed, restarted empty"),
                  ctx, ids, sh, end)  # fmt: skip


def scenario_backend(cluster: Cluster, work: Path, docs: int, backend: str, outage: float) -> Row:
    sh, ctx = scaled(cluster, work, backend)
    code = CODE.format(4 if backend == "s3" else 5)
    ids = upload_all(sh, scans(docs), code)
    progress_at(ctx, ids, 0.1)
    cluster.stop(backend)
    statuses: dict[int, int] = {}
    t0 = time.time()
    while time.time() - t0 < outage:  # clients keep calling during the outage
        for url in ("/health/ready", f"/documents/{ids[0]}"):
            try:
                r = httpx.get(sh.url + url, headers=sh.auth, timeout=30)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            except httpx.HTTPError:
                statuses[0] = statuses.get(0, 0) + 1
        try:
            r = sh.upload(scans(1), code, timeout=30)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 202:
                ids += [d["id"] for d in r.json()["documents"]]
        except httpx.HTTPError:
            statuses[0] = statuses.get(0, 0) + 1
        time.sleep(5)
    cluster.start(backend)
    end = time.time()
    what = "S3 (SeaweedFS)" if backend == "s3" else "index (ES API)"
    row = finish(Row(f"{what} stopped {outage:.0f} s", f"{backend} killed, restarted"), ctx, ids, sh, end)
    row.note = "answers during the outage: " + ", ".join(f"{k or 'conn.err'}×{v}" for k, v in sorted(statuses.items()))
    return row


def scenario_recover_race(cluster: Cluster, work: Path, docs: int) -> Row:
    sh, ctx = scaled(cluster, work, "recover")
    ids = upload_all(sh, scans(docs), CODE.format(6))
    requeued = 0
    t0 = time.time()
    while n_done(ctx, ids) < len(ids) and time.time() - t0 < DRAIN_S:
        requeued += len(ctx.recover())  # `sohoa recover` every 2 s while everything is processing
        time.sleep(2)
    row = finish(Row("`sohoa recover` during processing", "recover every 2 s"), ctx, ids, sh, t0)
    row.note = f"{requeued} re-queued by recover (only documents with no job and no live lease)"
    row.recovery_s = row.drain_s = None
    return row


def scenario_embedded_kill(work: Path, docs: int) -> Row:
    folder = work / "embedded"
    folder.mkdir(parents=True, exist_ok=True)
    s = Settings(data_dir=folder / "data", broker_url="memory://", worker_threads=2)
    sh = Sohoa(s, folder)
    LIVE.append(sh)
    sh.start_api()
    ctx = Context(s)
    ids = upload_all(sh, scans(docs), CODE.format(7))
    progress_at(ctx, ids, 0.2)
    sh.kill("api")
    end = time.time()  # restarted at once: its start-up re-queues what the kill left (before it answers)
    sh.start_api("api2")
    return finish(Row("embedded server kill -9 mid-batch", "kill -9 `sohoa serve`, restart"), ctx, ids, sh, end,
                  cut_short(sh), broker=False)  # fmt: skip


def scenario_reindex(cluster: Cluster, work: Path, docs: int) -> Row:
    """Lose the Elasticsearch indices, rebuild from the object store; reports must be identical."""
    from sohoa.domain import parse_period

    sh, ctx = scaled(cluster, work, "reindex")
    ids = upload_all(sh, scans(docs), CODE.format(8))
    from sohoa.domain import DossierRecord

    ctx.registry.upsert_dossiers([DossierRecord(code=CODE.format(8), procedure="1.1", received="2026-12-01",
                                                unit="UBND xã A")], source="bench.csv")  # fmt: skip
    wait_for(lambda: n_done(ctx, ids) == len(ids), DRAIN_S, interval=2, what="drain")
    p = parse_period("year:2026")
    before = ctx.registry.rate_report(p).to_dict()
    sh.stop_all()
    ctx.index.drop()  # type: ignore[attr-defined]
    t0 = time.time()
    ctx2 = Context(ctx.settings)
    n = ctx2.reindex()
    took = time.time() - t0
    same = ctx2.registry.rate_report(p).to_dict() == before
    row = Row("index deleted, `sohoa reindex`", "ES indices dropped, rebuilt from the store")
    v = verdict(ctx2, ids, sh)
    row.accepted, row.done, row.lost, row.disagree = len(ids), v.done, len(v.lost), len(v.disagree)
    row.recovery_s = row.drain_s = round(took, 1)
    row.note = f"{n} documents and the registry rebuilt in {took:.1f} s; reports identical: {same}"
    return row


def _quiet(fn):  # noqa: ANN001, ANN202
    try:
        return fn()
    except httpx.HTTPError as e:
        return e


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--outage", type=float, default=120.0, help="S3 and index outage, seconds")
    ap.add_argument("--redis-outage", type=float, default=15.0)
    ap.add_argument("--only", default="", help="comma-separated: worker,api,redis,s3,es,recover,embedded,reindex")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sohoa-bench-faults-"))
    only = set(filter(None, args.only.split(",")))
    cluster = Cluster(work / "cluster")
    rows: list[Row] = []
    plan = [
        ("worker", lambda: scenario_worker_kill(cluster, work, args.docs)),
        ("api", lambda: scenario_api_kill(cluster, work, args.docs)),
        ("redis", lambda: scenario_redis(cluster, work, args.docs, args.redis_outage)),
        ("s3", lambda: scenario_backend(cluster, work, args.docs, "s3", args.outage)),
        ("es", lambda: scenario_backend(cluster, work, args.docs, "es", args.outage)),
        ("recover", lambda: scenario_recover_race(cluster, work, args.docs)),
        ("embedded", lambda: scenario_embedded_kill(work, args.docs)),
        ("reindex", lambda: scenario_reindex(cluster, work, args.docs)),
    ]
    try:
        for key, run in plan:
            if only and key not in only:
                continue
            t = time.time()
            print(f"== {key} …", flush=True)
            try:
                row = run()
            except Exception as e:  # noqa: BLE001 - report and go on
                row = Row(key, "", note=f"scenario crashed: {type(e).__name__}: {e}")
            print(f"   {row}  ({time.time() - t:.0f} s)", flush=True)
            rows.append(row)
            for sh in list(LIVE):
                sh.stop_all()
                LIVE.remove(sh)
    finally:
        for sh in LIVE:
            sh.stop_all()
        cluster.close()
    head = ["scenario", "accepted", "done", "failed", "lost", "duplicated", "disagree", "recovery s", "drain s"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        cells = [r.scenario, r.accepted, r.done, r.failed, r.lost, r.duplicated, r.disagree,
                 "–" if r.recovery_s is None else r.recovery_s, "–" if r.drain_s is None else r.drain_s]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print()
    for r in rows:
        if r.note or r.temp_left or r.zombies:
            print(f"* {r.scenario}: {r.note}" + (f"; temp folders left {r.temp_left}" if r.temp_left else "")
                  + (f"; zombies {r.zombies}" if r.zombies else ""))  # fmt: skip
    if args.keep:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
