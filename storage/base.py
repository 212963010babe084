"""The narrow object-store interface and the URL-based factory."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from sohoa.errors import ConfigError, PermanentError, SohoaError, TransientError

_KEY = re.compile(r"^[A-Za-z0-9._\-/]+$")


class StorageError(SohoaError):
    """Any storage failure (see :mod:`sohoa.errors` for how the subclasses are treated)."""


class NotFound(StorageError, PermanentError, KeyError):
    """The object does not exist."""


class StorageUnavailable(StorageError, TransientError):
    """The store cannot be reached or answered with a server error: retry later."""

    backend = "storage"


class StorageConfigError(StorageError, ConfigError):
    """Wrong credentials, bucket or URL."""


class InvalidKey(StorageError, PermanentError):
    pass


def check_key(key: str) -> str:
    if not key or key.startswith("/") or not _KEY.match(key) or any(p in ("", ".", "..") for p in key.split("/")):
        raise InvalidKey(f"invalid object key: {key!r}")
    return key


class ObjectStore(ABC):
    """Keys are ``/``-separated ASCII paths. Writes are atomic: a reader sees the old or the new object."""

    url: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def download(self, key: str, path: Path) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with *prefix*, recursively, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete one key; deleting a missing key is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.list(prefix))
        for k in keys:
            self.delete(k)
        return len(keys)

    def check(self) -> None:
        """Raise :class:`StorageError` (:class:`StorageUnavailable` for an outage) if the store cannot be used.
        Quick: a health probe must answer within a couple of seconds even when the store is down."""
        self.exists("health-check")

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def open_store(url: str) -> ObjectStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from storage.filestore import FileStore

        return FileStore(Path(unquote(parsed.path)))
    if parsed.scheme in ("s3", "minio"):
        from storage.s3store import S3Store

        q = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        bucket = parsed.path.strip("/")
        if not bucket or not parsed.hostname:
            raise StorageConfigError("s3 URL must look like s3://ACCESS:SECRET@host:port/bucket")
        endpoint = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
        return S3Store(
            endpoint=endpoint,
            bucket=bucket,
            access_key=unquote(parsed.username or ""),
            secret_key=unquote(parsed.password or ""),
            secure=q.get("secure", "false").lower() in ("1", "true", "yes"),
            region=q.get("region") or None,
        )
    raise StorageConfigError(f"unsupported storage URL scheme {parsed.scheme!r} (use file:// or s3://)")
