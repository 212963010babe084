"""Records shared by ingest, workers, index and API.

The :class:`Manifest` is the system of record for one uploaded document: it lives in object
storage next to the original and the OCR outputs, and everything in the search index can be
rebuilt from manifests (``sohoa reindex``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (Status.DONE, Status.FAILED)


class Kind(StrEnum):
    INPUT = "input"  # thành phần hồ sơ (what the citizen submitted)
    OUTPUT = "output"  # kết quả (the result document)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class PageInfo:
    number: int
    dpi: int
    colour_mode: str
    width: int
    height: int
    mean_confidence: float
    low_confidence: bool
    word_count: int
    rotation: int = 0
    skew: float = 0.0
    low_dpi: bool = False
    seconds: float = 0.0
    text_coverage: float = 1.0  # share of the page's letters inside confidently read words (reading check)
    # the page's number in the original file (pages are numbered 1..n over the pages kept: blank pages left
    # out by SOHOA_KEEP_BLANK_PAGES=false shift the numbers after them); 0 in manifests written before
    source_page: int = 0
    # what OCR found on the page (issue 16): coloured ink regions {"kind", "colour", "box", "share"}, form
    # checkboxes {"box", "ticked", "label"} and tables {"box", "rows", "cols", "cells", "csv"}; boxes in pixels
    # of the cleaned page (width × height)
    has_seal: bool = False
    has_signature: bool = False
    ink_regions: list[dict[str, Any]] = field(default_factory=list)
    checkboxes: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Manifest:
    id: str
    dossier_code: str
    kind: str
    component: str
    unit: str
    filename: str
    media_type: str
    size: int
    sha256: str
    original_key: str
    received_at: str
    declared_pages: int
    status: str = Status.RECEIVED.value
    error: str | None = None
    processed_at: str | None = None
    pages: list[PageInfo] = field(default_factory=list)
    model: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    warnings: list[str] = field(default_factory=list)
    uploaded_by: str = ""  # the user or token that uploaded it
    # soft delete: {"at", "by", "reason"}; a deleted document leaves the index (search, reports) but stays
    # in object storage with its original and outputs
    deleted: dict[str, str] | None = None
    # earlier originals kept when a page was replaced by a re-scan: [{"key", "at", "by", "page"}]
    versions: list[dict[str, Any]] = field(default_factory=list)
    # metadata corrections: [{"at", "by", "field", "old", "new"}]
    edits: list[dict[str, str]] = field(default_factory=list)
    batch: str | None = None  # the upload batch that stored it (see sohoa/batches.py)
    # per-page perceptual hash at upload (ingest/dedupe.py), to catch the same content uploaded again
    page_hashes: list[str] = field(default_factory=list)
    # kept although it has the content of this document (the clerk asked to keep it as a new version)
    duplicate_of: str | None = None
    # pages that look like pages of other documents of the dossier: [{"page", "document", "other_page"}]
    similar_pages: list[dict[str, Any]] = field(default_factory=list)
    # source page numbers of the pages found blank and left out of the pages, the index and the archival PDF
    # (SOHOA_KEEP_BLANK_PAGES=false); they stay in the original
    blank_pages: list[int] = field(default_factory=list)

    @property
    def status_since(self) -> str:
        """When the current status was set (ISO UTC), or the reception time."""
        return self.history[-1]["at"] if self.history else self.received_at

    @property
    def page_count(self) -> int:
        return len(self.pages) if self.pages else self.declared_pages

    @property
    def mean_confidence(self) -> float | None:
        if not self.pages:
            return None
        return round(sum(p.mean_confidence for p in self.pages) / len(self.pages), 2)

    def set_status(self, status: Status, error: str | None = None) -> None:
        self.status = status.value
        self.error = error
        self.history.append({"status": status.value, "at": utcnow(), **({"error": error} if error else {})})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["page_count"] = self.page_count
        d["mean_confidence"] = self.mean_confidence
        return d

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1).encode("utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        d = dict(d)
        d.pop("page_count", None)
        d.pop("mean_confidence", None)
        d["pages"] = [PageInfo(**p) for p in d.get("pages", [])]
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        return cls.from_dict(json.loads(data.decode("utf-8")))


@dataclass
class DocRecord:
    """What the index knows about a document (a mirror of its manifest)."""

    id: str
    dossier_code: str
    kind: str
    component: str
    unit: str
    filename: str
    status: str
    received_at: str
    sha256: str
    page_count: int = 0
    mean_confidence: float | None = None
    processed_at: str | None = None
    error: str | None = None

    @classmethod
    def from_manifest(cls, m: Manifest) -> DocRecord:
        return cls(
            id=m.id,
            dossier_code=m.dossier_code,
            kind=m.kind,
            component=m.component,
            unit=m.unit,
            filename=m.filename,
            status=m.status,
            received_at=m.received_at,
            sha256=m.sha256,
            page_count=m.page_count,
            mean_confidence=m.mean_confidence,
            processed_at=m.processed_at,
            error=m.error,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PageText:
    number: int
    text: str


MAX_QUERY_CHARS = 300  # a 30 KB query took 11 s on SQLite; real queries are a few words
MAX_QUERY_WORDS = 32
# Search totals are exact up to this many matches; above it a backend reports ``total=SEARCH_COUNT_CAP`` with
# ``SearchResults.total_capped`` set ("hơn N kết quả"), so no query counts every match of a common word.
# 1,000 (was 10,000): counting is most of a search's cost (it walks the doclists until the cap); at 1M pages
# 10,000 → 1,000 halved the mean search time (8.7 → 4.5 ms) and the 8-client p95 (161 → 79 ms). Ten pages of
# 100 hits are all a person reads; above that the answer is to narrow the query. Paging still reaches every match.
SEARCH_COUNT_CAP = 1_000


@dataclass
class SearchQuery:
    q: str
    dossier_code: str | None = None
    kind: str | None = None
    unit: str | None = None
    date_from: str | None = None  # ISO date, inclusive, on received_at
    date_to: str | None = None  # ISO date, inclusive
    page: int = 1
    size: int = 10
    # Unit scope of the caller: None = every unit (no filter); a tuple = only documents whose ``unit`` is
    # one of these values (NFC, as stored: the codes and names of the caller's units and their sub-units).
    # An empty tuple matches nothing. Applied inside the index query, so totals and pages stay right.
    units: tuple[str, ...] | None = None
    # Only the pages of this document (the page view's "pages that match" list).
    document_id: str | None = None

    def __post_init__(self) -> None:
        """Refuse what cannot be a query (ValueError, message for the person who typed it)."""
        if len(self.q) > MAX_QUERY_CHARS or len(self.q.split()) > MAX_QUERY_WORDS:
            raise ValueError(
                f"câu tìm kiếm quá dài: tối đa {MAX_QUERY_CHARS} ký tự, {MAX_QUERY_WORDS} từ (query too long)"
            )
        self.date_from = _iso_date("date_from", self.date_from)
        self.date_to = _iso_date("date_to", self.date_to)
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise ValueError(f"ngày kết thúc {self.date_to} trước ngày bắt đầu {self.date_from} (date_to < date_from)")
        if self.page < 1 or not 1 <= self.size <= 100:
            raise ValueError("page ≥ 1 và 1 ≤ size ≤ 100 (bad page or size)")


def _iso_date(name: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValueError(f"{name}: ngày không hợp lệ {value!r}, cần dạng YYYY-MM-DD (invalid date)") from None


@dataclass
class SearchHit:
    document_id: str
    dossier_code: str
    kind: str
    component: str
    unit: str
    filename: str
    page: int
    score: float
    exact: bool
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResults:
    query: str
    total: int
    page: int
    size: int
    hits: list[SearchHit]
    # True when more than ``total`` pages match (the count stopped at SEARCH_COUNT_CAP): "hơn N kết quả".
    total_capped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "total": self.total,
            "total_capped": self.total_capped,
            "page": self.page,
            "size": self.size,
            "hits": [h.to_dict() for h in self.hits],
        }


@dataclass
class DossierSummary:
    code: str
    documents: list[DocRecord]

    @property
    def input_digitized(self) -> bool:
        return any(d.kind == Kind.INPUT and d.status == Status.DONE for d in self.documents)

    @property
    def output_digitized(self) -> bool:
        return any(d.kind == Kind.OUTPUT and d.status == Status.DONE for d in self.documents)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "input_digitized": self.input_digitized,
            "output_digitized": self.output_digitized,
            "documents": [d.to_dict() for d in self.documents],
            "components": sorted({d.component for d in self.documents if d.kind == Kind.INPUT and d.component}),
        }
