"""Search index: ``sqlite://`` (FTS5, embedded) or ``http(s)://`` (Elasticsearch)."""

from index.base import IndexError_, SearchIndex, open_index

__all__ = ["IndexError_", "SearchIndex", "open_index"]
