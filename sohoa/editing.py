"""What a clerk may change on a stored document: correct its metadata, replace one page by a re-scan,
delete it (softly). Every change is kept in the manifest (who, when, what was there before); nothing a
citizen submitted is ever removed from object storage."""

from __future__ import annotations

import io
from pathlib import Path

import img2pdf
import pikepdf
from PIL import Image, ImageSequence

from ingest import InputError
from ingest.validate import validate_file, validate_metadata
from sohoa.context import Context, doc_prefix, manifest_key, page_key
from sohoa.models import DocRecord, Manifest, PageText, Status, utcnow
from storage import NotFound


def reindex_document(ctx: Context, m: Manifest) -> None:
    """Bring the index in line with the manifest (its metadata and, when done, its pages)."""
    rec = DocRecord.from_manifest(m)
    if m.status == Status.DONE.value:
        pages = []
        for p in m.pages:
            try:
                text = ctx.store.get_bytes(page_key(m.id, p.number, "txt")).decode("utf-8")
            except NotFound:
                text = ""
            pages.append(PageText(p.number, text))
        ctx.index.replace_pages(rec, pages)
    else:
        ctx.index.upsert_document(rec)


def correct_metadata(
    ctx: Context,
    m: Manifest,
    by: str,
    dossier_code: str | None = None,
    kind: str | None = None,
    component: str | None = None,
) -> Manifest:
    """Fix a wrong dossier code, kind or component; the old values stay in ``m.edits``. Counts of the old
    and the new dossier follow (the index refreshes both dossiers' digitization flags)."""
    if m.deleted:
        raise InputError("tài liệu đã bị xóa (the document was deleted)", 409)
    code, k, comp, _ = validate_metadata(
        ctx.settings,
        dossier_code if dossier_code is not None else m.dossier_code,
        kind if kind is not None else m.kind,
        component if component is not None else m.component,
        m.unit,
    )
    old_code = m.dossier_code
    changed = False
    for name, new in (("dossier_code", code), ("kind", k), ("component", comp)):
        old = getattr(m, name)
        if old != new:
            m.edits.append({"at": utcnow(), "by": by, "field": name, "old": old, "new": new})
            setattr(m, name, new)
            changed = True
    if not changed:
        return m
    ctx.store.put_bytes(manifest_key(m.id), m.to_json(), "application/json")
    if old_code != m.dossier_code:
        ctx.index.delete_document(m.id)  # refreshes the old dossier's flags
    reindex_document(ctx, m)
    return m


def soft_delete(ctx: Context, m: Manifest, by: str, reason: str) -> Manifest:
    """Take the document out of search and reports; keep everything in storage, with who, when and why."""
    reason = " ".join(reason.split())
    if len(reason) < 5:
        raise InputError("cần ghi lý do xóa (at least a few words of reason)", 422)
    if m.deleted:
        return m
    m.deleted = {"at": utcnow(), "by": by, "reason": reason[:500]}
    ctx.store.put_bytes(manifest_key(m.id), m.to_json(), "application/json")
    ctx.index.delete_document(m.id)
    return m


def _pages_of_original(data: bytes, media_type: str) -> list[bytes]:
    """The pages of a stored original as single-page PDFs (PDF) or encoded images (TIFF/JPEG/PNG)."""
    if media_type == "application/pdf":
        src = pikepdf.open(io.BytesIO(data))
        out = []
        for page in src.pages:
            one = pikepdf.new()
            one.pages.append(page)
            buf = io.BytesIO()
            one.save(buf)
            out.append(buf.getvalue())
        return out
    with Image.open(io.BytesIO(data)) as im:
        frames = []
        for frame in ImageSequence.Iterator(im):
            buf = io.BytesIO()
            frame.convert("RGB" if frame.mode not in ("L", "1") else frame.mode).save(
                buf, "PNG", dpi=im.info.get("dpi", (300, 300))
            )
            frames.append(buf.getvalue())
        return frames


def _as_pdf(part: bytes) -> pikepdf.Pdf:
    if part.startswith(b"%PDF"):
        return pikepdf.open(io.BytesIO(part))
    return pikepdf.open(io.BytesIO(img2pdf.convert(part, rotation=img2pdf.Rotation.ifvalid)))


def replace_page(ctx: Context, m: Manifest, number: int, rescan: Path, filename: str, by: str) -> Manifest:
    """Replace page *number* by a one-page re-scan: a new original (PDF) is assembled and stored beside the
    old one (kept, listed in ``m.versions``), then the document is OCR'd again."""
    if m.deleted:
        raise InputError("tài liệu đã bị xóa (the document was deleted)", 409)
    if m.status not in (Status.DONE.value, Status.FAILED.value):
        raise InputError(f"tài liệu đang {m.status}; chỉ thay trang khi đã xử lý xong (still processing)", 409)
    if not 1 <= number <= m.page_count:
        raise InputError(f"tài liệu chỉ có {m.page_count} trang, không có trang {number} (no such page)", 404)
    info = validate_file(ctx.settings, rescan, filename)
    if info.pages != 1:
        raise InputError(f"bản quét lại phải có đúng 1 trang, tệp này có {info.pages} (one page expected)", 422)
    parts = _pages_of_original(ctx.store.get_bytes(m.original_key), m.media_type)
    parts[number - 1] = rescan.read_bytes()
    out = pikepdf.new()
    opened = [_as_pdf(p) for p in parts]
    for pdf in opened:
        out.pages.extend(pdf.pages)
    buf = io.BytesIO()
    out.save(buf)
    version = len(m.versions) + 2
    key = f"{doc_prefix(m.id)}original-v{version}.pdf"
    ctx.store.put_bytes(key, buf.getvalue(), "application/pdf")
    m.versions.append({"key": m.original_key, "media_type": m.media_type, "at": utcnow(), "by": by,
                       "page": number, "filename": filename})  # fmt: skip
    m.original_key, m.media_type, m.size = key, "application/pdf", len(buf.getvalue())
    m.declared_pages = len(parts)
    m.attempts = 0
    m.set_status(Status.QUEUED)
    ctx.save_manifest(m)
    ctx.queue.enqueue(m.id)
    return m
