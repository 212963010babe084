"""Wiring: one object holding the settings and the backends (store, index + registry, leases, queue).

The object store is the system of record; the index mirrors it. Writes keep one invariant that lets the
reconciler find and heal every difference: *when the store says a document is unfinished, the index says so
too*. So a manifest going to an unfinished status is written to the index first, then to the store; going
to done/failed, to the store first, then to the index (see :meth:`Context.save_manifest`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from index import IndexBackend, open_index
from sohoa.domain import DigitizedRules
from sohoa.models import DocRecord, Manifest, PageText, Status
from sohoa.registry import Registry, RegistryJournal
from storage import NotFound, ObjectStore, open_store

if TYPE_CHECKING:
    from sohoa.leases import LeaseStore
    from sohoa.settings import Settings
    from workers.queue import JobQueue

log = logging.getLogger("sohoa")

ProgressFn = Callable[[int, int], None]
DOC_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # ASCII only: "s½".isalnum() is True


def doc_prefix(doc_id: str) -> str:
    return f"documents/{doc_id}/"


def manifest_key(doc_id: str) -> str:
    return f"documents/{doc_id}/manifest.json"


# Outputs of page N (``documents/{id}/out/page-NNNN.{ext}``): ``txt`` (corrected text), ``raw.txt`` (Tesseract's),
# ``hocr``, ``preview.jpg`` (the cleaned page at screen resolution, ≤ PREVIEW_LONG_SIDE px; the full-resolution
# image is in the archival ``document.pdf`` only) and ``thumb.jpg`` (made from the preview when first asked).
# Documents processed before previews existed have ``jpg`` (the full-resolution cleaned page) instead.
PREVIEW = "preview.jpg"
LEGACY_IMAGE = "jpg"
PREVIEW_LONG_SIDE = 1600


def page_key(doc_id: str, number: int, ext: str) -> str:
    return f"documents/{doc_id}/out/page-{number:04d}.{ext}"


def output_key(doc_id: str, name: str) -> str:
    return f"documents/{doc_id}/out/{name}"


def lease_name(doc_id: str) -> str:
    return f"doc:{doc_id}"


class Context:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore | None = None,
        index: IndexBackend | None = None,
        queue: JobQueue | None = None,
        leases: LeaseStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings.storage_url)
        self.index = index or open_index(settings.index_url, settings.es_index_prefix)
        self.index.rules = DigitizedRules(settings.digitized_min_confidence, settings.digitized_require_signature)
        self.index.journal = RegistryJournal(self.store)
        self._queue = queue
        self._leases = leases

    @property
    def registry(self) -> Registry:
        """The dossier registry and rate reports (the same backend as the index, its own interface)."""
        return self.index

    @property
    def queue(self) -> JobQueue:
        if self._queue is None:
            from workers.queue import JobQueue

            self._queue = JobQueue(self)
        return self._queue

    @property
    def leases(self) -> LeaseStore:
        if self._leases is None:
            from index.leases import open_leases

            self._leases = open_leases(self.settings.index_url, self.settings.es_index_prefix)
        return self._leases

    # -- manifests (the system of record) ------------------------------------------------------
    def load_manifest(self, doc_id: str) -> Manifest:
        if not DOC_ID.fullmatch(doc_id or ""):
            raise NotFound(doc_id)
        return Manifest.from_json(self.store.get_bytes(manifest_key(doc_id)))

    def put_manifest(self, m: Manifest) -> None:
        """Write the manifest to the store only (a staged upload, not visible in the index yet)."""
        self.store.put_bytes(manifest_key(m.id), m.to_json(), "application/json")

    def save_manifest(self, m: Manifest, pages: list[PageText] | None = None) -> None:
        """Write the manifest to the store and mirror it (with *pages*, when given) in the index, in the order
        that keeps "unfinished in the store ⇒ unfinished in the index" (see the module docstring)."""
        rec = DocRecord.from_manifest(m)

        def to_index() -> None:
            if pages is not None:
                self.index.replace_pages(rec, pages)
            else:
                self.index.upsert_document(rec)

        if Status(m.status).terminal:
            self.put_manifest(m)
            to_index()
        else:
            to_index()
            self.put_manifest(m)

    def manifest_ids(self) -> list[str]:
        return [k.split("/")[1] for k in self.store.list("documents/") if k.endswith("/manifest.json")]

    def stored_pages(self, m: Manifest) -> list[PageText]:
        return [
            PageText(p.number, self.store.get_bytes(page_key(m.id, p.number, "txt")).decode("utf-8")) for p in m.pages
        ]

    def heal_index(self, m: Manifest) -> bool:
        """Make the index agree with the stored manifest *m*; True if it had to change."""
        cur = self.index.get_document(m.id)
        if m.deleted:  # soft-deleted: kept in storage, out of the index
            if cur is None:
                return False
            self.index.delete_document(m.id)
            return True
        rec = DocRecord.from_manifest(m)
        if m.status == Status.DONE.value:
            if cur is not None and cur == rec and self.index.page_count(m.id) == len(m.pages):
                return False
            self.index.replace_pages(rec, self.stored_pages(m))
            return True
        if cur == rec:
            return False
        if m.status == Status.FAILED.value:
            self.index.replace_pages(rec, [])
        else:
            self.index.upsert_document(rec)
        return True

    # -- recovery and rebuild ----------------------------------------------------------------
    def recover(self) -> list[str]:
        """Re-queue every unfinished document that has no job and no live lease (after a crash or a lost
        message); the same pass as the background reconciler, without its waiting (``sohoa recover``)."""
        from workers.reconcile import Reconciler

        return Reconciler(self).run_once(immediate=True).requeued

    def reindex(self, progress: ProgressFn | None = None) -> int:
        """Rebuild the whole index from object storage: documents, pages, the registry and its counters.
        Accounts (``auth/``) and the audit log (``audit/``) live only in the store and are not touched."""
        from sohoa.batches import Batches

        journal = RegistryJournal(self.store)
        if not journal.has_any():  # a registry imported before imports were stored: keep it
            rows = [rec for rec, _ in self.index.registry()]
            if rows:
                journal.record(rows, source="index (imported before sohoa stored registry imports)")
        staging = Batches(self).staging_doc_ids()
        ids = [i for i in self.manifest_ids() if i not in staging]
        self.index.clear()
        self.index.clear_registry()
        for i, doc_id in enumerate(ids, 1):
            m = self.load_manifest(doc_id)
            if m.deleted:  # soft-deleted: kept in storage, out of the index
                continue
            rec = DocRecord.from_manifest(m)
            if m.status == Status.DONE.value:
                self.index.replace_pages(rec, self.stored_pages(m))
            else:
                self.index.upsert_document(rec)
            if progress:
                progress(i, len(ids))
        journal.replay(self.index)
        return len(ids)

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()
        if self._leases is not None:
            self._leases.close()
        self.index.close()
        self.store.close()
