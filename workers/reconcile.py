"""The reconciler: finds documents that nothing will move any more and moves them, replacing guesses.

It runs by itself in every ``sohoa serve`` and ``sohoa worker`` process; one is active at a time (it holds
the lease ``reconciler``, renewed each pass; another process takes over when it dies). ``sohoa recover``
runs the same pass once. A pass:

1. sweeps upload batches (:mod:`sohoa.batches`): a staged batch whose process is gone is removed, a
   committed one is finished;
2. looks at every document the index lists as unfinished (the index is never "finished" when the store is
   not, see :mod:`sohoa.context`) and, for each, decides from the store's manifest, its lease and the broker:

   * finished in the store → the index is brought in line;
   * staged in a batch still being uploaded → left alone;
   * lease alive → left alone, whatever its status: **a live lease is never touched**;
   * a message waiting, delayed or in flight in the broker → left alone;
   * otherwise (lease expired or its process dead, no message: the worker was killed, the broker lost its
     messages, the API died between commit and queueing) → set ``queued`` and sent again.

The background pass only re-queues what it found stranded on two consecutive passes (a message may be on its
way); ``sohoa recover`` does not wait for the second look. Re-queuing can never double-process: a worker
processes a document only while holding its lease.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from sohoa.batches import STAGING, Batches
from sohoa.context import Context, lease_name
from sohoa.errors import TransientError
from sohoa.leases import Lease, holder_dead, process_owner
from sohoa.models import Status
from storage import NotFound

log = logging.getLogger("sohoa.reconciler")

LEADER = "reconciler"
UNFINISHED = [Status.RECEIVED.value, Status.QUEUED.value, Status.PROCESSING.value]
MIN_AGE_S = 2.0  # a status this fresh may still be followed by its message: never judged stranded


@dataclass
class PassResult:
    requeued: list[str] = field(default_factory=list)
    healed: list[str] = field(default_factory=list)
    batches_removed: int = 0
    batches_finalized: int = 0
    looked_at: int = 0
    error: str = ""


def _age_s(iso: str) -> float:
    try:
        return time.time() - datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 1e9


class Reconciler:
    def __init__(self, ctx: Context, interval_s: float | None = None) -> None:
        self.ctx = ctx
        self.interval = interval_s if interval_s is not None else ctx.settings.reconcile_interval_s
        self.owner = process_owner()
        self._suspects: dict[str, tuple[str, int]] = {}  # doc id -> (status, history length) seen stranded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.leader = False

    # -- one pass --------------------------------------------------------------------------------------
    def run_once(self, immediate: bool = False) -> PassResult:
        res = PassResult()
        ctx = self.ctx
        batches = Batches(ctx)
        res.batches_removed, res.batches_finalized = batches.sweep()
        staging = {i.doc_id for r in batches.records() if r.state == STAGING for i in r.items}
        docs = ctx.index.list_documents(statuses=UNFINISHED, limit=10_000_000)
        res.looked_at = len(docs)
        if not docs:
            self._suspects.clear()
            return res
        leases = ctx.leases.get_many([lease_name(d.id) for d in docs])
        try:
            pending = ctx.queue.pending()
        except TransientError as e:
            log.warning("broker unavailable (%s): nothing can be re-queued this pass", e)
            res.error = str(e)
            return res
        if pending is not None and ctx.queue.in_process and self._another_server():
            pending = None  # its in-process queue is another process's memory: judge by age only
        suspects: dict[str, tuple[str, int]] = {}
        for d in docs:
            lease = leases.get(lease_name(d.id))
            if lease is not None and self._alive(lease):
                continue
            if pending is not None and d.id in pending:
                continue
            try:
                self._look(d.id, lease, staging, pending is None, immediate, suspects, res)
            except TransientError as e:
                log.warning("document %s not reconciled this pass: %s", d.id, e)
        self._suspects = suspects
        if res.requeued or res.healed or res.batches_removed or res.batches_finalized:
            log.info("reconciled: %d re-queued, %d index entries healed, %d staged batch(es) removed, "
                     "%d committed batch(es) finished", len(res.requeued), len(res.healed), res.batches_removed,
                     res.batches_finalized, extra={"event": "reconcile"})  # fmt: skip
        return res

    def _another_server(self) -> bool:
        """Another live process is the active reconciler (e.g. ``sohoa recover`` beside a running server)."""
        leader = self.ctx.leases.get(LEADER)
        return leader is not None and leader.owner != self.owner and self._alive(leader)

    @staticmethod
    def _alive(lease: Lease) -> bool:
        return lease.alive() and not holder_dead(lease)

    def _look(
        self,
        doc_id: str,
        lease: Lease | None,
        staging: set[str],
        blind: bool,
        immediate: bool,
        suspects: dict[str, tuple[str, int]],
        res: PassResult,
    ) -> None:
        ctx = self.ctx
        try:
            m = ctx.load_manifest(doc_id)
        except NotFound:
            if doc_id not in staging:
                log.warning("index lists %s but its manifest is gone; dropping it", doc_id)
                ctx.index.delete_document(doc_id)
                res.healed.append(doc_id)
            return
        if Status(m.status).terminal or m.deleted:
            if ctx.heal_index(m):
                res.healed.append(doc_id)
            return
        if doc_id in staging:
            return
        age = _age_s(m.status_since)
        if age < MIN_AGE_S or (blind and age < ctx.settings.queued_stale_s):
            return
        seen = (m.status, len(m.history))
        known_dead = m.status == Status.PROCESSING.value and (lease is None or not self._alive(lease))
        if not immediate and not known_dead and self._suspects.get(doc_id) != seen:
            suspects[doc_id] = seen  # stranded now; re-queued if still so on the next pass
            return
        why = {
            Status.PROCESSING.value: f"the lease of {lease.owner if lease else '(none)'} ended without a result",
            Status.RECEIVED.value: "stored but never queued",
        }.get(m.status, "its job was lost")
        m.set_status(Status.QUEUED, f"re-queued by the reconciler: {why}")
        ctx.save_manifest(m)
        ctx.queue.enqueue(m.id)
        res.requeued.append(m.id)
        log.warning("re-queued: %s", why, extra={"doc_id": m.id, "dossier": m.dossier_code, "event": "requeue"})

    # -- in the background, one active at a time ------------------------------------------------------
    def start(self) -> Reconciler:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="sohoa-reconciler", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        ttl = max(self.interval * 3, 10.0)
        while not self._stop.is_set():
            try:
                lease = self.ctx.leases.acquire(LEADER, self.owner, ttl, dead=holder_dead)
                was = self.leader
                self.leader = lease is not None
                if self.leader and not was:
                    log.info("this process is now the active reconciler", extra={"event": "reconcile.leader"})
                if self.leader:
                    self.run_once()
                    self.passes += 1
            except TransientError as e:
                log.warning("reconciler pass skipped: %s", e)
            except Exception:  # noqa: BLE001 - never let the loop die
                log.exception("reconciler pass failed")
            self._stop.wait(self.interval)
        if self.leader:
            with contextlib.suppress(Exception):  # it expires by itself
                self.ctx.leases.release(LEADER, self.owner)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
