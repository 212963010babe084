"""The narrow search-index interface. Both backends implement the same search semantics:

* every query word must occur in the page, compared without diacritics (``đ`` = ``d``) and case;
  quoted phrases must occur as phrases;
* pages whose words also match *with* the query's diacritics rank first, then by relevance;
* filters: dossier code, kind, unit, received date range; 1-based pagination;
* unit scope (``SearchQuery.units`` and the ``units=`` keyword of the listing and report methods):
  ``None`` = every unit; a tuple = only rows whose ``unit`` equals one of its values compared after NFC,
  collapsing whitespace and case folding (:func:`sohoa.domain.unit_key`); ``()`` matches nothing; a row with
  an empty unit is visible only to unrestricted callers. Applied inside the backend query.

The registry and the rate reports are another narrow interface, :class:`sohoa.registry.Registry`. Each
backend stores both in one place (a SQLite file, an Elasticsearch cluster), so one object implements both:
:class:`IndexBackend`; callers should depend on the interface they use.

Errors are mapped at this boundary onto :mod:`sohoa.errors`: :class:`IndexUnavailable` (transient: the
cluster is unreachable, overloaded, answering 5xx; SQLite busy or its disk failing), :class:`IndexError_`
(permanent), :class:`IndexConfigError` (credentials, URL).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from sohoa.errors import ConfigError, SohoaError, TransientError
from sohoa.models import DocRecord, DossierSummary, PageText, SearchQuery, SearchResults
from sohoa.registry import Registry


class IndexError_(SohoaError):  # noqa: N801 - avoid shadowing the builtin IndexError
    pass


class IndexUnavailable(IndexError_, TransientError):
    backend = "index"


class IndexConfigError(IndexError_, ConfigError):
    pass


T = TypeVar("T")


def map_errors(mapper: Callable[[], contextlib.AbstractContextManager[None]]) -> Callable[[type[T]], type[T]]:
    """Class decorator: run every public method (generators included) inside *mapper()*, which translates the
    client library's exceptions into :mod:`sohoa.errors` kinds."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen(*a: Any, **kw: Any) -> Iterator[Any]:
                it = fn(*a, **kw)
                while True:
                    with mapper():
                        try:
                            item = next(it)
                        except StopIteration:
                            return
                    yield item

            return gen

        @functools.wraps(fn)
        def call(*a: Any, **kw: Any) -> Any:
            with mapper():
                return fn(*a, **kw)

        return call

    def decorate(cls: type[T]) -> type[T]:
        for name in dir(cls):
            if name.startswith("_"):
                continue
            raw = inspect.getattr_static(cls, name)
            if not inspect.isfunction(raw) or getattr(raw, "__isabstractmethod__", False):
                continue
            if getattr(raw, "__wrapped_errors__", None) is cls:
                continue
            wrapped = wrap(raw)
            wrapped.__wrapped_errors__ = cls  # type: ignore[attr-defined]
            setattr(cls, name, wrapped)
        return cls

    return decorate


class SearchIndex(ABC):
    url: str

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
        """Remove every document and page (used by ``sohoa reindex``; the registry has its own)."""

    def dossier(self, code: str, *, units: tuple[str, ...] | None = None) -> DossierSummary:
        return DossierSummary(code=code, documents=self.list_documents(dossier_code=code, units=units))

    def check(self) -> None:
        """Raise (:class:`IndexUnavailable` for an outage) if the index cannot be used. Quick."""
        self.list_documents(limit=1)

    def refresh(self) -> None:  # noqa: B027 - only needed by near-real-time backends
        pass

    def close(self) -> None:  # noqa: B027
        pass


class IndexBackend(SearchIndex, Registry):
    """One store serving both narrow interfaces (what :func:`open_index` returns)."""


def open_index(url: str, es_prefix: str = "sohoa") -> IndexBackend:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        from index.sqlite import SqliteIndex

        return SqliteIndex(sqlite_path(url))
    if parsed.scheme in ("http", "https"):
        from index.es import EsIndex

        return EsIndex(url, prefix=es_prefix)
    raise IndexConfigError(f"unsupported index URL scheme {parsed.scheme!r} (use sqlite:// or http(s)://)")


def sqlite_path(url: str) -> str:
    parsed = urlparse(url)
    path = unquote(parsed.path)
    if parsed.netloc:  # sqlite://relative/path
        path = parsed.netloc + path
    elif path.startswith("//"):  # sqlite:////abs/path (SQLAlchemy's spelling) = sqlite:///abs/path
        path = "/" + path.lstrip("/")
    return path
