"""Documents: upload, list, status, retry, and every download (original, PDF, text, page image/text/hOCR)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.deps import C, audit, load_document, load_page, require
from ingest import UploadItem, accept_batch
from ingest.service import Accepted, BatchError
from sohoa.auth import Principal
from sohoa.context import LEGACY_IMAGE, PREVIEW, output_key, page_key
from sohoa.models import Manifest, Status
from sohoa.text import nfc, safe_filename
from storage import NotFound
from workers.queue import QueueError

router = APIRouter(tags=["documents"])


def manifest_view(m: Manifest) -> dict[str, Any]:
    d = m.to_dict()
    d["progress"] = {"pages_done": len(m.pages), "pages_total": m.declared_pages}
    d["links"] = {
        "self": f"/documents/{m.id}",
        "original": f"/documents/{m.id}/original",
        "pdf": f"/documents/{m.id}/pdf",
        "text": f"/documents/{m.id}/text",
        "pages": [f"/documents/{m.id}/pages/{p.number}" for p in m.pages],
    }
    return d


def _spread(name: str, values: list[str] | None, n: int) -> list[str]:
    values = values or [""]
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise HTTPException(422, {"message": f"give '{name}' once for all files or once per file ({n})"})
    return values


def blob(request: Request, key: str, media_type: str, filename: str | None = None) -> Response:
    try:
        data = C(request).store.get_bytes(key)
    except NotFound:
        raise HTTPException(
            404, {"message": "chưa có (not available yet): the document may still be processing"}
        ) from None
    headers = {}
    if filename:
        headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(nfc(filename))}"
    return Response(content=data, media_type=media_type, headers=headers)


def _unit_for_upload(request: Request, p: Principal, unit: str) -> str:
    """The unit of an upload: as given (must lie in the caller's units), else the caller's own unit."""
    from api.deps import app_state

    unit = " ".join(nfc(unit).split())
    if not unit:
        if p.scope is None:
            return ""
        own = app_state(request).auth.units().resolve(p.units[0])
        return own.name if own else p.units[0]
    if not p.sees_unit(unit):
        raise HTTPException(403, {"message": f"đơn vị {unit} ngoài phạm vi của bạn (unit outside your units)"})
    return unit


@router.post("/documents", status_code=202)
def upload(
    request: Request,
    files: Annotated[list[UploadFile], File(description="scans: PDF, multi-page TIFF, JPEG, PNG")],
    dossier_code: Annotated[list[str], Form(description="mã hồ sơ, once for all files or once per file")],
    kind: Annotated[list[str], Form(description="input (thành phần) | output (kết quả)")],
    component: Annotated[list[str] | None, Form(description="component name (tên thành phần)")] = None,
    unit: Annotated[list[str] | None, Form(description="receiving unit (đơn vị tiếp nhận)")] = None,
    keep_duplicate: Annotated[bool, Form(description="1: keep a stored content as a new version")] = False,
    p: Principal = Depends(require("documents.upload")),
) -> JSONResponse:
    """202 with the documents queued; 200 when every file is already stored (same file, or the same pages
    re-encoded or turned): ``duplicate_of`` names the existing document and nothing is stored twice."""
    from api.limits import copy_limited
    from sohoa.tempfiles import tempdir

    settings = C(request).settings
    n = len(files)
    codes, kinds = _spread("dossier_code", dossier_code, n), _spread("kind", kind, n)
    comps, units = _spread("component", component, n), _spread("unit", unit, n)
    units = [_unit_for_upload(request, p, u) for u in units]
    with tempdir("upload") as tmp:
        items = []
        for i, f in enumerate(files):
            path = Path(tmp) / f"{i:05d}"
            name = nfc(f.filename or f"file-{i + 1}")
            with open(path, "wb") as out:
                copy_limited(f.file, out, settings.max_upload_mb * 1024 * 1024, name)
            items.append(UploadItem(path, name, codes[i], kinds[i], comps[i], units[i], uploaded_by=p.name,
                                    keep_duplicate=keep_duplicate))  # fmt: skip
        try:
            results = accept_batch(C(request), items, all_or_nothing=True)
        except BatchError as e:
            audit(request, p, "document.upload", details={"files": [i.filename for i in items]},
                  outcome="failed", status=e.status)  # fmt: skip
            raise HTTPException(
                e.status,
                {
                    "message": "upload rejected, nothing was stored",
                    "errors": [{"filename": x.filename, "message": x.message} for x in e.errors],
                },
            ) from None
        except QueueError as e:
            raise HTTPException(503, {"message": f"queue unavailable, nothing was stored: {e}"}) from None
    docs = []
    for r in results:
        assert isinstance(r, Accepted)
        m = r.manifest
        audit(request, p, "document.upload", target=m.id, dossier=m.dossier_code,
              details={"filename": m.filename, "kind": m.kind, "duplicate": r.duplicate}, status=202)  # fmt: skip
        docs.append(
            {
                "id": m.id,
                "filename": m.filename,
                "dossier_code": m.dossier_code,
                "kind": m.kind,
                "status": m.status,
                "pages": m.declared_pages,
                "duplicate": r.duplicate,
                "duplicate_of": m.id if r.duplicate else m.duplicate_of,
                "warnings": m.warnings,
                "url": f"/documents/{m.id}",
            }
        )
    all_dups = bool(results) and all(isinstance(r, Accepted) and r.duplicate for r in results)
    return JSONResponse({"documents": docs}, status_code=200 if all_dups else 202)


@router.get("/documents")
def list_documents(
    request: Request,
    dossier_code: str | None = None,
    status: str | None = None,
    limit: int = 100,
    p: Principal = Depends(require("documents.read")),
) -> dict[str, Any]:
    docs = C(request).index.list_documents(
        dossier_code=nfc(dossier_code) if dossier_code else None,
        statuses=[status] if status else None,
        limit=max(1, min(limit, 10_000)),
        units=p.scope,
    )
    audit(request, p, "document.list", dossier=dossier_code or "", details={"status": status, "count": len(docs)})
    return {"documents": [d.to_dict() for d in docs]}


@router.get("/documents/{doc_id}")
def get_document(request: Request, doc_id: str, p: Principal = Depends(require("documents.read"))) -> dict[str, Any]:
    m = load_document(request, p, doc_id)
    audit(request, p, "document.read", target=doc_id, dossier=m.dossier_code)
    return manifest_view(m)


@router.post("/documents/{doc_id}/retry", status_code=202)
def retry(request: Request, doc_id: str, p: Principal = Depends(require("documents.edit"))) -> dict[str, Any]:
    m = load_document(request, p, doc_id)
    if m.status not in (Status.FAILED.value, Status.DONE.value):
        raise HTTPException(409, {"message": f"document is {m.status}; only done or failed documents can be re-run"})
    m.attempts = 0
    m.set_status(Status.QUEUED)
    C(request).save_manifest(m)
    C(request).queue.enqueue(m.id)
    audit(request, p, "document.retry", target=doc_id, dossier=m.dossier_code, status=202)
    return manifest_view(m)


@router.get("/documents/{doc_id}/original")
def original(request: Request, doc_id: str, p: Principal = Depends(require("content.read"))) -> Response:
    m = load_document(request, p, doc_id)
    audit(request, p, "original.read", target=doc_id, dossier=m.dossier_code)
    return blob(request, m.original_key, m.media_type, m.filename)


@router.get("/documents/{doc_id}/pdf")
def pdf(request: Request, doc_id: str, p: Principal = Depends(require("content.read"))) -> Response:
    m = load_document(request, p, doc_id)
    audit(request, p, "pdf.read", target=doc_id, dossier=m.dossier_code)
    return blob(request, output_key(doc_id, "document.pdf"), "application/pdf", Path(m.filename).stem + ".ocr.pdf")


@router.get("/documents/{doc_id}/text")
def text(request: Request, doc_id: str, p: Principal = Depends(require("content.read"))) -> Response:
    m = load_document(request, p, doc_id)
    audit(request, p, "text.read", target=doc_id, dossier=m.dossier_code)
    return blob(request, output_key(doc_id, "document.txt"), "text/plain; charset=utf-8")


@router.get("/documents/{doc_id}/pages/{number}")
def page_image(request: Request, doc_id: str, number: int, p: Principal = Depends(require("content.read"))) -> Response:
    m = load_page(request, p, doc_id, number)
    audit(request, p, "page.read", target=f"{doc_id}/{number}", dossier=m.dossier_code, details={"what": "image"})
    return Response(content=_page_image(request, doc_id, number), media_type="image/jpeg")


def _page_image(request: Request, doc_id: str, number: int) -> bytes:
    """The page at screen resolution (``page-NNNN.preview.jpg``); documents processed before previews
    existed have the full-resolution ``page-NNNN.jpg`` instead."""
    store = C(request).store
    for ext in (PREVIEW, LEGACY_IMAGE):
        try:
            return store.get_bytes(page_key(doc_id, number, ext))
        except NotFound:
            continue
    raise HTTPException(404, {"message": "chưa có ảnh trang (not available yet): the document may still be processing"})


@router.get("/documents/{doc_id}/pages/{number}/text")
def page_text(request: Request, doc_id: str, number: int, p: Principal = Depends(require("content.read"))) -> Response:
    m = load_page(request, p, doc_id, number)
    audit(request, p, "page.read", target=f"{doc_id}/{number}", dossier=m.dossier_code, details={"what": "text"})
    return blob(request, page_key(doc_id, number, "txt"), "text/plain; charset=utf-8")


@router.get("/documents/{doc_id}/pages/{number}/hocr")
def page_hocr(request: Request, doc_id: str, number: int, p: Principal = Depends(require("content.read"))) -> Response:
    m = load_page(request, p, doc_id, number)
    audit(request, p, "page.read", target=f"{doc_id}/{number}", dossier=m.dossier_code, details={"what": "hocr"})
    return blob(request, page_key(doc_id, number, "hocr"), "text/html; charset=utf-8")


class MetadataChange(BaseModel):
    dossier_code: str | None = Field(None, max_length=64)
    kind: str | None = Field(None, pattern="^(input|output)$")
    component: str | None = Field(None, max_length=300)


@router.patch("/documents/{doc_id}")
def correct(
    request: Request, doc_id: str, body: MetadataChange, p: Principal = Depends(require("documents.edit"))
) -> dict[str, Any]:
    """Correct a document's dossier code, kind or component (the old values are kept in ``edits``)."""
    from sohoa.editing import correct_metadata

    m = load_document(request, p, doc_id)
    old = m.dossier_code
    m = correct_metadata(C(request), m, p.name, body.dossier_code, body.kind, body.component)
    audit(request, p, "document.update", target=doc_id, dossier=m.dossier_code,
          details={**body.model_dump(exclude_none=True), "old_dossier": old})  # fmt: skip
    return manifest_view(m)


@router.post("/documents/{doc_id}/pages/{number}/replace", status_code=202)
def replace(
    request: Request,
    doc_id: str,
    number: int,
    file: Annotated[UploadFile, File(description="the re-scan of this one page")],
    p: Principal = Depends(require("documents.edit")),
) -> dict[str, Any]:
    """Replace one page by a re-scan; the old original is kept and the document is OCR'd again."""
    from api.limits import copy_limited
    from sohoa.editing import replace_page
    from sohoa.tempfiles import tempdir

    m = load_document(request, p, doc_id)
    name = safe_filename(file.filename or "rescan")
    with tempdir("upload") as tmp:
        path = Path(tmp) / "rescan"
        with open(path, "wb") as out:
            copy_limited(file.file, out, C(request).settings.max_upload_mb * 1024 * 1024, name)
        m = replace_page(C(request), m, number, path, name, p.name)
    audit(request, p, "document.replace_page", target=f"{doc_id}/{number}", dossier=m.dossier_code,
          details={"filename": name}, status=202)  # fmt: skip
    return manifest_view(m)


@router.delete("/documents/{doc_id}")
def delete(
    request: Request,
    doc_id: str,
    reason: Annotated[str, Query(min_length=1, max_length=500, description="why (lý do xóa)")],
    p: Principal = Depends(require("documents.edit")),
) -> dict[str, Any]:
    """Soft delete: out of search and reports, kept in storage with who, when and why."""
    from sohoa.editing import soft_delete

    m = soft_delete(C(request), load_document(request, p, doc_id), p.name, reason)
    audit(request, p, "document.delete", target=doc_id, dossier=m.dossier_code, details={"reason": reason})
    return manifest_view(m)


@router.get("/documents/{doc_id}/pages/{number}/thumb")
def page_thumb(request: Request, doc_id: str, number: int, p: Principal = Depends(require("content.read"))) -> Response:
    """A small preview of the page (made once from the page's screen image, then kept beside it)."""
    import io

    from PIL import Image

    m = load_page(request, p, doc_id, number)
    store = C(request).store
    key = page_key(doc_id, number, "thumb.jpg")
    try:
        data = store.get_bytes(key)
    except NotFound:
        full = _page_image(request, doc_id, number)
        with Image.open(io.BytesIO(full)) as im:
            im.thumbnail((240, 340))
            buf = io.BytesIO()
            im.convert("L" if im.mode in ("L", "1") else "RGB").save(buf, "JPEG", quality=70)
        data = buf.getvalue()
        if m.status == Status.DONE.value:
            store.put_bytes(key, data, "image/jpeg")
    audit(request, p, "page.read", target=f"{doc_id}/{number}", dossier=m.dossier_code, details={"what": "thumb"})
    return Response(content=data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
