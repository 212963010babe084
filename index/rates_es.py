"""Registry and rate report on Elasticsearch (mixed into :class:`index.es.EsIndex`), with aggregations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError, helpers

from index.rates import (
    DIMENSIONS,
    DossierRecord,
    Flags,
    ImportResult,
    Line,
    Period,
    Report,
    compute_flags,
    period_bounds,
    scope_keys,
    scope_values,
)
from index.rates_sqlite import missing_view
from sohoa.models import DocRecord
from sohoa.text import nfc

_KW = {"type": "keyword"}
_INT = {"type": "byte"}
DOSSIER_MAPPING: dict[str, Any] = {
    "properties": {
        **{k: _KW for k in ("code", "procedure", "procedure_name", "field_code", "field_name", "field", "channel",
                            "received", "due", "resolved", "status", "unit", "level", "required", "components",
                            "received_month", "resolved_month")},
        **{k: _INT for k in ("no_result", "signed", "has_input", "required_ok", "has_output", "output_ok")},
    }
}  # fmt: skip
_REC_FIELDS = tuple(DossierRecord.__dataclass_fields__)
_DIM_FIELD = {"unit": "unit", "level": "level", "field": "field", "procedure": "procedure", "channel": "channel"}
MATCH_NONE: dict[str, Any] = {"bool": {"must_not": [{"match_all": {}}]}}


def _body(r: DossierRecord, f: Flags) -> dict[str, Any]:
    d: dict[str, Any] = {k: (nfc(v) if isinstance(v, str) else v) for k, v in r.__dict__.items()}
    d["required"] = [nfc(x) for x in r.required]
    d["no_result"] = int(r.no_result)
    d["signed"] = int(r.signed)
    d["field"] = d["field_name"] or d["field_code"]
    d["received_month"] = r.received[:7]
    d["resolved_month"] = r.resolved[:7]
    d.update(has_input=int(f.has_input), required_ok=int(f.required_ok), has_output=int(f.has_output),
             output_ok=int(f.has_output or r.no_result), components=list(f.components))  # fmt: skip
    return d


def _from_source(s: dict[str, Any]) -> tuple[DossierRecord, Flags]:
    rec = DossierRecord(**{k: s.get(k, "") for k in _REC_FIELDS if k not in ("no_result", "required", "signed")})
    rec.no_result, rec.required = bool(s.get("no_result")), tuple(s.get("required") or ())
    rec.signed = bool(s.get("signed"))
    flags = Flags(bool(s.get("has_input")), bool(s.get("required_ok")), bool(s.get("has_output")),
                  tuple(s.get("components") or ()))  # fmt: skip
    return rec, flags


class EsRegistry:
    es: Elasticsearch
    docs: str
    dossiers: str
    digitized_min_confidence: float = 0.0
    digitized_require_signature: bool = False

    def _unit_filter(self, index: str, units: tuple[str, ...]) -> dict[str, Any]:
        """A filter clause keeping the rows of *index* whose ``unit`` is in the caller's scope: the unit values
        stored in *index* (a ``terms`` aggregation, a handful of buckets) whose unit key is one of the scope's."""
        if not scope_keys(units):
            return MATCH_NONE
        res = self.es.search(index=index, size=0, aggs={"u": {"terms": {"field": "unit", "size": 65000}}})
        values = scope_values((str(b["key"]) for b in res["aggregations"]["u"]["buckets"]), units)
        return {"terms": {"unit": values}} if values else MATCH_NONE

    def _flags(self, rec: DossierRecord, docs: list[DocRecord]) -> Flags:
        unsigned = self.digitized_require_signature and not rec.signed
        return compute_flags(docs, rec.required, self.digitized_min_confidence, unsigned)

    def _ensure_registry(self) -> None:
        if not self.es.indices.exists(index=self.dossiers):
            try:
                self.es.indices.create(index=self.dossiers, mappings=DOSSIER_MAPPING)
            except Exception as e:
                if "resource_already_exists" not in str(e):
                    raise

    def _docs_by_code(self, codes: list[str]) -> dict[str, list[DocRecord]]:
        out: dict[str, list[DocRecord]] = {c: [] for c in codes}
        if not codes:
            return out
        after: list[Any] | None = None
        while True:  # every document of these dossiers, page by page
            kw: dict[str, Any] = {"index": self.docs, "query": {"terms": {"dossier_code": codes}}, "size": 5000,
                                  "sort": [{"id": "asc"}]}  # fmt: skip
            if after:
                kw["search_after"] = after
            hits = self.es.search(**kw)["hits"]["hits"]
            for h in hits:
                d = DocRecord(**h["_source"])
                out.setdefault(d.dossier_code, []).append(d)
            if len(hits) < 5000:
                return out
            after = hits[-1]["sort"]

    def _refresh_flags(self, code: str) -> None:
        try:
            src = self.es.get(index=self.dossiers, id=nfc(code))["_source"]
        except NotFoundError:
            return
        rec, _ = _from_source(src)
        flags = self._flags(rec, self._docs_by_code([rec.code])[rec.code])
        self.es.index(index=self.dossiers, id=rec.code, document=_body(rec, flags), refresh=True)

    def upsert_dossiers(self, records: list[DossierRecord]) -> ImportResult:
        res = ImportResult()
        for i in range(0, len(records), 1000):
            batch = [DossierRecord(**{**r.__dict__, "code": nfc(r.code)}) for r in records[i : i + 1000]]
            existing = self.es.mget(index=self.dossiers, ids=[r.code for r in batch])["docs"]
            old = {d["_id"]: _from_source(d["_source"])[0] for d in existing if d.get("found")}
            changed = []
            for r in batch:
                prev = old.get(r.code)
                norm = _from_source(_body(r, Flags()))[0]
                if prev is not None and prev.key() == norm.key():
                    res.unchanged += 1
                    continue
                changed.append(r)
                if prev is None:
                    res.inserted += 1
                else:
                    res.updated += 1
            self._write_with_flags(changed)
        return res

    def _write_with_flags(self, records: list[DossierRecord]) -> None:
        """Index registry rows with flags computed from their documents, in bulk."""
        docs = self._docs_by_code([r.code for r in records])
        actions = [
            {"_index": self.dossiers, "_id": r.code,
             "_source": _body(r, self._flags(r, docs.get(r.code, [])))}
            for r in records
        ]  # fmt: skip
        if actions:
            helpers.bulk(self.es, actions, refresh=True)

    def registry(self, *, units: tuple[str, ...] | None = None) -> Iterator[tuple[DossierRecord, Flags]]:
        after: list[Any] | None = None
        query = {"match_all": {}} if units is None else {"bool": {"filter": [self._unit_filter(self.dossiers, units)]}}
        while True:
            kw: dict[str, Any] = {"index": self.dossiers, "size": 1000, "sort": [{"code": "asc"}], "query": query}
            if after:
                kw["search_after"] = after
            hits = self.es.search(**kw)["hits"]["hits"]
            for h in hits:
                yield _from_source(h["_source"])
            if len(hits) < 1000:
                return
            after = hits[-1]["sort"]

    def rebuild_flags(self) -> int:
        recs = [r for r, _ in self.registry()]
        for i in range(0, len(recs), 1000):
            self._write_with_flags(recs[i : i + 1000])
        return len(recs)

    def dossier_record(self, code: str) -> tuple[DossierRecord, Flags] | None:
        try:
            return _from_source(self.es.get(index=self.dossiers, id=nfc(code))["_source"])
        except NotFoundError:
            return None

    def unregistered(self, *, units: tuple[str, ...] | None = None) -> list[str]:
        query = {"match_all": {}} if units is None else {"bool": {"filter": [self._unit_filter(self.docs, units)]}}
        res = self.es.search(
            index=self.docs, size=0, query=query, aggs={"codes": {"terms": {"field": "dossier_code", "size": 65000}}}
        )
        codes = sorted(b["key"] for b in res["aggregations"]["codes"]["buckets"])
        known: set[str] = set()
        for i in range(0, len(codes), 1000):
            got = self.es.mget(index=self.dossiers, ids=codes[i : i + 1000])["docs"]
            known |= {d["_id"] for d in got if d.get("found")}
        return [c for c in codes if c not in known]

    def _side(
        self, date_field: str, month_field: str, flag: str, period: Period, scope: list[dict[str, Any]]
    ) -> tuple[Line, dict[str, dict]]:
        a, b = period_bounds(period)
        query: dict[str, Any] = {"range": {date_field: {"gte": a, "lt": b}}}
        if scope:
            query = {"bool": {"filter": [query, *scope]}}
        aggs: dict[str, Any] = {"dig": {"sum": {"field": flag}}}
        fields = {**_DIM_FIELD, "month": month_field}
        for dim in DIMENSIONS:
            aggs[f"by_{dim}"] = {"terms": {"field": fields[dim], "size": 65000, "missing": ""},
                                 "aggs": {"dig": {"sum": {"field": flag}}}}  # fmt: skip
        res = self.es.search(
            index=self.dossiers, size=0, track_total_hits=True,
            query=query, aggs=aggs,
        )  # fmt: skip
        total_hits = res["hits"]["total"]
        n = int(total_hits["value"] if isinstance(total_hits, dict) else total_hits)
        total = Line("total", n, int(res["aggregations"]["dig"]["value"] or 0))
        per = {
            dim: {str(bk["key"]): (int(bk["doc_count"]), int(bk["dig"]["value"] or 0))
                  for bk in res["aggregations"][f"by_{dim}"]["buckets"]}
            for dim in DIMENSIONS
        }  # fmt: skip
        return total, per

    def rate_report(self, period: Period, rule: str = "any", *, units: tuple[str, ...] | None = None) -> Report:
        flag = "required_ok" if rule == "required" else "has_input"
        scope = [] if units is None else [self._unit_filter(self.dossiers, units)]
        t_in, in_per = self._side("received", "received_month", flag, period, scope)
        t_out, out_per = self._side("resolved", "resolved_month", "output_ok", period, scope)
        total = Line("total", t_in.received, t_in.received_digitized, t_out.received, t_out.received_digitized)
        breakdowns: dict[str, list[Line]] = {}
        for dim in DIMENSIONS:
            keys = sorted(set(in_per[dim]) | set(out_per[dim]))
            breakdowns[dim] = [Line(k, *in_per[dim].get(k, (0, 0)), *out_per[dim].get(k, (0, 0))) for k in keys]
        return Report(period, rule, self.digitized_min_confidence, total, breakdowns)

    def undigitized(
        self,
        period: Period,
        rule: str = "any",
        side: str = "input",
        limit: int = 1000,
        *,
        units: tuple[str, ...] | None = None,
    ) -> list[dict[str, Any]]:
        a, b = period_bounds(period)
        if side == "output":
            filters: list[dict[str, Any]] = [{"range": {"resolved": {"gte": a, "lt": b}}}, {"term": {"output_ok": 0}}]
        else:
            flag = "required_ok" if rule == "required" else "has_input"
            filters = [{"range": {"received": {"gte": a, "lt": b}}}, {"term": {flag: 0}}]
        if units is not None:
            filters.append(self._unit_filter(self.dossiers, units))
        res = self.es.search(index=self.dossiers, query={"bool": {"filter": filters}}, size=limit,
                             sort=[{"received": "asc"}, {"code": "asc"}])  # fmt: skip
        return [missing_view(*_from_source(h["_source"])) for h in res["hits"]["hits"]]
