"""The clerk's pages: upload (drag and drop, per-file metadata, progress, live state), the queue, and the
document page (thumbnails, per-page flags, corrections, page re-scan, delete, downloads).

The forms post here with the session's CSRF token and come back to the page (303) with a message; the
work itself is done by the same functions as the JSON API (sohoa.editing, api.routes.documents)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import C, app_state, audit, load_document, require
from api.ui import page
from ingest import InputError
from sohoa.auth import Principal
from sohoa.models import Status
from sohoa.text import safe_filename

router = APIRouter(include_in_schema=False)
MESSAGES = {
    "edit": "Đã sửa thông tin tài liệu.",
    "replace": "Đã thay trang; tài liệu đang được nhận dạng lại.",
    "delete": "Đã xóa tài liệu (vẫn lưu trong kho, kèm lý do).",
    "retry": "Đã đưa tài liệu vào hàng đợi xử lý lại.",
}


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, p: Principal = Depends(require("documents.upload", html=True))) -> HTMLResponse:
    st = app_state(request)
    tree = st.auth.units()
    units = sorted(
        {u.name for u in tree.units.values() if p.sees_unit(u.code) or p.sees_unit(u.name)} if tree.units else set()
    )
    return page(request, p, "upload.html", pattern=st.settings.dossier_code_pattern.strip("^$"), units=units,
                max_mb=st.settings.max_upload_mb, max_batch_mb=st.settings.max_batch_mb)  # fmt: skip


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    status: str = "",
    mine: str = "",
    dossier_code: str = "",
    p: Principal = Depends(require("documents.read", html=True)),
) -> HTMLResponse:
    ctx = C(request)
    statuses = [status] if status in {s.value for s in Status} else None
    docs = ctx.index.list_documents(dossier_code=dossier_code.strip() or None, statuses=statuses, limit=300,
                                    units=p.scope)  # fmt: skip
    rows: list[Any] = []
    for d in docs:
        m = ctx.load_manifest(d.id)
        if mine and m.uploaded_by != p.name:
            continue
        rows.append(m)
    rows.sort(key=lambda m: m.received_at, reverse=True)
    audit(request, p, "document.list", dossier=dossier_code, details={"status": status, "mine": bool(mine),
                                                                      "count": len(rows)})  # fmt: skip
    return page(request, p, "queue.html", rows=rows, status=status, mine=bool(mine), dossier_code=dossier_code,
                statuses=[s.value for s in Status])  # fmt: skip


@router.get("/doc/{doc_id}", response_class=HTMLResponse)
def document_page(
    request: Request,
    doc_id: str,
    ok: str = "",
    err: str = "",
    p: Principal = Depends(require("documents.read", html=True)),
) -> HTMLResponse:
    m = load_document(request, p, doc_id)
    audit(request, p, "document.read", target=doc_id, dossier=m.dossier_code, details={"what": "page"})
    return page(request, p, "document.html", m=m, can_edit=p.can("documents.edit"), can_read=p.can("content.read"),
                flash=MESSAGES.get(ok, "") or err, flash_kind="bad" if err else "ok")  # fmt: skip


def _back(doc_id: str, ok: str = "", err: str = "") -> Response:
    q = f"?ok={ok}" if ok else f"?err={quote(err)}" if err else ""
    return RedirectResponse(f"/doc/{doc_id}{q}", status_code=303)


def _message(e: Exception) -> str:
    if isinstance(e, HTTPException):
        return e.detail["message"] if isinstance(e.detail, dict) else str(e.detail)
    return str(e)


@router.post("/doc/{doc_id}/edit")
def edit_form(
    request: Request,
    doc_id: str,
    dossier_code: Annotated[str, Form(max_length=64)],
    kind: Annotated[str, Form(max_length=10)],
    component: Annotated[str, Form(max_length=300)] = "",
    p: Principal = Depends(require("documents.edit")),
) -> Response:
    from sohoa.editing import correct_metadata

    m = load_document(request, p, doc_id)
    old = m.dossier_code
    try:
        correct_metadata(C(request), m, p.name, dossier_code, kind, component)
    except InputError as e:
        return _back(doc_id, err=_message(e))
    audit(request, p, "document.update", target=doc_id, dossier=m.dossier_code,
          details={"dossier_code": dossier_code, "kind": kind, "component": component, "old_dossier": old})  # fmt: skip
    return _back(doc_id, "edit")


@router.post("/doc/{doc_id}/replace")
def replace_form(
    request: Request,
    doc_id: str,
    number: Annotated[int, Form(ge=1, le=100_000)],
    file: UploadFile,
    p: Principal = Depends(require("documents.edit")),
) -> Response:
    from api.limits import copy_limited
    from sohoa.editing import replace_page
    from sohoa.tempfiles import tempdir

    m = load_document(request, p, doc_id)
    name = safe_filename(file.filename or "rescan")
    try:
        with tempdir("upload") as tmp:
            path = Path(tmp) / "rescan"
            with open(path, "wb") as out:
                copy_limited(file.file, out, C(request).settings.max_upload_mb * 1024 * 1024, name)
            replace_page(C(request), m, number, path, name, p.name)
    except InputError as e:
        return _back(doc_id, err=_message(e))
    audit(request, p, "document.replace_page", target=f"{doc_id}/{number}", dossier=m.dossier_code,
          details={"filename": name}, status=303)  # fmt: skip
    return _back(doc_id, "replace")


@router.post("/doc/{doc_id}/delete")
def delete_form(
    request: Request,
    doc_id: str,
    reason: Annotated[str, Form(max_length=500)],
    p: Principal = Depends(require("documents.edit")),
) -> Response:
    from sohoa.editing import soft_delete

    m = load_document(request, p, doc_id)
    try:
        soft_delete(C(request), m, p.name, reason)
    except InputError as e:
        return _back(doc_id, err=_message(e))
    audit(request, p, "document.delete", target=doc_id, dossier=m.dossier_code, details={"reason": reason})
    return _back(doc_id, "delete")


@router.post("/doc/{doc_id}/retry")
def retry_form(request: Request, doc_id: str, p: Principal = Depends(require("documents.edit"))) -> Response:
    from api.routes.documents import retry

    try:
        retry(request, doc_id, p)
    except HTTPException as e:
        return _back(doc_id, err=_message(e))
    return _back(doc_id, "retry")
