"""Wiring: one object holding the settings and the three backends (store, index, queue)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from index import SearchIndex, open_index
from sohoa.models import DocRecord, Manifest, PageText, Status
from storage import NotFound, ObjectStore, open_store

if TYPE_CHECKING:
    from sohoa.settings import Settings
    from workers.queue import JobQueue

log = logging.getLogger("sohoa")

ProgressFn = Callable[[int, int], None]
DOC_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # ASCII only: "s½".isalnum() is True


def doc_prefix(doc_id: str) -> str:
    return f"documents/{doc_id}/"


def manifest_key(doc_id: str) -> str:
    return f"documents/{doc_id}/manifest.json"


def page_key(doc_id: str, number: int, ext: str) -> str:
    return f"documents/{doc_id}/out/page-{number:04d}.{ext}"


def output_key(doc_id: str, name: str) -> str:
    return f"documents/{doc_id}/out/{name}"


class Context:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore | None = None,
        index: SearchIndex | None = None,
        queue: JobQueue | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings.storage_url)
        self.index = index or open_index(settings.index_url, settings.es_index_prefix)
        self.index.digitized_min_confidence = settings.digitized_min_confidence
        self.index.digitized_require_signature = settings.digitized_require_signature
        self._queue = queue

    @property
    def queue(self) -> JobQueue:
        if self._queue is None:
            from workers.queue import JobQueue

            self._queue = JobQueue(self)
        return self._queue

    # -- manifests (the system of record) ------------------------------------------------------
    def load_manifest(self, doc_id: str) -> Manifest:
        if not DOC_ID.fullmatch(doc_id or ""):
            raise NotFound(doc_id)
        return Manifest.from_json(self.store.get_bytes(manifest_key(doc_id)))

    def save_manifest(self, m: Manifest) -> None:
        self.store.put_bytes(manifest_key(m.id), m.to_json(), "application/json")
        self.index.upsert_document(DocRecord.from_manifest(m))

    def manifest_ids(self) -> list[str]:
        return [k.split("/")[1] for k in self.store.list("documents/") if k.endswith("/manifest.json")]

    # -- recovery and rebuild ----------------------------------------------------------------
    def recover(self) -> list[str]:
        """Re-queue every document that is not done/failed (after a crash or a lost message)."""
        ids = []
        for doc in self.index.list_documents(
            statuses=[Status.RECEIVED.value, Status.QUEUED.value, Status.PROCESSING.value], limit=1_000_000
        ):
            try:
                m = self.load_manifest(doc.id)
            except NotFound:
                log.warning("index lists %s but its manifest is gone; dropping it", doc.id)
                self.index.delete_document(doc.id)
                continue
            if Status(m.status).terminal or m.deleted:
                if not m.deleted:
                    self.index.upsert_document(DocRecord.from_manifest(m))
                continue
            m.set_status(Status.QUEUED)
            self.save_manifest(m)
            self.queue.enqueue(m.id)
            ids.append(m.id)
            log.info("re-queued", extra={"doc_id": m.id, "dossier": m.dossier_code})
        return ids

    def reindex(self, progress: ProgressFn | None = None) -> int:
        """Rebuild the whole index from the manifests and page texts in object storage."""
        ids = self.manifest_ids()
        self.index.clear()
        for i, doc_id in enumerate(ids, 1):
            m = self.load_manifest(doc_id)
            if m.deleted:  # soft-deleted: kept in storage, out of the index
                continue
            rec = DocRecord.from_manifest(m)
            if m.status == Status.DONE.value:
                pages = [
                    PageText(p.number, self.store.get_bytes(page_key(doc_id, p.number, "txt")).decode("utf-8"))
                    for p in m.pages
                ]
                self.index.replace_pages(rec, pages)
            else:
                self.index.upsert_document(rec)
            if progress:
                progress(i, len(ids))
        self.index.rebuild_flags()
        return len(ids)

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()
        self.index.close()
        self.store.close()
