"""The per-document job: rasterise → clean → OCR → store outputs → index. Idempotent."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import pikepdf

import ocr
from sohoa.context import Context, output_key, page_key
from sohoa.models import DocRecord, Manifest, PageInfo, PageText, Status, utcnow
from sohoa.tempfiles import tempdir
from storage import NotFound
from workers.pages import PageSourceError, iter_pages, ocr_input_dpi

log = logging.getLogger("sohoa.worker")

MAX_ATTEMPTS = 3


def _ocr_settings(ctx: Context) -> ocr.OcrSettings:
    s = ctx.settings
    return ocr.OcrSettings(tessdata_dir=s.tessdata_dir or None, low_confidence=s.low_confidence)


def process_document(ctx: Context, doc_id: str) -> None:
    try:
        m = ctx.load_manifest(doc_id)
    except NotFound:
        log.warning("job for unknown document %s dropped", doc_id, extra={"doc_id": doc_id})
        return
    extra = {"doc_id": doc_id, "dossier": m.dossier_code}
    if m.status == Status.DONE.value:
        log.info("already done, skipping duplicate job", extra=extra)
        return
    if m.attempts >= MAX_ATTEMPTS:
        m.set_status(Status.FAILED, f"gave up after {m.attempts} attempts (worker crashed or timed out)")
        ctx.save_manifest(m)
        log.error("giving up", extra=extra)
        return
    m.attempts += 1
    m.pages = []
    m.set_status(Status.PROCESSING)
    ctx.save_manifest(m)
    log.info("processing %s (%d page(s))", m.filename, m.declared_pages, extra=extra)
    t0 = time.perf_counter()
    settings = _ocr_settings(ctx)
    texts: list[PageText] = []
    try:
        with tempdir("job") as tmp:
            original = tmp / ("original" + Path(m.original_key).suffix)
            ctx.store.download(m.original_key, original)
            page_pdfs: list[Path] = []
            stage_totals: dict[str, float] = {}
            pages = iter_pages(original, m.media_type, ctx.settings.render_dpi, ctx.settings.max_page_pixels)
            for src in pages:
                tp = time.perf_counter()
                dpi = ocr_input_dpi(src.image.size, src.dpi, ctx.settings.max_page_pixels)
                if dpi != src.dpi:
                    log.warning(
                        "page %d (%d×%d px at %s dpi) read as %d dpi: upscaled to 300 dpi it would exceed "
                        "SOHOA_MAX_PAGE_PIXELS", src.number, *src.image.size, src.dpi, dpi, extra=extra,
                    )  # fmt: skip
                res = ocr.process_page(src.image, dpi, settings)
                src.image.close()
                n = src.number
                ctx.store.put_bytes(page_key(doc_id, n, "txt"), res.text.encode("utf-8"), "text/plain; charset=utf-8")
                ctx.store.put_bytes(
                    page_key(doc_id, n, "raw.txt"), res.raw_text.encode("utf-8"), "text/plain; charset=utf-8"
                )
                ctx.store.put_bytes(page_key(doc_id, n, "hocr"), res.hocr.encode("utf-8"), "text/html; charset=utf-8")
                ok, jpg = cv2.imencode(".jpg", res.image, [cv2.IMWRITE_JPEG_QUALITY, 80])
                if ok:
                    ctx.store.put_bytes(page_key(doc_id, n, "jpg"), jpg.tobytes(), "image/jpeg")
                pdf_path = tmp / f"page-{n:04d}.pdf"
                pdf_path.write_bytes(res.pdf)
                page_pdfs.append(pdf_path)
                for k, v in res.timings.items():
                    stage_totals[k] = round(stage_totals.get(k, 0.0) + v, 3)
                m.model = res.model
                m.pages.append(
                    PageInfo(
                        number=n,
                        dpi=res.dpi,
                        colour_mode=src.colour_mode,
                        width=res.width,
                        height=res.height,
                        mean_confidence=round(res.mean_confidence, 2),
                        low_confidence=res.low_confidence,
                        word_count=res.word_count,
                        rotation=res.rotation,
                        skew=round(res.skew, 2),
                        low_dpi=(src.dpi or res.dpi) < ctx.settings.min_dpi_warning,  # res.dpi: after upscaling
                        seconds=round(time.perf_counter() - tp, 3),
                        text_coverage=res.text_coverage,
                    )
                )
                texts.append(PageText(n, res.text))
                ctx.save_manifest(m)  # progress: len(m.pages) of m.declared_pages
                log.info("page %d/%d done (conf %.1f)", n, m.declared_pages, res.mean_confidence, extra=extra)
            if not texts:
                raise PageSourceError("the document has no pages")
            combined = tmp / "document.pdf"
            with pikepdf.new() as out:
                opened = [pikepdf.open(p) for p in page_pdfs]
                for src_pdf in opened:
                    out.pages.extend(src_pdf.pages)
                out.docinfo["/Title"] = f"{m.dossier_code} — {m.filename}"
                out.docinfo["/Producer"] = "sohoa"
                out.save(combined)
                for src_pdf in opened:
                    src_pdf.close()
            ctx.store.put_file(output_key(doc_id, "document.pdf"), combined, "application/pdf")
        full_text = "\f".join(t.text for t in texts)
        ctx.store.put_bytes(output_key(doc_id, "document.txt"), full_text.encode("utf-8"), "text/plain; charset=utf-8")
        # drop outputs of pages that an earlier run had and this one does not
        for key in ctx.store.list(f"documents/{doc_id}/out/page-"):
            num = key.rsplit("/", 1)[1].split(".")[0].removeprefix("page-")
            if num.isdigit() and int(num) > len(texts):
                ctx.store.delete(key)
        m.timings = {**stage_totals, "total": round(time.perf_counter() - t0, 3)}
        m.processed_at = utcnow()
        m.set_status(Status.DONE)
        ctx.index.replace_pages(DocRecord.from_manifest(m), texts)
        ctx.save_manifest(m)
        log.info("done in %.1fs", m.timings["total"], extra=extra)
    except PageSourceError as e:
        _fail(ctx, m, str(e), extra)
    except Exception as e:
        if m.attempts >= MAX_ATTEMPTS:
            _fail(ctx, m, f"{type(e).__name__}: {e}", extra)
            return
        log.exception("attempt %d failed; will retry", m.attempts, extra=extra)
        m.set_status(Status.QUEUED, f"retrying after {type(e).__name__}: {e}")
        ctx.save_manifest(m)
        raise


def _fail(ctx: Context, m: Manifest, reason: str, extra: dict[str, str]) -> None:
    m.set_status(Status.FAILED, reason)
    m.processed_at = utcnow()
    ctx.index.replace_pages(DocRecord.from_manifest(m), [])
    ctx.save_manifest(m)
    log.error("failed: %s", reason, extra=extra)
