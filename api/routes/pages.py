"""The staff's HTML pages: search and page view (server-rendered, behind the same permissions)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from api.deps import C, audit, load_page, require
from api.routes.search import run_search
from api.templating import TEMPLATES
from sohoa.auth import Principal
from sohoa.context import page_key
from storage import NotFound

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    q: str = "",
    page: int = 1,
    dossier_code: str = "",
    kind: str = "",
    p: Principal = Depends(require("search", html=True)),
) -> HTMLResponse:
    results = None
    if q.strip():
        kind_filter = kind if kind in ("input", "output") else None
        results = run_search(
            request, p, q, dossier_code=dossier_code or None, kind=kind_filter, page=max(1, page), size=20
        )
    session = getattr(request.state, "session", None)
    return TEMPLATES.TemplateResponse(
        request,
        "search.html",
        {"q": q, "results": results, "dossier_code": dossier_code, "kind": kind, "me": p,
         "csrf": session.csrf if session else ""},
    )  # fmt: skip


@router.get("/view/{doc_id}/{number}", response_class=HTMLResponse)
def view(
    request: Request, doc_id: str, number: int, q: str = "", p: Principal = Depends(require("content.read", html=True))
) -> HTMLResponse:
    m = load_page(request, p, doc_id, number)
    try:
        txt = C(request).store.get_bytes(page_key(doc_id, number, "txt")).decode("utf-8")
    except NotFound:
        txt = ""
    audit(request, p, "page.read", target=f"{doc_id}/{number}", dossier=m.dossier_code, details={"what": "view"})
    info = next((x for x in m.pages if x.number == number), None)
    return TEMPLATES.TemplateResponse(
        request, "view.html", {"m": m, "number": number, "text": txt, "info": info, "q": q}
    )
