"""Upload batches: all or nothing, even if the process storing them dies.

An upload is stored in two phases, with one object as the commit point:

1. **stage** — ``batches/{id}.json`` is written first (state ``staging``, its owner process and the
   documents it will hold), then every original and its manifest (status ``received``, not indexed: no
   listing, search or report sees it);
2. **commit** — the batch record is rewritten with state ``committed``: one atomic object write;
3. **finalize** — every document becomes ``queued`` (index, then store), its job is sent, and the batch
   record is deleted.

A batch still ``staging`` whose owner is gone (a dead process on this host, or older than
``SOHOA_BATCH_STALE_S``) is swept: its objects are deleted, as if it never arrived. A ``committed`` batch is
finalized by whoever finds it (the uploader, the reconciler, a retry of the same upload): nothing committed is
ever lost. A broker outage after the commit only delays the jobs (the reconciler sends them).
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sohoa.errors import TransientError
from sohoa.leases import process_owner
from sohoa.models import Manifest, Status
from sohoa.tempfiles import pid_alive
from storage import NotFound

if TYPE_CHECKING:
    from sohoa.context import Context

log = logging.getLogger("sohoa.batches")

PREFIX = "batches/"
FINALIZE_GRACE_S = 30.0  # a committed batch is finished by others only when its uploader is dead or this late
STAGING, COMMITTED = "staging", "committed"


@dataclass
class BatchItem:
    doc_id: str
    sha256: str
    dossier_code: str
    kind: str


@dataclass
class BatchRecord:
    id: str
    state: str
    owner: str
    created: float
    items: list[BatchItem] = field(default_factory=list)
    committed: float = 0.0  # when it was committed (unix time)

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.id}.json"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> BatchRecord:
        d: dict[str, Any] = json.loads(data)
        d["items"] = [BatchItem(**i) for i in d.get("items", [])]
        return cls(**d)

    def owner_dead(self) -> bool:
        """The process that stored it is known to be dead (a process of this host that no longer exists)."""
        parts = self.owner.split(":")
        if len(parts) >= 2 and parts[0] == socket.gethostname() and parts[1].isdigit():
            return not pid_alive(int(parts[1]))
        return False

    def owner_gone(self, stale_s: float) -> bool:
        """The process that staged it is dead (same host) or it has been staging longer than *stale_s*."""
        return time.time() - self.created > stale_s or self.owner_dead()


class Batches:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    # -- the uploader's side -----------------------------------------------------------------------
    def begin(self, manifests: list[Manifest]) -> BatchRecord:
        rec = BatchRecord(
            id=uuid.uuid4().hex,
            state=STAGING,
            owner=process_owner(),
            created=time.time(),
            items=[BatchItem(m.id, m.sha256, m.dossier_code, m.kind) for m in manifests],
        )
        for m in manifests:
            m.batch = rec.id
        self.store.put_bytes(rec.key, rec.to_json(), "application/json")
        return rec

    def commit(self, rec: BatchRecord) -> None:
        rec.state, rec.committed = COMMITTED, time.time()
        self.store.put_bytes(rec.key, rec.to_json(), "application/json")

    def abort(self, rec: BatchRecord) -> None:
        """Remove everything a batch staged (best effort: what is left is swept later)."""
        try:
            for item in rec.items:
                self.store.delete_prefix(f"documents/{item.doc_id}/")
            self.store.delete(rec.key)
        except Exception as e:  # noqa: BLE001 - already failing; the sweeper finishes the job
            log.warning("batch %s not fully removed (%s); it will be swept", rec.id, e)

    def finalize(self, rec: BatchRecord, known: dict[str, Manifest] | None = None) -> list[str]:
        """Queue every document of a committed batch and forget the batch; returns the ids sent to the broker.

        Raises :class:`TransientError` when the store or the index is down (the batch stays committed and is
        finalized later); a broker outage only leaves the jobs to the reconciler."""
        sent: list[str] = []
        for item in rec.items:
            m = (known or {}).get(item.doc_id)
            if m is None:
                try:
                    m = self.ctx.load_manifest(item.doc_id)
                except NotFound:
                    continue
            if m.status == Status.RECEIVED.value:
                m.set_status(Status.QUEUED)
                self.ctx.save_manifest(m)
            elif not Status(m.status).terminal:
                self.ctx.heal_index(m)
            if m.status == Status.QUEUED.value:
                try:
                    self.ctx.queue.enqueue(m.id)
                    sent.append(m.id)
                except TransientError as e:
                    log.warning("document %s committed but not queued (%s): the reconciler will queue it", m.id, e)
        self.store.delete(rec.key)
        return sent

    # -- everyone's side ---------------------------------------------------------------------------
    def records(self) -> list[BatchRecord]:
        out = []
        for key in self.store.list(PREFIX):
            try:
                out.append(BatchRecord.from_json(self.store.get_bytes(key)))
            except NotFound:
                continue  # finalized meanwhile
            except (ValueError, TypeError, KeyError) as e:
                log.warning("unreadable batch record %s (%s): left alone", key, e)
        return out

    def staging_doc_ids(self) -> set[str]:
        return {i.doc_id for r in self.records() if r.state == STAGING for i in r.items}

    def sweep(self, stale_s: float | None = None) -> tuple[int, int]:
        """Remove staged batches whose owner is gone; finalize committed ones. Returns (removed, finalized)."""
        stale = self.ctx.settings.batch_stale_s if stale_s is None else stale_s
        removed = finalized = 0
        for rec in self.records():
            if rec.state == COMMITTED:
                if not rec.owner_dead() and time.time() - rec.committed < FINALIZE_GRACE_S:
                    continue  # its uploader is finishing it right now
                try:
                    self.finalize(rec)
                    finalized += 1
                except TransientError as e:
                    log.warning("batch %s not finalized yet (%s)", rec.id, e)
            elif rec.owner_gone(stale):
                log.warning("removing upload batch %s staged by %s at %s: it was never committed", rec.id,
                            rec.owner, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(rec.created)))  # fmt: skip
                self.abort(rec)
                removed += 1
        return removed, finalized
