"""Registry and rate report on Elasticsearch (mixed into :class:`index.es.EsIndex`), with aggregations.

Each dossier document keeps what its scans are (best confidences ``in_conf`` / ``req_conf`` / ``out_conf``,
``-1`` = nothing done; see :mod:`sohoa.domain`), never a rule. A report runs, per side, one ``terms``
aggregation per dimension over the period's rows and the same over the rows that are digitized under the
report's rules (a ``range`` on the confidence, a ``term`` on ``signed``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from elasticsearch import Elasticsearch, NotFoundError, helpers

from sohoa.domain import (
    DIMENSIONS,
    Confidence,
    DigitizedRules,
    DossierRecord,
    Flags,
    ImportResult,
    Line,
    Period,
    Report,
    dossier_confidence,
    missing_view,
    period_bounds,
    scope_keys,
    scope_values,
)
from sohoa.models import DocRecord
from sohoa.text import nfc

log = logging.getLogger("sohoa.index")

_KW = {"type": "keyword"}
_INT = {"type": "byte"}
_CONF = {"type": "double"}
DOSSIER_MAPPING: dict[str, Any] = {
    "properties": {
        **{k: _KW for k in ("code", "procedure", "procedure_name", "field_code", "field_name", "field", "channel",
                            "received", "due", "resolved", "status", "unit", "level", "required", "components",
                            "received_month", "resolved_month", "comp_conf")},
        **{k: _INT for k in ("no_result", "signed", "has_input", "required_ok", "has_output", "output_ok")},
        **{k: _CONF for k in ("in_conf", "req_conf", "out_conf")},
    }
}  # fmt: skip
_REC_FIELDS = tuple(DossierRecord.__dataclass_fields__)
_DIM_FIELD = {"unit": "unit", "level": "level", "field": "field", "procedure": "procedure", "channel": "channel"}
MATCH_NONE: dict[str, Any] = {"bool": {"must_not": [{"match_all": {}}]}}


def _body(r: DossierRecord, c: Confidence) -> dict[str, Any]:
    d: dict[str, Any] = {k: (nfc(v) if isinstance(v, str) else v) for k, v in r.__dict__.items()}
    d["required"] = [nfc(x) for x in r.required]
    d["no_result"] = int(r.no_result)
    d["signed"] = int(r.signed)
    d["field"] = d["field_name"] or d["field_code"]
    d["received_month"] = r.received[:7]
    d["resolved_month"] = r.resolved[:7]
    f = c.flags(None, DigitizedRules())  # what is done, at any confidence (informational)
    d.update(has_input=int(f.has_input), required_ok=int(f.required_ok), has_output=int(f.has_output),
             output_ok=int(f.has_output or r.no_result), components=list(f.components),
             in_conf=c.input, req_conf=c.required, out_conf=c.output,
             comp_conf=json.dumps(c.components, ensure_ascii=False, sort_keys=True))  # fmt: skip
    return d


def _from_source(s: dict[str, Any]) -> tuple[DossierRecord, Confidence]:
    rec = DossierRecord(**{k: s.get(k, "") for k in _REC_FIELDS if k not in ("no_result", "required", "signed")})
    rec.no_result, rec.required = bool(s.get("no_result")), tuple(s.get("required") or ())
    rec.signed = bool(s.get("signed"))
    conf = Confidence(float(s.get("in_conf", -1)), float(s.get("req_conf", -1)), float(s.get("out_conf", -1)),
                      json.loads(s.get("comp_conf") or "{}"))  # fmt: skip
    return rec, conf


def _digitized(side: str, rule: str, rules: DigitizedRules) -> dict[str, Any]:
    """Filter: the rows digitized on *side* (received/resolved) under *rule* and *rules*."""
    t = max(0.0, rules.min_confidence)
    if side == "resolved":
        return {"bool": {"should": [{"range": {"out_conf": {"gte": t}}}, {"term": {"no_result": 1}}],
                         "minimum_should_match": 1}}  # fmt: skip
    f: list[dict[str, Any]] = [{"range": {"req_conf" if rule == "required" else "in_conf": {"gte": t}}}]
    if rules.require_signature:
        f.append({"term": {"signed": 1}})
    return {"bool": {"filter": f}}


class EsRegistry:
    es: Elasticsearch
    docs: str
    dossiers: str

    if TYPE_CHECKING:  # provided by sohoa.registry.Registry

        def report_rules(
            self, min_confidence: float | None = None, require_signature: bool | None = None
        ) -> DigitizedRules: ...

    def _unit_filter(self, index: str, units: tuple[str, ...]) -> dict[str, Any]:
        """A filter clause keeping the rows of *index* whose ``unit`` is in the caller's scope: the unit values
        stored in *index* (a ``terms`` aggregation, a handful of buckets) whose unit key is one of the scope's."""
        if not scope_keys(units):
            return MATCH_NONE
        res = self.es.search(index=index, size=0, aggs={"u": {"terms": {"field": "unit", "size": 65000}}})
        values = scope_values((str(b["key"]) for b in res["aggregations"]["u"]["buckets"]), units)
        return {"terms": {"unit": values}} if values else MATCH_NONE

    def _ensure_registry(self) -> None:
        if not self.es.indices.exists(index=self.dossiers):
            try:
                self.es.indices.create(index=self.dossiers, mappings=DOSSIER_MAPPING)
            except Exception as e:
                if "resource_already_exists" not in str(e):
                    raise
            return
        props = self.es.indices.get_mapping(index=self.dossiers)[self.dossiers]["mappings"].get("properties", {})
        if "in_conf" not in props:  # an index from before report-time rules: add the fields, recompute once
            new = {k: v for k, v in DOSSIER_MAPPING["properties"].items() if k not in props}
            self.es.indices.put_mapping(index=self.dossiers, properties=new)
            log.info("registry index %s: digitization recomputed as confidences (report-time rules)", self.dossiers)
            self.rebuild_flags()

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
        conf = dossier_confidence(self._docs_by_code([rec.code])[rec.code], rec.required)
        self.es.index(index=self.dossiers, id=rec.code, document=_body(rec, conf), refresh=True)

    def apply_dossiers(self, records: list[DossierRecord]) -> ImportResult:
        res = ImportResult()
        for i in range(0, len(records), 1000):
            batch = [DossierRecord(**{**r.__dict__, "code": nfc(r.code)}) for r in records[i : i + 1000]]
            existing = self.es.mget(index=self.dossiers, ids=[r.code for r in batch])["docs"]
            old = {d["_id"]: _from_source(d["_source"])[0] for d in existing if d.get("found")}
            changed = []
            for r in batch:
                prev = old.get(r.code)
                norm = _from_source(_body(r, Confidence()))[0]
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
        """Index registry rows with their digitization computed from their documents, in bulk."""
        docs = self._docs_by_code([r.code for r in records])
        actions = [
            {"_index": self.dossiers, "_id": r.code,
             "_source": _body(r, dossier_confidence(docs.get(r.code, []), r.required))}
            for r in records
        ]  # fmt: skip
        if actions:
            helpers.bulk(self.es, actions, refresh=True)

    def _rows(self, query: dict[str, Any]) -> Iterator[tuple[DossierRecord, Confidence]]:
        after: list[Any] | None = None
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

    def registry(
        self,
        *,
        units: tuple[str, ...] | None = None,
        min_confidence: float | None = None,
        require_signature: bool | None = None,
    ) -> Iterator[tuple[DossierRecord, Flags]]:
        rules = self.report_rules(min_confidence, require_signature)
        query = {"match_all": {}} if units is None else {"bool": {"filter": [self._unit_filter(self.dossiers, units)]}}
        for rec, conf in self._rows(query):
            yield rec, conf.flags(rec, rules)

    def rebuild_flags(self) -> int:
        recs = [r for r, _ in self._rows({"match_all": {}})]
        for i in range(0, len(recs), 1000):
            self._write_with_flags(recs[i : i + 1000])
        return len(recs)

    def clear_registry(self) -> None:
        self.es.delete_by_query(index=self.dossiers, query={"match_all": {}}, refresh=True, conflicts="proceed")

    def dossier_record(
        self, code: str, *, min_confidence: float | None = None, require_signature: bool | None = None
    ) -> tuple[DossierRecord, Flags] | None:
        try:
            rec, conf = _from_source(self.es.get(index=self.dossiers, id=nfc(code))["_source"])
        except NotFoundError:
            return None
        return rec, conf.flags(rec, self.report_rules(min_confidence, require_signature))

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

    def _counts(
        self, date_field: str, month_field: str, period: Period, filters: list[dict[str, Any]]
    ) -> tuple[int, dict[str, dict[str, int]]]:
        """Rows of the period (and *filters*): the total and the count per key of every dimension."""
        a, b = period_bounds(period)
        query = {"bool": {"filter": [{"range": {date_field: {"gte": a, "lt": b}}}, *filters]}}
        fields = {**_DIM_FIELD, "month": month_field}
        aggs = {f"by_{dim}": {"terms": {"field": fields[dim], "size": 65000, "missing": ""}} for dim in DIMENSIONS}
        res = self.es.search(index=self.dossiers, size=0, track_total_hits=True, query=query, aggs=aggs)
        total_hits = res["hits"]["total"]
        n = int(total_hits["value"] if isinstance(total_hits, dict) else total_hits)
        per = {
            dim: {str(bk["key"]): int(bk["doc_count"]) for bk in res["aggregations"][f"by_{dim}"]["buckets"]}
            for dim in DIMENSIONS
        }
        return n, per

    def rate_report(
        self,
        period: Period,
        rule: str = "any",
        *,
        units: tuple[str, ...] | None = None,
        min_confidence: float | None = None,
        require_signature: bool | None = None,
    ) -> Report:
        rules = self.report_rules(min_confidence, require_signature)
        scope = [] if units is None else [self._unit_filter(self.dossiers, units)]
        sides = {}
        for side, month in (("received", "received_month"), ("resolved", "resolved_month")):
            n, per = self._counts(side, month, period, scope)
            d, dper = self._counts(side, month, period, [*scope, _digitized(side, rule, rules)])
            sides[side] = (n, per, d, dper)
        (n_in, in_per, d_in, din_per), (n_out, out_per, d_out, dout_per) = sides["received"], sides["resolved"]
        total = Line("total", n_in, d_in, n_out, d_out)
        breakdowns: dict[str, list[Line]] = {}
        for dim in DIMENSIONS:
            keys = sorted(set(in_per[dim]) | set(out_per[dim]))
            breakdowns[dim] = [
                Line(k, in_per[dim].get(k, 0), din_per[dim].get(k, 0), out_per[dim].get(k, 0), dout_per[dim].get(k, 0))
                for k in keys
            ]
        return Report(period, rule, rules.min_confidence, total, breakdowns, rules.require_signature)

    def undigitized(
        self,
        period: Period,
        rule: str = "any",
        side: str = "input",
        limit: int = 1000,
        *,
        units: tuple[str, ...] | None = None,
        min_confidence: float | None = None,
        require_signature: bool | None = None,
    ) -> list[dict[str, Any]]:
        rules = self.report_rules(min_confidence, require_signature)
        a, b = period_bounds(period)
        col = "resolved" if side == "output" else "received"
        filters: list[dict[str, Any]] = [{"range": {col: {"gte": a, "lt": b}}}]
        if units is not None:
            filters.append(self._unit_filter(self.dossiers, units))
        query = {"bool": {"filter": filters, "must_not": [_digitized(col, rule, rules)]}}
        res = self.es.search(index=self.dossiers, query=query, size=limit,
                             sort=[{"received": "asc"}, {"code": "asc"}])  # fmt: skip
        out = []
        for h in res["hits"]["hits"]:
            rec, conf = _from_source(h["_source"])
            out.append(missing_view(rec, conf.flags(rec, rules)))
        return out
