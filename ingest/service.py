"""Accept a batch of uploads: validate all, store originals and manifests durably, queue jobs.

A batch is all or nothing (see :mod:`sohoa.batches`): it is staged, then committed by one object write, then
queued. If this process dies while staging, nothing of the batch is ever visible and the staged objects are
swept; once committed, the batch completes even if this process dies. Sending the same batch again is
idempotent: files already stored are returned as duplicates, and a duplicate whose job was lost is queued.

Backend outages raise :class:`sohoa.errors.TransientError` (the API answers 503 with ``Retry-After``) before
anything is committed: the broker is checked before staging; storage and index failures abort the batch.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.dedupe import dossier_locks
from ingest.validate import InputError, validate_file, validate_metadata
from sohoa.batches import COMMITTED, Batches, BatchRecord
from sohoa.context import Context, doc_prefix
from sohoa.errors import TransientError
from sohoa.models import Manifest, Status, utcnow
from sohoa.text import clean_label, safe_filename
from storage import NotFound

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
    notes: list[str] = field(default_factory=list)  # shown with the document's warnings (e.g. how it was split)
    keep_duplicate: bool = False  # the clerk keeps it as a new version even if the same content is stored


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
        warnings=[*info.warnings, *item.notes],
        uploaded_by=item.uploaded_by,
    )


class _Pages:
    """The upload's page hashes (with their turns) and, when a hash matches, its pages looked at closely."""

    def __init__(self, path: Path, media_type: str) -> None:
        from ingest.dedupe import page_hashes

        self.path, self.media_type = path, media_type
        self.hashes = page_hashes(path, media_type)
        self._images: dict[int, object] = {}

    def image(self, i: int) -> object:  # np.ndarray
        from ingest.dedupe import page_image

        if i not in self._images:
            self._images[i] = page_image(self.path, self.media_type, i)
        return self._images[i]


def _stored_image(ctx: Context, m: Manifest, i: int, cache: dict[tuple[str, int], object]) -> object:
    """Page *i* of a stored document's original, looked at closely (fetched once per upload)."""
    from ingest.dedupe import page_image
    from sohoa.tempfiles import tempdir

    if (m.id, -1) not in cache:
        cache[(m.id, -1)] = ctx.store.get_bytes(m.original_key)
    if (m.id, i) not in cache:
        data = cache[(m.id, -1)]
        assert isinstance(data, bytes)
        with tempdir("dedupe") as tmp:
            path = Path(tmp) / "original"
            path.write_bytes(data)
            cache[(m.id, i)] = page_image(path, m.media_type, i)
    return cache[(m.id, i)]


def _same_content(
    ctx: Context, p: Manifest, pages: _Pages, cache: dict[tuple[str, int], object], seen: set[str]
) -> Manifest | None:
    """A document of the same dossier and kind with the same pages (re-encoded, turned); flags on *p* the
    pages that look like pages of the dossier's other documents (``similar_pages`` and a warning).
    Documents whose id is in *seen* were looked at already and are skipped; the others are added to it."""
    from ingest.dedupe import MATCH_BITS, SAME_MISS, distance, ink_difference

    if not pages.hashes:
        return None
    found: Manifest | None = None
    for d in ctx.index.list_documents(dossier_code=p.dossier_code):
        if d.status == Status.FAILED.value or d.id == p.id or d.id in seen:
            continue
        seen.add(d.id)
        try:
            old = ctx.load_manifest(d.id)
        except NotFound:
            continue
        if old.deleted or not old.page_hashes:
            continue
        matched: dict[int, tuple[int, int]] = {}  # our page → (its page, turn)
        for i, turns in enumerate(pages.hashes):
            for j, h in enumerate(old.page_hashes):
                dist, turn = min((distance(t, h), k) for k, t in enumerate(turns))
                if dist > MATCH_BITS:
                    continue
                try:
                    ours, theirs = pages.image(i), _stored_image(ctx, old, j, cache)
                except Exception as e:  # noqa: BLE001 - the close look is an aid: no look, no match
                    log.warning("duplicate check: pages not compared (%s)", e)
                    continue
                if ink_difference(ours, theirs, turn) <= SAME_MISS:  # type: ignore[arg-type]
                    matched[i] = (j, turn)
                    break
        if not matched:
            continue
        whole = len(matched) == len(pages.hashes) == len(old.page_hashes) and len({t for _, t in matched.values()}) == 1
        if whole and old.kind == p.kind and found is None:
            found = old
            continue
        for i, (j, _) in sorted(matched.items()):
            p.similar_pages.append({"page": i + 1, "document": old.id, "other_page": j + 1})
            p.warnings.append(f"trang {i + 1} giống trang {j + 1} của tài liệu {old.filename} ({old.id}): "
                              "có thể trùng (near-duplicate page)")  # fmt: skip
    return found


def _identity(m: Manifest) -> tuple[str, str, str]:
    return m.dossier_code, m.kind, m.sha256


def _existing(ctx: Context, batches: Batches, p: Manifest, committed: list[BatchRecord]) -> Manifest | None:
    """A document already stored with the same file for the same dossier and kind (not failed)."""
    same = [
        d
        for d in ctx.index.list_documents(dossier_code=p.dossier_code, sha256=p.sha256)
        if d.kind == p.kind and d.status != Status.FAILED.value
    ]
    for d in same:
        try:
            return ctx.load_manifest(d.id)
        except NotFound:
            continue
    for rec in committed:  # committed by an upload that died before finishing it
        for item in rec.items:
            if (item.dossier_code, item.kind, item.sha256) == _identity(p):
                batches.finalize(rec)
                try:
                    return ctx.load_manifest(item.doc_id)
                except NotFound:
                    return None
    return None


def ensure_queued(ctx: Context, m: Manifest, pending: set[str] | None) -> None:
    """A stored, unfinished document whose job was lost gets one (a retried upload of the same file).
    *pending*: the documents the broker holds a message for (None: it cannot tell)."""
    if Status(m.status).terminal or m.status == Status.PROCESSING.value or m.deleted:
        return  # done, failed, or held by a worker (its lease guards it; the reconciler watches it)
    if pending is not None and m.id in pending:
        return
    if m.status == Status.RECEIVED.value:
        m.set_status(Status.QUEUED)
        ctx.save_manifest(m)
    ctx.queue.enqueue(m.id)
    log.info("re-queued the duplicate of a retried upload", extra={"doc_id": m.id, "dossier": m.dossier_code})


def accept_batch(ctx: Context, items: list[UploadItem], all_or_nothing: bool = True) -> list[Accepted | InputError]:
    """Validate every item, then store and queue the valid ones as one batch.

    With *all_or_nothing* (the HTTP API), one invalid file rejects the whole batch with
    :class:`BatchError` and nothing is stored. Otherwise (CLI folders), invalid files are
    returned as errors in their place and the others are accepted.
    A file identical (SHA-256) to a document already stored for the same dossier and kind is
    not stored twice: the existing document is returned with ``duplicate=True`` (and queued if its job
    was lost). So is a file with the same pages as a document of the same dossier and kind (a re-encoded
    or turned copy of the same scan: :mod:`ingest.dedupe`), unless the item says ``keep_duplicate`` (then
    it is stored with ``duplicate_of``). Pages that look like pages of another document of the dossier
    are listed in ``similar_pages`` with a warning.
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

    # the slow part first, without the dossier locks: each page's hash, and the look at the dossier's documents
    # stored so far; under the locks only the documents stored since then are looked at
    first_look = _FirstLook()
    batches = Batches(ctx)
    for n, (item, p) in enumerate(zip(items, prepared, strict=True)):
        if isinstance(p, Manifest):
            first_look.run(ctx, batches, n, item, p)
    codes = {p.dossier_code for p in prepared if isinstance(p, Manifest)}
    with dossier_locks(ctx, codes) as still_held:  # check, then store: one upload of a dossier at a time
        out, new = _check_and_store(ctx, items, prepared, first_look, errors, still_held)
    fresh = iter(m for _, m in new)
    result: list[Accepted | InputError] = []
    for r in out:
        if r is None:
            m = next(fresh)
            extra = {"doc_id": m.id, "dossier": m.dossier_code, "kind": m.kind, "pages": m.declared_pages}
            log.info("accepted %s", m.filename, extra=extra)
            result.append(Accepted(m))
        else:
            result.append(r)
    return result


class _FirstLook:
    """What an upload finds without the dossier lock, per item: the stored document it repeats (same file or
    same pages), its pages, the documents looked at. Kept as is under the lock (a stored document stays)."""

    def __init__(self) -> None:
        self.found: dict[int, Manifest] = {}
        self.looks: dict[int, _Pages] = {}
        self.seen: dict[int, set[str]] = {}
        self.cache: dict[tuple[str, int], object] = {}

    def pages(self, n: int, item: UploadItem, p: Manifest) -> _Pages:
        if n not in self.looks:
            self.looks[n] = _Pages(item.path, p.media_type)
            p.page_hashes = [h[0] for h in self.looks[n].hashes]
        return self.looks[n]

    def run(self, ctx: Context, batches: Batches, n: int, item: UploadItem, p: Manifest) -> None:
        old = _existing(ctx, batches, p, [])
        if old is None:
            old = _same_content(ctx, p, self.pages(n, item, p), self.cache, self.seen.setdefault(n, set()))
        if old is not None:
            self.found[n] = old


def _check_and_store(
    ctx: Context,
    items: list[UploadItem],
    prepared: list[Manifest | InputError],
    first_look: _FirstLook,
    errors: list[InputError],
    still_held: Callable[[], None],
) -> tuple[list[Accepted | InputError | None], list[tuple[UploadItem, Manifest]]]:
    """Under the dossiers' locks: each upload already stored (same file, or same pages) is answered with the
    stored document; the others are stored as one batch. Returns the answers (None: stored, in the order of
    the second list) and the stored items."""
    batches = Batches(ctx)
    out: list[Accepted | InputError | None] = []
    new: list[tuple[UploadItem, Manifest]] = []
    in_batch: dict[tuple[str, str, str], Manifest] = {}
    dups: list[Manifest] = []
    committed = [r for r in batches.records() if r.state == COMMITTED] if len(errors) < len(items) else []
    for n, (item, p) in enumerate(zip(items, prepared, strict=True)):
        if isinstance(p, InputError):
            out.append(p)
            continue
        first = in_batch.get(_identity(p))
        if first is not None:  # the same file twice in this batch: one document
            out.append(Accepted(first, duplicate=True))
            continue
        old = first_look.found.get(n) or _existing(ctx, batches, p, committed)
        if old is None:  # only the documents stored since the first look
            pages = first_look.pages(n, item, p)
            old = _same_content(ctx, p, pages, first_look.cache, first_look.seen.setdefault(n, set()))
        if old is not None and item.keep_duplicate:
            p.duplicate_of = old.id
            p.warnings.append(f"cùng nội dung với tài liệu {old.filename} ({old.id}): giữ làm phiên bản mới")
            old = None
        if old is not None:
            out.append(Accepted(old, duplicate=True))
            dups.append(old)
            continue
        if not p.page_hashes:
            first_look.pages(n, item, p)
        in_batch[_identity(p)] = p
        new.append((item, p))
        out.append(None)  # filled by the caller
    waiting = [m for m in dups if not Status(m.status).terminal]
    if waiting:
        pending = ctx.queue.pending([m.id for m in waiting])
        for m in waiting:
            ensure_queued(ctx, m, pending)
    if new:
        ctx.queue.check()  # a broker outage is reported before anything is stored
        still_held()  # another upload of the dossier may have taken over: store nothing then
        _store(ctx, batches, new)
    return out, new


def _store(ctx: Context, batches: Batches, new: list[tuple[UploadItem, Manifest]]) -> None:
    rec = batches.begin([m for _, m in new])
    try:
        for item, m in new:
            ctx.store.put_file(m.original_key, item.path, m.media_type)
            m.set_status(Status.RECEIVED)
            ctx.put_manifest(m)
        batches.commit(rec)
    except BaseException:
        batches.abort(rec)  # nothing of the batch is kept: it was not accepted
        raise
    try:
        batches.finalize(rec, {m.id: m for _, m in new})
    except TransientError as e:  # committed: it will be finished by the reconciler (or a retry)
        log.warning("batch %s committed but not finalized (%s): the reconciler will finish it", rec.id, e)
