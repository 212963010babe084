"""The staff's pages: search (grouped by dossier, with the API's filters) and the page view (highlights on
the page image and in the text, thumbnails, keyboard navigation between hits)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import C, audit, load_page, require
from api.highlight import mark_text, query_words, word_boxes
from api.routes.search import run_search
from api.ui import NAV, page
from sohoa.auth import Principal
from sohoa.context import page_key
from sohoa.models import SearchQuery
from sohoa.text import fold, has_diacritics, nfc
from storage import NotFound

router = APIRouter(include_in_schema=False)
FILTERS = ("dossier_code", "kind", "unit", "date_from", "date_to")
MAX_DOC_PAGES = 10_000  # bound on the matching-pages loop of the view (documents are at most 2,000 pages)


def _group(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hits grouped by dossier, in the order of each dossier's best hit."""
    groups: dict[str, dict[str, Any]] = {}
    for h in hits:
        g = groups.setdefault(h["dossier_code"], {"code": h["dossier_code"], "unit": h["unit"], "hits": []})
        g["hits"].append(h)
    return list(groups.values())


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, q: str = "", page_no: int = 1, p: Principal = Depends(require("docs.read", html=True))
) -> Response:
    """The search page; a signed-in user whose roles do not search lands on their first page instead."""
    if not p.can("search"):
        first = next((path for path, _label, perm in NAV if p.can(perm)), "/auth/me")
        return RedirectResponse(first, status_code=303)
    params = {k: (request.query_params.get(k) or "").strip() for k in FILTERS}
    results, error, suggestions = None, "", []
    if q.strip():
        try:
            results = run_search(request, p, q, page=max(1, page_no), size=50,
                                 **{k: v or None for k, v in params.items()})  # fmt: skip
        except HTTPException as e:
            error = e.detail["message"] if isinstance(e.detail, dict) else str(e.detail)
        if results is not None and results["total"] == 0:
            if has_diacritics(q):
                suggestions.append(("Tìm không dấu: " + fold(q), {"q": fold(q), **params}))
            if any(params.values()):
                suggestions.append(("Bỏ các bộ lọc", {"q": q}))
    groups = _group(results["hits"]) if results else []
    more = results is not None and results["total"] > results["page"] * results["size"]
    return page(request, p, "search.html", q=q, params=params, results=results, groups=groups, error=error,
                suggestions=[(label, urlencode(qs)) for label, qs in suggestions], more=more,
                next_qs=urlencode({"q": q, **params, "page_no": page_no + 1}))  # fmt: skip


def _matching_pages(request: Request, p: Principal, doc_id: str, q: str) -> list[int]:
    """Pages of this document matching *q* (for n / p): the index searched with a document filter, not every
    page text read from storage. Same matching rules as the search (diacritics-insensitive, phrases)."""
    try:
        sq = SearchQuery(q=nfc(q), units=p.scope, document_id=doc_id, size=100)
    except ValueError:
        return []
    index = C(request).index
    found: set[int] = set()
    while True:
        res = index.search(sq)
        found.update(h.page for h in res.hits)
        if len(res.hits) < sq.size or sq.page * sq.size >= MAX_DOC_PAGES:
            return sorted(found)
        sq.page += 1


@router.get("/view/{doc_id}/{number}", response_class=HTMLResponse)
def view(
    request: Request, doc_id: str, number: int, q: str = "", p: Principal = Depends(require("content.read", html=True))
) -> HTMLResponse:
    m = load_page(request, p, doc_id, number)
    store = C(request).store

    def read(n: int, ext: str) -> str:
        try:
            return store.get_bytes(page_key(doc_id, n, ext)).decode("utf-8")
        except NotFound:
            return ""

    text = read(number, "txt")
    boxes = word_boxes(read(number, "hocr"), q) if q else []
    hit_pages = _matching_pages(request, p, doc_id, q) if query_words(q) else []
    audit(request, p, "page.read", target=f"{doc_id}/{number}", dossier=m.dossier_code, details={"what": "view"})
    info = next((x for x in m.pages if x.number == number), None)
    return page(request, p, "view.html", m=m, number=number, q=q, info=info, boxes=boxes,
                marked=mark_text(text, q), hit_pages=hit_pages, qs=urlencode({"q": q}) if q else "")  # fmt: skip
