"""Object storage: the system of record. ``file://`` (embedded) or ``s3://`` (MinIO/S3)."""

from storage.base import NotFound, ObjectStore, StorageError, StorageUnavailable, open_store

__all__ = ["NotFound", "ObjectStore", "StorageError", "StorageUnavailable", "open_store"]
