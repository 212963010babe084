"""FastAPI application: uploads, status, search, downloads, dossiers; a small HTML search page."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from api.docs import add_offline_docs
from ingest import InputError, UploadItem, accept_batch
from ingest.service import Accepted, BatchError
from sohoa import __version__
from sohoa.context import Context, output_key, page_key
from sohoa.models import Manifest, SearchQuery
from sohoa.settings import Settings, mask_url
from sohoa.text import nfc
from storage import NotFound
from workers.queue import QueueError

log = logging.getLogger("sohoa.api")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _manifest_view(m: Manifest) -> dict[str, Any]:
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


def create_app(
    settings: Settings | None = None, ctx: Context | None = None, run_workers: bool | None = None
) -> FastAPI:
    settings = settings or (ctx.settings if ctx else Settings.from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = ctx is None
        c = ctx or Context(settings)
        app.state.ctx = c
        workers = settings.embedded_broker if run_workers is None else run_workers
        if workers:
            c.queue.start_worker(settings.worker_threads)
            requeued = c.recover()
            if requeued:
                log.info("re-queued %d unfinished document(s) after restart", len(requeued))
        yield
        if own:
            c.close()

    app = FastAPI(
        title="sohoa",
        version=__version__,
        description="Số hóa hồ sơ TTHC: upload scans, OCR them into Vietnamese, search, count digitization.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    add_offline_docs(app)

    def C(request: Request) -> Context:  # noqa: N802
        return request.app.state.ctx

    def load(request: Request, doc_id: str) -> Manifest:
        try:
            return C(request).load_manifest(doc_id)
        except NotFound:
            raise HTTPException(404, {"message": f"không có tài liệu {doc_id} (no such document)"}) from None

    def load_page(request: Request, doc_id: str, number: int) -> Manifest:
        """The document, if it has page *number* (404 with the page count otherwise)."""
        m = load(request, doc_id)
        last = m.page_count or m.declared_pages
        if not 1 <= number <= max(last, 1):
            raise HTTPException(
                404, {"message": f"tài liệu chỉ có {last} trang, không có trang {number} (no such page)"}
            )
        return m

    def blob(request: Request, key: str, media_type: str, filename: str | None = None) -> Response:
        try:
            data = C(request).store.get_bytes(key)
        except NotFound:
            raise HTTPException(404, {"message": "not available (yet): the document may still be processing"}) from None
        headers = {}
        if filename:
            from urllib.parse import quote

            headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(nfc(filename))}"
        return Response(content=data, media_type=media_type, headers=headers)

    @app.get("/health")
    def health(request: Request) -> dict[str, Any]:
        c = C(request)
        c.store.check()
        c.index.check()
        return {
            "status": "ok",
            "storage": mask_url(c.store.url),
            "index": mask_url(c.index.url),
            "broker": mask_url(settings.broker_url),
        }

    @app.post("/documents", status_code=202)
    def upload(
        request: Request,
        files: Annotated[list[UploadFile], File(description="scans: PDF, multi-page TIFF, JPEG, PNG")],
        dossier_code: Annotated[list[str], Form(description="mã hồ sơ, once for all files or once per file")],
        kind: Annotated[list[str], Form(description="input (thành phần) | output (kết quả)")],
        component: Annotated[list[str] | None, Form(description="component name (tên thành phần)")] = None,
        unit: Annotated[list[str] | None, Form(description="receiving unit (đơn vị tiếp nhận)")] = None,
    ) -> JSONResponse:
        n = len(files)
        codes, kinds = _spread("dossier_code", dossier_code, n), _spread("kind", kind, n)
        comps, units = _spread("component", component, n), _spread("unit", unit, n)
        with tempfile.TemporaryDirectory(prefix="sohoa-upload-") as tmp:
            items = []
            for i, f in enumerate(files):
                p = Path(tmp) / f"{i:05d}"
                with open(p, "wb") as out:
                    shutil.copyfileobj(f.file, out, 1024 * 1024)
                items.append(UploadItem(p, nfc(f.filename or f"file-{i + 1}"), codes[i], kinds[i], comps[i], units[i]))
            try:
                results = accept_batch(C(request), items, all_or_nothing=True)
            except BatchError as e:
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
            docs.append(
                {
                    "id": r.manifest.id,
                    "filename": r.manifest.filename,
                    "dossier_code": r.manifest.dossier_code,
                    "kind": r.manifest.kind,
                    "status": r.manifest.status,
                    "pages": r.manifest.declared_pages,
                    "duplicate": r.duplicate,
                    "warnings": r.manifest.warnings,
                    "url": f"/documents/{r.manifest.id}",
                }
            )
        return JSONResponse({"documents": docs}, status_code=202)

    @app.get("/documents")
    def list_documents(
        request: Request, dossier_code: str | None = None, status: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        docs = C(request).index.list_documents(
            dossier_code=dossier_code, statuses=[status] if status else None, limit=min(limit, 10_000)
        )
        return {"documents": [d.to_dict() for d in docs]}

    @app.get("/documents/{doc_id}")
    def get_document(request: Request, doc_id: str) -> dict[str, Any]:
        return _manifest_view(load(request, doc_id))

    @app.post("/documents/{doc_id}/retry", status_code=202)
    def retry(request: Request, doc_id: str) -> dict[str, Any]:
        from sohoa.models import Status

        m = load(request, doc_id)
        if m.status not in (Status.FAILED.value, Status.DONE.value):
            raise HTTPException(
                409, {"message": f"document is {m.status}; only done or failed documents can be re-run"}
            )
        m.attempts = 0
        m.set_status(Status.QUEUED)
        C(request).save_manifest(m)
        C(request).queue.enqueue(m.id)
        return _manifest_view(m)

    @app.get("/documents/{doc_id}/original")
    def original(request: Request, doc_id: str) -> Response:
        m = load(request, doc_id)
        return blob(request, m.original_key, m.media_type, m.filename)

    @app.get("/documents/{doc_id}/pdf")
    def pdf(request: Request, doc_id: str) -> Response:
        m = load(request, doc_id)
        return blob(request, output_key(doc_id, "document.pdf"), "application/pdf", Path(m.filename).stem + ".ocr.pdf")

    @app.get("/documents/{doc_id}/text")
    def text(request: Request, doc_id: str) -> Response:
        load(request, doc_id)
        return blob(request, output_key(doc_id, "document.txt"), "text/plain; charset=utf-8")

    @app.get("/documents/{doc_id}/pages/{number}")
    def page_image(request: Request, doc_id: str, number: int) -> Response:
        load_page(request, doc_id, number)
        return blob(request, page_key(doc_id, number, "jpg"), "image/jpeg")

    @app.get("/documents/{doc_id}/pages/{number}/text")
    def page_text(request: Request, doc_id: str, number: int) -> Response:
        load_page(request, doc_id, number)
        return blob(request, page_key(doc_id, number, "txt"), "text/plain; charset=utf-8")

    @app.get("/documents/{doc_id}/pages/{number}/hocr")
    def page_hocr(request: Request, doc_id: str, number: int) -> Response:
        load_page(request, doc_id, number)
        return blob(request, page_key(doc_id, number, "hocr"), "text/html; charset=utf-8")

    def _search(request: Request, q: str, **filters: Any) -> dict[str, Any]:
        try:
            norm: dict[str, Any] = {k: nfc(v) if isinstance(v, str) else v for k, v in filters.items()}
            sq = SearchQuery(q=nfc(q), **norm)
        except ValueError as e:
            raise HTTPException(422, {"message": str(e)}) from None
        return C(request).index.search(sq).to_dict()

    @app.get("/search")
    def search(
        request: Request,
        q: Annotated[str, Query(min_length=1, description='words, with or without diacritics; "quoted phrases"')],
        dossier_code: str | None = None,
        kind: str | None = None,
        unit: str | None = None,
        date_from: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive (received date)")] = None,
        date_to: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive")] = None,
        page: Annotated[int, Query(ge=1)] = 1,
        size: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        res = _search(
            request,
            q,
            dossier_code=dossier_code,
            kind=kind,
            unit=unit,
            date_from=date_from,
            date_to=date_to,
            page=page,
            size=size,
        )
        for h in res["hits"]:
            h["page_url"] = f"/documents/{h['document_id']}/pages/{h['page']}"
            h["view_url"] = f"/view/{h['document_id']}/{h['page']}"
        return res

    @app.get("/dossiers/{code}")
    def dossier(request: Request, code: str) -> dict[str, Any]:
        ix = C(request).index
        summary = ix.dossier(nfc(code))
        reg = ix.dossier_record(nfc(code))
        if not summary.documents and reg is None:
            raise HTTPException(404, {"message": f"no documents and no registry row for dossier {code}"})
        out = summary.to_dict()
        out["registered"] = reg is not None
        if reg is not None:
            rec, flags = reg
            out["registry"] = {**rec.__dict__, "required": list(rec.required)}
            out["required_components_digitized"] = flags.required_ok
            out["result_counts_as_digitized"] = flags.has_output or rec.no_result
        return out

    # -- registry and digitization-rate reports (QĐ 766) -------------------------------------------
    def _period(period: str | None, date_from: str | None, date_to: str | None) -> Any:
        from index.rates import parse_period

        try:
            return parse_period(period, date_from, date_to)
        except ValueError as e:
            raise HTTPException(422, {"message": str(e)}) from None

    @app.post("/registry/import")
    def registry_import(
        request: Request,
        file: Annotated[UploadFile, File(description="registry export: CSV, XLSX or JSON with portal field names")],
        strict: bool = False,
    ) -> dict[str, Any]:
        from ingest.registry_file import RegistryFileError
        from sohoa.reports import import_registry

        suffix = Path(file.filename or "registry.csv").suffix.lower() or ".csv"
        with tempfile.TemporaryDirectory(prefix="sohoa-registry-") as tmp:
            p = Path(tmp) / f"registry{suffix}"
            with open(p, "wb") as out:
                shutil.copyfileobj(file.file, out)
            try:
                res = import_registry(C(request).index, p, settings.dossier_code_pattern, strict=strict)
            except RegistryFileError as e:
                raise HTTPException(422, {"message": str(e)}) from None
        return res.to_dict()

    @app.post("/dossiers")
    def push_dossiers(request: Request, rows: list[dict[str, Any]], strict: bool = False) -> dict[str, Any]:
        """Bulk push of registry records (portal field names: MaHoSo, MaTTHC, NgayTiepNhan, …)."""
        from index.rates import ImportResult
        from ingest.registry_file import RegistryFileError, parse_rows

        try:
            records, errors = parse_rows(rows, settings.dossier_code_pattern, first_line=1)
        except RegistryFileError as e:
            raise HTTPException(422, {"message": str(e)}) from None
        if errors and strict:
            return ImportResult(errors=errors, refused=True).to_dict()
        res = C(request).index.upsert_dossiers(records)
        res.errors = errors
        return res.to_dict()

    @app.get("/reports/digitization", response_model=None)
    def report(
        request: Request,
        period: Annotated[
            str | None, Query(description="month:2026-07 | quarter:2026-Q3 | half:2026-H1 | 9months:2026 | year:2026")
        ] = None,
        date_from: str | None = None,
        date_to: str | None = None,
        rule: Annotated[str, Query(pattern="^(any|required)$")] = "any",
        format: Annotated[str, Query(pattern="^(json|csv|xlsx)$")] = "json",
        by: Annotated[str, Query(pattern="^(total|unit|level|field|procedure|channel|month)$")] = "unit",
    ) -> Any:
        from sohoa import reports

        rep = C(request).index.rate_report(_period(period, date_from, date_to), rule)
        name = f"so-hoa-{rep.period.label.replace(':', '-')}-{rule}"
        if format == "csv":
            return Response(
                reports.to_csv(rep, by),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}-{by}.csv"'},
            )
        if format == "xlsx":
            return Response(
                reports.to_xlsx(rep),
                media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
            )
        return rep.to_dict()

    @app.get("/reports/digitization/undigitized")
    def undigitized(
        request: Request,
        period: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        rule: Annotated[str, Query(pattern="^(any|required)$")] = "any",
        side: Annotated[str, Query(pattern="^(input|output)$")] = "input",
        limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    ) -> dict[str, Any]:
        p = _period(period, date_from, date_to)
        rows = C(request).index.undigitized(p, rule, side, limit)
        return {"period": p.label, "rule": rule, "side": side, "count": len(rows), "dossiers": rows}

    @app.get("/reports/unregistered")
    def unregistered(request: Request) -> dict[str, Any]:
        codes = C(request).index.unregistered()
        return {"count": len(codes), "dossier_codes": codes}

    @app.get("/exports/portal")
    def export_portal(request: Request) -> dict[str, Any]:
        from sohoa.reports import portal_export

        return {"dossiers": portal_export(C(request).index)}

    # -- staff pages ---------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, q: str = "", page: int = 1, dossier_code: str = "", kind: str = "") -> HTMLResponse:
        results = None
        if q.strip():
            results = _search(
                request, q, dossier_code=dossier_code or None, kind=kind or None, page=max(1, page), size=20
            )
        return TEMPLATES.TemplateResponse(
            request, "search.html", {"q": q, "results": results, "dossier_code": dossier_code, "kind": kind}
        )

    @app.get("/view/{doc_id}/{number}", response_class=HTMLResponse, include_in_schema=False)
    def view(request: Request, doc_id: str, number: int, q: str = "") -> HTMLResponse:
        m = load_page(request, doc_id, number)
        try:
            txt = C(request).store.get_bytes(page_key(doc_id, number, "txt")).decode("utf-8")
        except NotFound:
            txt = ""
        info = next((p for p in m.pages if p.number == number), None)
        return TEMPLATES.TemplateResponse(
            request, "view.html", {"m": m, "number": number, "text": txt, "info": info, "q": q}
        )

    @app.exception_handler(InputError)
    def input_error(_: Request, e: InputError) -> JSONResponse:
        return JSONResponse({"detail": {"message": str(e)}}, status_code=e.status)

    return app
