"""Accept a batch of uploads: validate all, store originals and manifests durably, queue jobs."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from ingest.validate import InputError, validate_file, validate_metadata
from sohoa.context import Context, doc_prefix
from sohoa.models import Manifest, Status, utcnow
from sohoa.text import clean_label, safe_filename

log = logging.getLogger("sohoa.ingest")


@dataclass
class UploadItem:
    path: Path  # a local file (an HTTP upload is spooled to disk first)
    filename: str
    dossier_code: str
    kind: str
    component: str = ""
    unit: str = ""
    uploaded_by: str = ""  # user name, token:<id> or cli:<os user>


@dataclass
class Accepted:
    manifest: Manifest
    duplicate: bool = False


class BatchError(InputError):
    def __init__(self, errors: list[InputError]) -> None:
        status = max(e.status for e in errors)
        super().__init__("; ".join(str(e) for e in errors), status=status)
        self.errors = errors


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def _prepare(ctx: Context, item: UploadItem) -> Manifest:
    try:
        code, kind, comp, unit = validate_metadata(
            ctx.settings, item.dossier_code, item.kind, item.component, item.unit
        )
    except InputError as e:
        e.filename = safe_filename(item.filename)
        raise
    info = validate_file(ctx.settings, item.path, item.filename)
    doc_id = uuid.uuid4().hex
    return Manifest(
        id=doc_id,
        dossier_code=code,
        kind=kind,
        unit=clean_label(unit),
        component=clean_label(comp),
        filename=safe_filename(item.filename),
        media_type=info.media_type,
        size=info.size,
        sha256=_sha256(item.path),
        original_key=f"{doc_prefix(doc_id)}original{info.extension}",
        received_at=utcnow(),
        declared_pages=info.pages,
        warnings=info.warnings,
        uploaded_by=item.uploaded_by,
    )


def _store_one(ctx: Context, item: UploadItem, m: Manifest) -> None:
    try:
        ctx.store.put_file(m.original_key, item.path, m.media_type)
        m.set_status(Status.RECEIVED)
        ctx.save_manifest(m)
        m.set_status(Status.QUEUED)
        ctx.save_manifest(m)
        ctx.queue.enqueue(m.id)
    except BaseException:
        # leave nothing half-written: the upload was not accepted
        try:
            ctx.store.delete_prefix(doc_prefix(m.id))
            ctx.index.delete_document(m.id)
        except Exception:  # pragma: no cover - best effort while already failing
            log.exception("cleanup after failed ingest of %s", m.id)
        raise


def accept_batch(ctx: Context, items: list[UploadItem], all_or_nothing: bool = True) -> list[Accepted | InputError]:
    """Validate every item, then store and queue the valid ones.

    With *all_or_nothing* (the HTTP API), one invalid file rejects the whole batch with
    :class:`BatchError` and nothing is stored. Otherwise (CLI folders), invalid files are
    returned as errors in their place and the others are accepted.
    A file identical (SHA-256) to a document already stored for the same dossier and kind is
    not stored twice: the existing document is returned with ``duplicate=True``.
    """
    prepared: list[Manifest | InputError] = []
    for item in items:
        try:
            prepared.append(_prepare(ctx, item))
        except InputError as e:
            prepared.append(e)
    errors = [p for p in prepared if isinstance(p, InputError)]
    if errors and all_or_nothing:
        raise BatchError(errors)
    out: list[Accepted | InputError] = []
    for item, p in zip(items, prepared, strict=True):
        if isinstance(p, InputError):
            out.append(p)
            continue
        same = [
            d
            for d in ctx.index.list_documents(dossier_code=p.dossier_code, sha256=p.sha256)
            if d.kind == p.kind and d.status != Status.FAILED.value
        ]
        if same:
            out.append(Accepted(ctx.load_manifest(same[0].id), duplicate=True))
            continue
        _store_one(ctx, item, p)
        log.info(
            "accepted %s",
            p.filename,
            extra={"doc_id": p.id, "dossier": p.dossier_code, "kind": p.kind, "pages": p.declared_pages},
        )
        out.append(Accepted(p))
    return out
