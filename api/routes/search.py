"""Full-text search, scoped to the caller's units inside the index query."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from api.deps import C, audit, require
from sohoa.auth import Principal
from sohoa.models import MAX_QUERY_CHARS, SearchQuery
from sohoa.text import nfc

router = APIRouter(tags=["search"])


def run_search(request: Request, p: Principal, q: str, **filters: Any) -> dict[str, Any]:
    """Search in the caller's units; every search is audited with its query text and filters."""
    clean: dict[str, Any] = {k: nfc(v) if isinstance(v, str) else v for k, v in filters.items()}
    try:
        sq = SearchQuery(q=nfc(q), units=p.scope, **clean)
    except ValueError as e:
        audit(request, p, "search", details={"q": nfc(q)[:MAX_QUERY_CHARS], **clean}, outcome="failed", status=422)
        raise HTTPException(422, {"message": str(e)}) from None
    res = C(request).index.search(sq).to_dict()
    audit(request, p, "search", dossier=clean.get("dossier_code") or "",
          details={"q": sq.q, **{k: v for k, v in clean.items() if v}, "total": res["total"]})  # fmt: skip
    total = f"{res['total']:,}".replace(",", ".")
    res["total_text"] = f"hơn {total} kết quả" if res["total_capped"] else f"{total} kết quả"
    for h in res["hits"]:
        h["page_url"] = f"/documents/{h['document_id']}/pages/{h['page']}"
        h["view_url"] = f"/view/{h['document_id']}/{h['page']}"
    return res


@router.get("/search")
def search(
    request: Request,
    q: Annotated[
        str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description='words, with or without diacritics; "phrases"')
    ],
    dossier_code: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(pattern="^(input|output)$")] = None,
    unit: Annotated[str | None, Query(max_length=200)] = None,
    date_from: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD, inclusive (received)")] = None,
    date_to: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD, inclusive")] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 10,
    p: Principal = Depends(require("search")),
) -> dict[str, Any]:
    return run_search(request, p, q, dossier_code=dossier_code, kind=kind, unit=unit, date_from=date_from,
                      date_to=date_to, page=page, size=size)  # fmt: skip
