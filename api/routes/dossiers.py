"""Dossiers and the registry (the QĐ 766 denominator): dossier view, registry import, bulk push."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile

from api.deps import C, app_state, audit, require
from index.rates import DossierRecord, ImportResult
from sohoa.auth import Principal
from sohoa.text import nfc

router = APIRouter(tags=["dossiers"])


@router.get("/dossiers/{code}")
def dossier(request: Request, code: str, p: Principal = Depends(require("dossiers.read"))) -> dict[str, Any]:
    ix = C(request).index
    code = nfc(code)
    summary = ix.dossier(code, units=p.scope)
    reg = ix.dossier_record(code)
    if reg is not None and not p.sees_unit(reg[0].unit) and not summary.documents:
        reg = None
    if not summary.documents and reg is None:
        audit(request, p, "dossier.read", target=code, dossier=code, outcome="failed", status=404)
        raise HTTPException(404, {"message": f"không có hồ sơ {code} trong đơn vị của bạn (no such dossier)"})
    audit(request, p, "dossier.read", target=code, dossier=code)
    out = summary.to_dict()
    out["registered"] = reg is not None
    if reg is not None:
        rec, flags = reg
        out["registry"] = {**rec.__dict__, "required": list(rec.required)}
        out["required_components_digitized"] = flags.required_ok
        out["result_counts_as_digitized"] = flags.has_output or rec.no_result
    return out


def _in_scope(
    p: Principal, records: list[DossierRecord], errors: list[tuple[int, str]]
) -> tuple[list[DossierRecord], list[tuple[int, str]]]:
    """Rows of units outside the caller's units are refused, each with a message."""
    if p.scope is None:
        return records, errors
    keep = [r for r in records if p.sees_unit(r.unit)]
    errors = errors + [
        (0, f"hồ sơ {r.code}: đơn vị {r.unit or '(trống)'} ngoài phạm vi của bạn (unit outside your units)")
        for r in records
        if not p.sees_unit(r.unit)
    ]
    return keep, errors


def _import(request: Request, p: Principal, records: list[DossierRecord], errors: list[tuple[int, str]],
            strict: bool, source: str) -> dict[str, Any]:  # fmt: skip
    records, errors = _in_scope(p, records, errors)
    if errors and strict:
        res = ImportResult(errors=errors, refused=True)
    else:
        res = C(request).index.upsert_dossiers(records)
        res.errors = errors
    audit(request, p, "registry.import", target=source,
          details={"inserted": res.inserted, "updated": res.updated, "errors": len(errors), "refused": res.refused},
          outcome="failed" if res.refused else "ok")  # fmt: skip
    return res.to_dict()


@router.post("/registry/import")
def registry_import(
    request: Request,
    file: Annotated[UploadFile, File(description="registry export: CSV, XLSX or JSON with portal field names")],
    strict: bool = False,
    p: Principal = Depends(require("registry.write")),
) -> dict[str, Any]:
    from api.limits import copy_limited
    from ingest.registry_file import RegistryFileError, read_registry
    from sohoa.tempfiles import tempdir

    settings = app_state(request).settings
    name = nfc(file.filename or "registry.csv")
    suffix = Path(name).suffix.lower() or ".csv"
    with tempdir("registry") as tmp:
        path = Path(tmp) / f"registry{suffix}"
        with open(path, "wb") as out:
            copy_limited(file.file, out, settings.max_upload_mb * 1024 * 1024, name)
        try:
            records, errors = read_registry(path, settings.dossier_code_pattern)
        except RegistryFileError as e:
            audit(request, p, "registry.import", target=name, outcome="failed", status=422)
            raise HTTPException(422, {"message": str(e)}) from None
    return _import(request, p, records, errors, strict, name)


@router.post("/dossiers")
def push_dossiers(
    request: Request,
    rows: list[dict[str, Any]],
    strict: bool = False,
    p: Principal = Depends(require("registry.write")),
) -> dict[str, Any]:
    """Bulk push of registry records (portal field names: MaHoSo, MaTTHC, NgayTiepNhan, …)."""
    from ingest.registry_file import RegistryFileError, parse_rows

    if len(rows) > 50_000:
        raise HTTPException(413, {"message": "tối đa 50.000 hồ sơ mỗi lần (at most 50,000 rows per request)"})
    try:
        records, errors = parse_rows(rows, app_state(request).settings.dossier_code_pattern, first_line=1)
    except RegistryFileError as e:
        raise HTTPException(422, {"message": str(e)}) from None
    return _import(request, p, records, errors, strict, "POST /dossiers")
