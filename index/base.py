"""The narrow index interface. Both backends implement the same search semantics:

* every query word must occur in the page, compared without diacritics (``đ`` = ``d``) and case;
  quoted phrases must occur as phrases;
* pages whose words also match *with* the query's diacritics rank first, then by relevance;
* filters: dossier code, kind, unit, received date range; 1-based pagination;
* unit scope (``SearchQuery.units`` and the ``units=`` keyword of the listing and report methods):
  ``None`` = every unit; a tuple = only rows whose ``unit`` equals one of its values compared after NFC,
  collapsing whitespace and case folding (:func:`index.rates.unit_key`); ``()`` matches nothing; a row with
  an empty unit is visible only to unrestricted callers. Applied inside the backend query.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlparse

from index.rates import DossierRecord, Flags, ImportResult, Period, Report
from sohoa.models import DocRecord, DossierSummary, PageText, SearchQuery, SearchResults


class IndexError_(RuntimeError):  # noqa: N801 - avoid shadowing the builtin IndexError
    pass


class SearchIndex(ABC):
    url: str
    digitized_min_confidence: float = 0.0  # a document counts as digitized when done and at least this sure
    digitized_require_signature: bool = False  # input counts only for dossiers the importer marks signed

    # -- registry and digitization-rate report (see index/registry.py) ----------------------------
    @abstractmethod
    def upsert_dossiers(self, records: list[DossierRecord]) -> ImportResult:
        """Insert or update registry rows by code; links scans already stored for those codes."""

    @abstractmethod
    def rebuild_flags(self) -> int: ...

    @abstractmethod
    def dossier_record(self, code: str) -> tuple[DossierRecord, Flags] | None: ...

    @abstractmethod
    def registry(self, *, units: tuple[str, ...] | None = None) -> Iterator[tuple[DossierRecord, Flags]]:
        """Registry rows by code; *units*: only rows of those units (see the module docstring)."""

    @abstractmethod
    def unregistered(self, *, units: tuple[str, ...] | None = None) -> list[str]:
        """Dossier codes that have scans but no registry row (yet); *units*: scans of those units."""

    @abstractmethod
    def rate_report(self, period: Period, rule: str = "any", *, units: tuple[str, ...] | None = None) -> Report:
        """Counts of the period; *units*: only registry rows of those units."""

    @abstractmethod
    def undigitized(
        self,
        period: Period,
        rule: str = "any",
        side: str = "input",
        limit: int = 1000,
        *,
        units: tuple[str, ...] | None = None,
    ) -> list[dict[str, Any]]:
        """Dossiers of the period that are not digitized (what the clerk must scan next)."""

    @abstractmethod
    def upsert_document(self, doc: DocRecord) -> None:
        """Insert or replace the document record (status, metadata)."""

    @abstractmethod
    def replace_pages(self, doc: DocRecord, pages: list[PageText]) -> None:
        """Replace every page of *doc* with *pages* (idempotent) and upsert the record."""

    @abstractmethod
    def delete_document(self, doc_id: str) -> None: ...

    @abstractmethod
    def get_document(self, doc_id: str) -> DocRecord | None: ...

    @abstractmethod
    def list_documents(
        self,
        dossier_code: str | None = None,
        statuses: list[str] | None = None,
        sha256: str | None = None,
        limit: int = 1000,
        *,
        units: tuple[str, ...] | None = None,
    ) -> list[DocRecord]: ...

    @abstractmethod
    def search(self, query: SearchQuery) -> SearchResults: ...

    @abstractmethod
    def page_count(self, doc_id: str) -> int:
        """Number of indexed pages of a document."""

    @abstractmethod
    def clear(self) -> None:
        """Remove everything (used by ``sohoa reindex``)."""

    def dossier(self, code: str, *, units: tuple[str, ...] | None = None) -> DossierSummary:
        return DossierSummary(code=code, documents=self.list_documents(dossier_code=code, units=units))

    def check(self) -> None:
        """Raise if the index cannot be used."""
        self.list_documents(limit=1)

    def refresh(self) -> None:  # noqa: B027 - only needed by near-real-time backends
        pass

    def close(self) -> None:  # noqa: B027
        pass


def open_index(url: str, es_prefix: str = "sohoa") -> SearchIndex:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        from index.sqlite import SqliteIndex

        path = unquote(parsed.path)
        if parsed.netloc:  # sqlite://relative/path
            path = parsed.netloc + path
        elif path.startswith("//"):  # sqlite:////abs/path (SQLAlchemy's spelling) = sqlite:///abs/path
            path = "/" + path.lstrip("/")
        return SqliteIndex(path)
    if parsed.scheme in ("http", "https"):
        from index.es import EsIndex

        return EsIndex(url, prefix=es_prefix)
    raise IndexError_(f"unsupported index URL scheme {parsed.scheme!r} (use sqlite:// or http(s)://)")
