"""Elasticsearch 8 index.

Two indices: ``{prefix}-documents`` (one record per uploaded document) and ``{prefix}-pages``
(one per OCR'd page, with the document's filter fields copied in). ``text`` is analysed twice:
``text`` keeps diacritics (standard analyzer) and ``text.folded`` uses ``asciifolding`` (which
maps ``đ``→``d``). Every query word must match ``text.folded``; a ``constant_score`` clause on the
exact field adds a large boost so exact-diacritic pages rank first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import elastic_transport
from elasticsearch import ApiError, Elasticsearch, NotFoundError, helpers

from index.base import IndexBackend, IndexConfigError, IndexError_, IndexUnavailable, map_errors
from index.rates_es import EsRegistry
from sohoa.models import SEARCH_COUNT_CAP, DocRecord, PageText, SearchHit, SearchQuery, SearchResults
from sohoa.text import exact_match, fold, nfc, parse_query, snippet

EXACT_BOOST = 1000.0

SETTINGS: dict[str, Any] = {
    "analysis": {
        "analyzer": {
            "folded": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]},
        }
    }
}

_KW = {"type": "keyword"}
DOC_MAPPING: dict[str, Any] = {
    "properties": {
        "id": _KW,
        "dossier_code": _KW,
        "kind": _KW,
        "component": _KW,
        "unit": _KW,
        "filename": _KW,
        "status": _KW,
        "received_at": {"type": "date"},
        "sha256": _KW,
        "page_count": {"type": "integer"},
        "mean_confidence": {"type": "float"},
        "processed_at": {"type": "date"},
        "error": {"type": "text"},
    }
}
PAGE_MAPPING: dict[str, Any] = {
    "properties": {
        "doc_id": _KW,
        "number": {"type": "integer"},
        "text": {
            "type": "text",
            "analyzer": "standard",
            "fields": {"folded": {"type": "text", "analyzer": "folded"}},
        },
        "dossier_code": _KW,
        "kind": _KW,
        "component": _KW,
        "unit": _KW,
        "filename": _KW,
        "received_at": {"type": "date"},
    }
}


@contextlib.contextmanager
def es_errors() -> Iterator[None]:
    """Elasticsearch client exceptions → :mod:`sohoa.errors` kinds (at this adapter's boundary)."""
    try:
        yield
    except (IndexError_, NotFoundError):
        raise
    except ApiError as e:
        status = int(getattr(e, "status_code", 0) or getattr(getattr(e, "meta", None), "status", 0) or 0)
        if status == 429 or status >= 500:
            raise IndexUnavailable(f"Elasticsearch answered {status}: {e}") from e
        if status in (401, 403):
            raise IndexConfigError(f"Elasticsearch refused the credentials ({status}): {e}") from e
        raise IndexError_(f"Elasticsearch: {e}") from e
    except helpers.BulkIndexError as e:
        statuses = {int(next(iter(x.values())).get("status", 0)) for x in e.errors}
        if any(s == 429 or s >= 500 for s in statuses):
            raise IndexUnavailable(f"Elasticsearch bulk write failed ({sorted(statuses)}): {e}") from e
        raise IndexError_(f"Elasticsearch bulk write failed: {e}") from e
    except (elastic_transport.TransportError, OSError) as e:
        raise IndexUnavailable(f"cannot reach Elasticsearch: {type(e).__name__}: {e}") from e


@map_errors(es_errors)
class EsIndex(EsRegistry, IndexBackend):
    def __init__(self, url: str, prefix: str = "sohoa", client: Elasticsearch | None = None) -> None:
        self.url = url
        self.docs = f"{prefix}-documents"
        self.pages = f"{prefix}-pages"
        self.dossiers = f"{prefix}-dossiers"
        self.leases_index = f"{prefix}-leases"
        self.es = client or Elasticsearch(url, request_timeout=30, retry_on_timeout=True, max_retries=2)
        try:
            with es_errors():
                self._ensure()
        except IndexUnavailable as e:
            raise IndexUnavailable(f"cannot use Elasticsearch at {url}: {e}") from e
        except IndexError_:
            raise
        except Exception as e:
            raise IndexError_(f"cannot use Elasticsearch at {url}: {e}") from e

    def _ensure(self) -> None:
        for name, mapping in ((self.docs, DOC_MAPPING), (self.pages, PAGE_MAPPING)):
            if not self.es.indices.exists(index=name):
                try:
                    self.es.indices.create(index=name, settings=SETTINGS, mappings=mapping)
                except Exception as e:  # created concurrently by another process
                    if "resource_already_exists" not in str(e):
                        raise
        self._ensure_registry()

    @staticmethod
    def _doc_body(doc: DocRecord) -> dict[str, Any]:
        return {k: (nfc(v) if isinstance(v, str) else v) for k, v in doc.to_dict().items()}

    def upsert_document(self, doc: DocRecord) -> None:
        self.es.index(index=self.docs, id=doc.id, document=self._doc_body(doc), refresh=True)
        self._refresh_flags(doc.dossier_code)

    def replace_pages(self, doc: DocRecord, pages: list[PageText]) -> None:
        body = self._doc_body(doc)
        shared = {k: body[k] for k in ("dossier_code", "kind", "component", "unit", "filename", "received_at")}
        actions = [
            {
                "_index": self.pages,
                "_id": f"{doc.id}:{p.number}",
                "_source": {"doc_id": doc.id, "number": p.number, "text": nfc(p.text), **shared},
            }
            for p in pages
        ]
        if actions:
            helpers.bulk(self.es, actions, refresh=True)
        # drop pages beyond the new page count (a re-run that produced fewer pages)
        self.es.delete_by_query(
            index=self.pages,
            query={"bool": {"filter": [{"term": {"doc_id": doc.id}}, {"range": {"number": {"gt": len(pages)}}}]}},
            refresh=True,
            conflicts="proceed",
        )
        self.upsert_document(doc)

    def delete_document(self, doc_id: str) -> None:
        old = self.get_document(doc_id)
        self.es.delete_by_query(index=self.pages, query={"term": {"doc_id": doc_id}}, refresh=True, conflicts="proceed")
        with contextlib.suppress(NotFoundError):
            self.es.delete(index=self.docs, id=doc_id, refresh=True)
        if old is not None:
            self._refresh_flags(old.dossier_code)

    def get_document(self, doc_id: str) -> DocRecord | None:
        try:
            r = self.es.get(index=self.docs, id=doc_id)
        except NotFoundError:
            return None
        return DocRecord(**r["_source"])

    def list_documents(
        self,
        dossier_code: str | None = None,
        statuses: list[str] | None = None,
        sha256: str | None = None,
        limit: int = 1000,
        *,
        units: tuple[str, ...] | None = None,
    ) -> list[DocRecord]:
        filters: list[dict[str, Any]] = []
        if units is not None:
            filters.append(self._unit_filter(self.docs, units))
        if dossier_code is not None:
            filters.append({"term": {"dossier_code": nfc(dossier_code)}})
        if statuses:
            filters.append({"terms": {"status": statuses}})
        if sha256 is not None:
            filters.append({"term": {"sha256": sha256}})
        out: list[DocRecord] = []
        search_after: list[Any] | None = None
        while len(out) < limit:
            kwargs: dict[str, Any] = {
                "index": self.docs,
                "query": {"bool": {"filter": filters}},
                "sort": [{"received_at": "asc"}, {"id": "asc"}],
                "size": min(1000, limit - len(out)),
            }
            if search_after:
                kwargs["search_after"] = search_after
            res = self.es.search(**kwargs)
            hits = res["hits"]["hits"]
            out.extend(DocRecord(**h["_source"]) for h in hits)
            if len(hits) < kwargs["size"]:
                break
            search_after = hits[-1]["sort"]
        return out

    def page_count(self, doc_id: str) -> int:
        return int(self.es.count(index=self.pages, query={"term": {"doc_id": doc_id}})["count"])

    def search(self, query: SearchQuery) -> SearchResults:
        pq = parse_query(query.q)
        size = max(1, min(query.size, 100))
        page = max(1, query.page)
        if pq.empty:
            return SearchResults(query=pq.raw, total=0, page=page, size=size, hits=[])
        must: list[dict[str, Any]] = []
        exact: list[dict[str, Any]] = []
        if pq.terms:
            must.append({"match": {"text.folded": {"query": fold(" ".join(pq.terms)), "operator": "and"}}})
            exact.append({"match": {"text": {"query": " ".join(pq.terms), "operator": "and"}}})
        for ph in pq.phrases:
            must.append({"match_phrase": {"text.folded": fold(" ".join(ph))}})
            exact.append({"match_phrase": {"text": " ".join(ph)}})
        filters: list[dict[str, Any]] = []
        for field, val in (("dossier_code", query.dossier_code), ("kind", query.kind), ("unit", query.unit)):
            if val:
                filters.append({"term": {field: nfc(val)}})
        if query.document_id:
            filters.append({"term": {"doc_id": query.document_id}})
        rng: dict[str, str] = {}
        if query.date_from:
            rng["gte"] = query.date_from[:10]
        if query.date_to:
            rng["lte"] = query.date_to[:10] + "T23:59:59.999Z"
        if rng:
            filters.append({"range": {"received_at": rng}})
        if query.units is not None:
            filters.append(self._unit_filter(self.pages, query.units))
        body_query = {
            "bool": {
                "must": must,
                "filter": filters,
                "should": [
                    {"constant_score": {"filter": {"bool": {"must": exact}}, "boost": EXACT_BOOST}},
                    *[{"match_phrase": {"text.folded": {"query": fold(" ".join(pq.terms)), "boost": 2}}}][
                        : 1 if len(pq.terms) > 1 else 0
                    ],
                ],
            }
        }
        with es_errors():
            res = self.es.search(
                index=self.pages,
                query=body_query,
                from_=(page - 1) * size,
                size=size,
                # exact up to the cap, "gte" above: counting every match of a common word costs as much as
                # the search; filters above are in filter context (no scoring, cached per segment)
                track_total_hits=SEARCH_COUNT_CAP,
                sort=[{"_score": "desc"}, {"doc_id": "asc"}, {"number": "asc"}],
            )
        hits = []
        for h in res["hits"]["hits"]:
            s = h["_source"]
            hits.append(
                SearchHit(
                    document_id=s["doc_id"],
                    dossier_code=s["dossier_code"],
                    kind=s["kind"],
                    component=s.get("component", ""),
                    unit=s.get("unit", ""),
                    filename=s.get("filename", ""),
                    page=int(s["number"]),
                    score=round(float(h.get("_score") or 0.0), 4),
                    exact=exact_match(s["text"], pq),
                    snippet=snippet(s["text"], pq),
                )
            )
        total = res["hits"]["total"]
        total_n = int(total["value"] if isinstance(total, dict) else total)
        capped = total_n > SEARCH_COUNT_CAP or (
            isinstance(total, dict) and total.get("relation") == "gte" and total_n >= SEARCH_COUNT_CAP
        )
        return SearchResults(
            query=pq.raw, total=min(total_n, SEARCH_COUNT_CAP), page=page, size=size, hits=hits, total_capped=capped
        )

    def refresh(self) -> None:
        self.es.indices.refresh(index=[self.docs, self.pages])

    def clear(self) -> None:
        for name in (self.docs, self.pages):
            self.es.delete_by_query(index=name, query={"match_all": {}}, refresh=True, conflicts="proceed")
        self.rebuild_flags()

    def drop(self) -> None:
        """Delete every index of this prefix (tests)."""
        for name in (self.docs, self.pages, self.dossiers, self.leases_index):
            self.es.indices.delete(index=name, ignore_unavailable=True)

    def check(self) -> None:
        self.es.options(request_timeout=2, max_retries=0).count(index=self.docs)

    def close(self) -> None:
        self.es.close()
