"""Search index: ``sqlite://`` (FTS5, embedded) or ``http(s)://`` (Elasticsearch)."""

from index.base import IndexBackend, IndexError_, IndexUnavailable, SearchIndex, open_index

__all__ = ["IndexBackend", "IndexError_", "IndexUnavailable", "SearchIndex", "open_index"]
