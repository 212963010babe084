"""The audit log, read-only, for auditors. Nothing in the API can change or delete an entry."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from api.deps import app_state, audit, require
from sohoa.auth import Principal

router = APIRouter(tags=["audit"])


def _day(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, {"message": f"{name}: ngày không hợp lệ {value!r}, cần dạng YYYY-MM-DD"}) from None


@router.get("/audit")
def read_audit(
    request: Request,
    user: Annotated[str | None, Query(max_length=80)] = None,
    dossier: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    date_from: Annotated[str | None, Query(max_length=10)] = None,
    date_to: Annotated[str | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    p: Principal = Depends(require("audit.read")),
) -> dict[str, Any]:
    since, until = _day("date_from", date_from), _day("date_to", date_to)
    log = app_state(request).audit
    events = log.query(user=user, dossier=dossier, action=action, since=since, until=until, limit=limit)
    audit(request, p, "audit.read", details={"user": user, "dossier": dossier, "action": action,
                                             "from": date_from, "to": date_to, "count": len(events)})  # fmt: skip
    return {"count": len(events), "events": [e.to_dict() for e in events]}
