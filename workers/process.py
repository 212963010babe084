"""The per-document job: rasterise → clean → OCR → store outputs → index. Idempotent, under a lease.

How a run ends (see :mod:`sohoa.errors`):

* done — outputs and manifest stored (store first, then index);
* a **permanent** error (an unreadable scan, the original missing) — ``failed`` with that reason;
* a **transient** error (storage, index or broker unavailable) or a **configuration** error (tesseract
  missing) — the document waits (``queued``, with the reason) and is sent again with exponential backoff
  (``SOHOA_RETRY_MIN_BACKOFF_MS`` … ``SOHOA_RETRY_MAX_BACKOFF_MS``) for up to ``SOHOA_OUTAGE_WINDOW_S``;
  this run does not count as an attempt;
* an **unknown** error (an OCR engine crash, a time limit) — counted as an attempt; after
  :data:`MAX_ATTEMPTS` the document fails with that error. A run that never ends (the worker killed)
  counts too: the next run finds the attempt it started.

Only the holder of the lease ``doc:{id}`` processes a document; a second delivery while the lease is alive
is dropped, and a run that loses its lease stops before writing anything more.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ocr
from sohoa.context import PREVIEW, Context, lease_name, output_key, page_key
from sohoa.errors import ConfigError, LeaseLost, PermanentError, TransientError, kind_of
from sohoa.leases import LeaseKeeper, holder_dead, thread_owner
from sohoa.models import DocRecord, Manifest, PageInfo, PageText, Status, utcnow
from sohoa.pdfa import ArchiveMeta, ArchiveWriter
from sohoa.tempfiles import tempdir
from storage import NotFound
from workers import pagepool
from workers.pages import PageSourceError, iter_pages, ocr_input_dpi

log = logging.getLogger("sohoa.worker")

MAX_ATTEMPTS = 3
# a page's image in the archival PDF is re-encoded within this share of the scan's bytes per page (issue 14:
# ≤ 1.2 × the input). Bitonal-looking pages become CCITT G4 (≈ 0.1 ×: original + outputs ≈ 1.2 × the scan);
# grey office scans stay JPEG q75 (≈ 0.8 ×: ≈ 1.9 × in storage). A lower budget (0.3 was tried) pushed 3 of 4
# office scans into JPEG 2000 at 7 s a page — more than their OCR — and visibly lower quality: not worth it.
ARCHIVE_BUDGET = 1.2
PROGRESS_EVERY_S = 1.0  # pages take longer than this: each page's progress is saved; tiny pages are batched


def check_ocr_installed(tessdata_dir: str | None = None) -> None:
    """Raise :class:`ConfigError` if tesseract or its Vietnamese model is missing (checked at worker start)."""
    from ocr.errors import OcrError
    from ocr.tesseract import resolve_model

    try:
        resolve_model(tessdata_dir or None)
    except OcrError as e:
        raise ConfigError(f"OCR is not installed: {e}") from e


def _ocr_settings(ctx: Context) -> ocr.OcrSettings:
    s = ctx.settings
    # the archival PDF is built from the page image and the hOCR (sohoa.pdfa): no Tesseract PDF per page
    return ocr.OcrSettings(tessdata_dir=s.tessdata_dir or None, low_confidence=s.low_confidence, searchable_pdf=False)


def backoff_ms(retries: int, min_ms: int, max_ms: int) -> int:
    """Exponential backoff with 20 % jitter: min, 2·min, 4·min … up to max."""
    base = min(max_ms, min_ms * (2 ** min(retries, 30)))
    return max(1, int(base * random.uniform(0.8, 1.0)))


# -- the actor's body ----------------------------------------------------------------------------------
def run_job(ctx: Context, doc_id: str, retries: int = 0, since: float | None = None, refund: int = 0) -> None:
    """Process *doc_id*; on failure decide whether and when it is sent again. Never raises."""
    try:
        process_document(ctx, doc_id, refund=refund)
    except LeaseLost as e:
        log.warning("stopped: %s", e, extra={"doc_id": doc_id})
    except (TransientError, ConfigError) as e:
        _defer(ctx, doc_id, e, retries, since, int(getattr(e, "refund", 0)))
    except Exception as e:  # noqa: BLE001 - unknown: counted as an attempt by process_document
        log.error("attempt failed (%s: %s); retrying", type(e).__name__, e, extra={"doc_id": doc_id},
                  exc_info=not isinstance(e, ocr.OcrError))  # fmt: skip
        s = ctx.settings
        try:
            ctx.queue.enqueue(doc_id, delay_ms=backoff_ms(retries, s.retry_min_backoff_ms, s.retry_max_backoff_ms),
                              retries=retries + 1)  # fmt: skip
        except TransientError as qe:
            log.warning("cannot send it again (%s); the reconciler will", qe, extra={"doc_id": doc_id})


def _defer(ctx: Context, doc_id: str, e: Exception, retries: int, since: float | None, refund: int) -> None:
    s = ctx.settings
    now = time.time()
    since = since or now
    kind = kind_of(e)
    if kind == "transient" and now - since > s.outage_window_s:
        reason = f"gave up after {now - since:.0f} s waiting (SOHOA_OUTAGE_WINDOW_S): {e}"
        try:
            m = ctx.load_manifest(doc_id)
            if not Status(m.status).terminal:
                if refund and m.attempts == refund:
                    m.attempts -= 1
                _fail(ctx, m, reason, {"doc_id": doc_id, "dossier": m.dossier_code})
            return
        except Exception as fe:  # noqa: BLE001 - cannot even record it: keep waiting
            log.warning("cannot record the failure (%s); still waiting", fe, extra={"doc_id": doc_id})
    delay = backoff_ms(retries, s.retry_min_backoff_ms, s.retry_max_backoff_ms)
    log.warning("waiting for %s (%s): %s; next try in %.1f s", getattr(e, "backend", "") or kind, type(e).__name__,
                e, delay / 1000, extra={"doc_id": doc_id, "event": "run.deferred"})  # fmt: skip
    try:
        ctx.queue.enqueue(doc_id, delay_ms=delay, retries=retries + 1, since=since, refund=refund)
    except TransientError as qe:
        log.warning("cannot send it again (%s); the reconciler will once the broker is back", qe,
                    extra={"doc_id": doc_id})  # fmt: skip


# -- one run ---------------------------------------------------------------------------------------------
def process_document(ctx: Context, doc_id: str, refund: int = 0) -> None:
    """One run under the document's lease. Raises transient/config/unknown errors for :func:`run_job`."""
    owner = thread_owner()
    ttl = ctx.settings.lease_ttl_s
    lease = ctx.leases.acquire(lease_name(doc_id), owner, ttl, dead=holder_dead)
    if lease is None:
        holder = ctx.leases.get(lease_name(doc_id))
        log.info("being processed by %s: this delivery is dropped", holder.owner if holder else "?",
                 extra={"doc_id": doc_id, "event": "run.skipped"})  # fmt: skip
        return
    keeper = LeaseKeeper(ctx.leases, lease, ttl)
    t0 = time.time()
    log.info("run start", extra={"doc_id": doc_id, "event": "run.start", "owner": owner, "t": t0})
    outcome = "error"
    try:
        outcome = _run(ctx, doc_id, keeper, refund)
    finally:
        keeper.release()
        log.info("run end", extra={"doc_id": doc_id, "event": "run.end", "owner": owner, "t0": t0,
                                   "t": time.time(), "outcome": outcome})  # fmt: skip


def _run(ctx: Context, doc_id: str, keeper: LeaseKeeper, refund: int) -> str:
    try:
        m = ctx.load_manifest(doc_id)
    except NotFound:
        log.warning("job for unknown document %s dropped", doc_id, extra={"doc_id": doc_id})
        return "unknown"
    extra = {"doc_id": doc_id, "dossier": m.dossier_code}
    if m.deleted:
        log.info("deleted (%s), job dropped", m.deleted.get("reason", ""), extra=extra)
        return "skipped"
    if Status(m.status).terminal:
        if ctx.heal_index(m):
            log.info("index brought in line with storage (%s)", m.status, extra=extra)
        log.info("already %s, skipping duplicate job", m.status, extra=extra)
        return "skipped"
    if refund and m.attempts == refund:
        m.attempts -= 1  # the last run ended waiting for a backend but could not record it
    if m.attempts >= MAX_ATTEMPTS:
        _fail(ctx, m, f"gave up after {m.attempts} attempts: the worker processing it stopped each time "
                      "(killed, out of memory or over SOHOA_JOB_TIME_LIMIT_S)", extra)  # fmt: skip
        return "failed"
    m.attempts += 1
    attempt = m.attempts
    m.pages = []
    m.set_status(Status.PROCESSING)
    stored_done = False
    try:
        ctx.save_manifest(m)
        log.info("processing %s (%d page(s))", m.filename, m.declared_pages, extra=extra)
        texts = _ocr_document(ctx, m, keeper, extra)
        keeper.check()
        m.set_status(Status.DONE)
        ctx.put_manifest(m)  # the store first: done in the store ⇒ the index is healed if this stops here
        stored_done = True
        ctx.index.replace_pages(DocRecord.from_manifest(m), texts)
        log.info("done in %.1fs", m.timings["total"], extra=extra)
        return "done"
    except LeaseLost:
        raise
    except PermanentError as e:  # PageSourceError too: the scan cannot be read
        reason = f"original missing from storage: {e}" if isinstance(e, NotFound) else str(e)
        _fail(ctx, m, reason, extra)
        return "failed"
    except (TransientError, ConfigError) as e:
        refund = 0 if stored_done else attempt
        if not stored_done:
            m.attempts = attempt - 1  # not the file's fault: this run does not count
            m.set_status(Status.QUEUED, f"waiting: {e}")
            try:
                ctx.save_manifest(m)
                refund = 0
            except Exception:  # noqa: BLE001 - the backend is down: the next run refunds it
                pass
        setattr(e, "refund", refund)  # noqa: B010 - read by run_job
        raise
    except Exception as e:
        if m.attempts >= MAX_ATTEMPTS:
            _fail(ctx, m, f"{type(e).__name__}: {e}", extra)
            return "failed"
        m.set_status(Status.QUEUED, f"retrying after {type(e).__name__}: {e}")
        try:
            ctx.save_manifest(m)
        except Exception:  # noqa: BLE001
            log.warning("cannot record the retry", extra=extra)
        raise


def _ocr_document(ctx: Context, m: Manifest, keeper: LeaseKeeper, extra: dict[str, Any]) -> list[PageText]:
    """OCR every page (concurrently, see :mod:`workers.pagepool`), storing each page's outputs and the
    manifest's progress in page order as soon as the page and every page before it are done."""
    doc_id = m.id
    t0 = time.perf_counter()
    s = ctx.settings
    settings = _ocr_settings(ctx)
    texts: list[PageText] = []
    m.blank_pages = []
    runner = pagepool.PageRunner(pagepool.page_workers(s.page_workers))
    with tempdir("job") as tmp:
        original = tmp / ("original" + Path(m.original_key).suffix)
        ctx.store.download(m.original_key, original)
        stage_totals: dict[str, float] = {}
        pages = iter_pages(original, m.media_type, s.render_dpi, s.max_page_pixels)
        # the archival PDF's image of a page stays within the scan's own bytes per page (ARCHIVE_BUDGET ×)
        budget = int(ARCHIVE_BUDGET * m.size / max(1, m.declared_pages)) if m.size else None

        def tasks() -> Iterator[pagepool.PageTask]:
            for src in pages:
                keeper.check()
                dpi = ocr_input_dpi(src.image.size, src.dpi, s.max_page_pixels)
                if dpi != src.dpi:
                    log.warning(
                        "page %d (%d×%d px at %s dpi) read as %d dpi: upscaled to 300 dpi it would exceed "
                        "SOHOA_MAX_PAGE_PIXELS", src.number, *src.image.size, src.dpi, dpi, extra=extra,
                    )  # fmt: skip
                yield pagepool.PageTask.make(src, dpi, settings, s.min_dpi_warning, not s.keep_blank_pages, budget)

        combined = tmp / "document.pdf"
        meta = ArchiveMeta(title=f"{m.dossier_code} — {m.filename}", dossier_code=m.dossier_code, kind=m.kind,
                           component=m.component, doc_id=doc_id, created=_naive_utc(m.received_at))  # fmt: skip
        with ArchiveWriter(combined, meta) as archive:
            _pages(ctx, m, runner.run(tasks(), keeper.check), archive, keeper, texts, stage_totals, extra)
        keeper.check()
        ctx.store.put_file(output_key(doc_id, "document.pdf"), combined, "application/pdf")
    full_text = "\f".join(t.text for t in texts)
    ctx.store.put_bytes(output_key(doc_id, "document.txt"), full_text.encode("utf-8"), "text/plain; charset=utf-8")
    # drop outputs of pages that an earlier run had and this one does not, full-size page images of the old
    # layout and thumbnails made from an earlier run's pages
    for key in ctx.store.list(f"documents/{doc_id}/out/page-"):
        num, _, ext = key.rsplit("/", 1)[1].removeprefix("page-").partition(".")
        if num.isdigit() and (int(num) > len(texts) or ext in ("jpg", "thumb.jpg")):
            ctx.store.delete(key)
    m.timings = {**stage_totals, "total": round(time.perf_counter() - t0, 3)}
    m.processed_at = utcnow()
    return texts


def _pages(
    ctx: Context,
    m: Manifest,
    outputs: Iterable[pagepool.PageOutput],
    archive: ArchiveWriter,
    keeper: LeaseKeeper,
    texts: list[PageText],
    stage_totals: dict[str, float],
    extra: dict[str, Any],
) -> None:
    """Store each page's outputs (in page order), add it to the archival PDF and save the progress."""
    doc_id = m.id
    saved = 0.0

    def progress() -> None:  # the whole manifest is written: at most every PROGRESS_EVERY_S on long documents
        nonlocal saved
        keeper.check()
        if time.monotonic() - saved >= PROGRESS_EVERY_S:
            ctx.save_manifest(m)
            saved = time.monotonic()

    for out in outputs:
        if out.blank:
            m.blank_pages.append(out.source)
            progress()
            log.info("page %d is blank (%s): left out", out.source, out.blank_reason, extra=extra)
            continue
        n = len(m.pages) + 1
        ctx.store.put_bytes(page_key(doc_id, n, "txt"), out.text.encode("utf-8"), "text/plain; charset=utf-8")
        ctx.store.put_bytes(page_key(doc_id, n, "raw.txt"), out.raw_text.encode("utf-8"), "text/plain; charset=utf-8")
        ctx.store.put_bytes(page_key(doc_id, n, "hocr"), out.hocr.encode("utf-8"), "text/html; charset=utf-8")
        if out.preview:
            ctx.store.put_bytes(page_key(doc_id, n, PREVIEW), out.preview, "image/jpeg")
        assert out.image is not None
        archive.add_page(out.image, out.words, out.frame, out.size_pt)
        for k, v in out.timings.items():
            stage_totals[k] = round(stage_totals.get(k, 0.0) + v, 3)
        m.model = out.model
        m.pages.append(PageInfo(number=n, source_page=out.source, **out.info))
        texts.append(PageText(n, out.text))
        progress()  # len(m.pages) of m.declared_pages
        log.info("page %d/%d done (conf %.1f)", n, m.declared_pages, out.info["mean_confidence"], extra=extra)
    if not texts:
        if m.blank_pages:
            raise PageSourceError(f"every page is blank ({len(m.blank_pages)}); SOHOA_KEEP_BLANK_PAGES=true keeps them")
        raise PageSourceError("the document has no pages")


def _naive_utc(iso: str) -> datetime:
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return datetime.now(UTC).replace(tzinfo=None)
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _fail(ctx: Context, m: Manifest, reason: str, extra: dict[str, str]) -> None:
    m.set_status(Status.FAILED, reason)
    m.processed_at = utcnow()
    ctx.save_manifest(m, pages=[])
    log.error("failed: %s", reason, extra=extra)
