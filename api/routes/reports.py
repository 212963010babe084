"""Digitization-rate reports (QĐ 766/QĐ-TTg) for the caller's unit subtree, drill-down and portal export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from api.deps import C, audit, require
from index.rates import Period
from sohoa.auth import Principal

router = APIRouter(tags=["reports"])
PERIOD_HELP = "month:2026-07 | quarter:2026-Q3 | half:2026-H1 | 9months:2026 | year:2026"


def _period(period: str | None, date_from: str | None, date_to: str | None) -> Period:
    from index.rates import parse_period

    try:
        return parse_period(period, date_from, date_to)
    except ValueError as e:
        raise HTTPException(422, {"message": str(e)}) from None


@router.get("/reports/digitization", response_model=None)
def report(
    request: Request,
    period: Annotated[str | None, Query(max_length=40, description=PERIOD_HELP)] = None,
    date_from: Annotated[str | None, Query(max_length=10)] = None,
    date_to: Annotated[str | None, Query(max_length=10)] = None,
    rule: Annotated[str, Query(pattern="^(any|required)$")] = "any",
    format: Annotated[str, Query(pattern="^(json|csv|xlsx)$")] = "json",
    by: Annotated[str, Query(pattern="^(total|unit|level|field|procedure|channel|month)$")] = "unit",
    min_confidence: Annotated[float | None, Query(ge=0, le=100, description="default: the setting")] = None,
    require_signature: Annotated[bool | None, Query(description="default: the setting")] = None,
    p: Principal = Depends(require("reports.read")),
) -> Any:
    from sohoa import reports

    rep = C(request).index.rate_report(_period(period, date_from, date_to), rule, units=p.scope,
                                       min_confidence=min_confidence, require_signature=require_signature)  # fmt: skip
    audit(request, p, "report.read", target=rep.period.label, details={"rule": rule, "format": format, "by": by})
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


@router.get("/reports/digitization/undigitized")
def undigitized(
    request: Request,
    period: Annotated[str | None, Query(max_length=40, description=PERIOD_HELP)] = None,
    date_from: Annotated[str | None, Query(max_length=10)] = None,
    date_to: Annotated[str | None, Query(max_length=10)] = None,
    rule: Annotated[str, Query(pattern="^(any|required)$")] = "any",
    side: Annotated[str, Query(pattern="^(input|output)$")] = "input",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    min_confidence: Annotated[float | None, Query(ge=0, le=100, description="default: the setting")] = None,
    require_signature: Annotated[bool | None, Query(description="default: the setting")] = None,
    p: Principal = Depends(require("reports.read")),
) -> dict[str, Any]:
    per = _period(period, date_from, date_to)
    rows = C(request).index.undigitized(per, rule, side, limit, units=p.scope, min_confidence=min_confidence,
                                        require_signature=require_signature)  # fmt: skip
    audit(request, p, "report.undigitized", target=per.label, details={"rule": rule, "side": side, "count": len(rows)})
    return {"period": per.label, "rule": rule, "side": side, "count": len(rows), "dossiers": rows}


@router.get("/reports/unregistered")
def unregistered(request: Request, p: Principal = Depends(require("reports.read"))) -> dict[str, Any]:
    codes = C(request).index.unregistered(units=p.scope)
    audit(request, p, "report.unregistered", details={"count": len(codes)})
    return {"count": len(codes), "dossier_codes": codes}


@router.get("/exports/portal")
def export_portal(request: Request, p: Principal = Depends(require("reports.read"))) -> dict[str, Any]:
    from sohoa.reports import portal_export

    data = portal_export(C(request).index, units=p.scope)
    audit(request, p, "export.portal", details={"dossiers": len(data)})
    return {"dossiers": data}
