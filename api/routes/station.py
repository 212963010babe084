"""The scanning station over HTTP: cover sheets to print, and stacks of many dossiers split at them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from api.deps import C, audit, require
from api.routes.documents import _unit_for_upload
from ingest import InputError
from sohoa.auth import Principal
from sohoa.text import nfc, safe_filename

router = APIRouter(tags=["scanning station"])


@router.get("/dossiers/{code}/cover.pdf")
def cover_sheet(
    request: Request,
    code: str,
    kind: str = "",
    component: str = "",
    p: Principal = Depends(require("documents.upload")),
) -> Response:
    """An A4 cover sheet for the dossier (QR code + code in large digits + required components)."""
    from ingest.stack import SheetInfo, cover_pdf
    from ingest.validate import validate_metadata

    ctx = C(request)
    try:
        code, k, comp, _ = validate_metadata(ctx.settings, nfc(code), kind or "input", nfc(component))
    except InputError as e:
        raise HTTPException(422, {"message": str(e)}) from None
    info = SheetInfo(code, kind and k, comp)
    reg = ctx.index.dossier_record(code)
    if reg is not None:
        rec, _ = reg
        if not p.sees_unit(rec.unit):
            raise HTTPException(404, {"message": f"không có hồ sơ {code} trong đơn vị của bạn (no such dossier)"})
        info.procedure, info.procedure_name, info.unit, info.required = (
            rec.procedure, rec.procedure_name, rec.unit, list(rec.required))  # fmt: skip
    audit(request, p, "cover.print", target=code, dossier=code)
    return Response(cover_pdf([info]), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="phieu-tach-{code}.pdf"'})  # fmt: skip


@router.post("/stacks", status_code=202)
def upload_stack(
    request: Request,
    file: UploadFile,
    dossier_code: Annotated[str, Form(max_length=64)] = "",
    kind: Annotated[str, Form(max_length=10)] = "",
    component: Annotated[str, Form(max_length=300)] = "",
    unit: Annotated[str, Form(max_length=300)] = "",
    keep_duplicate: Annotated[bool, Form(description="1: keep a stored content as a new version")] = False,
    p: Principal = Depends(require("documents.upload")),
) -> JSONResponse:
    """A scanned stack (PDF or multi-page TIFF) of many dossiers separated by cover sheets: one document per
    dossier, the sheets removed. Parts that cannot be stored are listed in ``rejected``; the others are kept."""
    from api.limits import copy_limited
    from ingest.service import Accepted
    from ingest.stack import ingest_stack
    from sohoa.tempfiles import tempdir

    ctx = C(request)
    name = safe_filename(file.filename or "stack.pdf")
    unit = _unit_for_upload(request, p, unit)
    with tempdir("upload") as tmp:
        path = Path(tmp) / "stack"
        with open(path, "wb") as out:
            copy_limited(file.file, out, ctx.settings.max_upload_mb * 1024 * 1024, name)
        try:
            results = ingest_stack(ctx, path, name, dossier_code, kind, component, unit, p.name, keep_duplicate)
        except InputError as e:
            raise HTTPException(
                e.status, {"message": str(e), "errors": [{"filename": name, "message": str(e)}]}
            ) from None
    docs: list[dict[str, Any]] = []
    rejected = []
    for r in results:
        if isinstance(r, Accepted):
            m = r.manifest
            audit(request, p, "document.upload", target=m.id, dossier=m.dossier_code,
                  details={"filename": m.filename, "stack": name, "duplicate": r.duplicate}, status=202)  # fmt: skip
            docs.append({"id": m.id, "dossier_code": m.dossier_code, "filename": m.filename, "pages": m.declared_pages,
                         "duplicate": r.duplicate, "duplicate_of": m.id if r.duplicate else m.duplicate_of,
                         "warnings": m.warnings, "url": f"/documents/{m.id}"})  # fmt: skip
        else:
            assert isinstance(r, InputError)
            rejected.append({"filename": r.filename, "message": str(r)})
    return JSONResponse({"documents": docs, "rejected": rejected}, status_code=202)
