"""S3 / MinIO object store via the ``minio`` client."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from minio import Minio
from minio.error import S3Error

from storage.base import NotFound, ObjectStore, StorageError, check_key

_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket"}
_PART = 16 * 1024 * 1024


class S3Store(ObjectStore):
    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        secure: bool = False,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.url = f"s3://{endpoint}/{bucket}"
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region)
        try:
            if not self.client.bucket_exists(bucket):
                self.client.make_bucket(bucket)
        except S3Error as e:
            if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise StorageError(f"S3 bucket {bucket!r} at {endpoint}: {e}") from e
        except Exception as e:  # connection refused, DNS, TLS …
            raise StorageError(f"cannot reach S3 endpoint {endpoint}: {e}") from e

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(self.bucket, check_key(key), io.BytesIO(data), len(data), content_type=content_type)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        self.client.fput_object(self.bucket, check_key(key), str(path), content_type=content_type, part_size=_PART)

    def get_bytes(self, key: str) -> bytes:
        try:
            resp = self.client.get_object(self.bucket, check_key(key))
        except S3Error as e:
            if e.code in _MISSING:
                raise NotFound(key) from e
            raise
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def download(self, key: str, path: Path) -> None:
        try:
            self.client.fget_object(self.bucket, check_key(key), str(path))
        except S3Error as e:
            if e.code in _MISSING:
                raise NotFound(key) from e
            raise

    def _stat(self, key: str) -> int | None:
        try:
            st = self.client.stat_object(self.bucket, check_key(key))
        except S3Error as e:
            if e.code in _MISSING:
                return None
            raise
        return int(st.size or 0)

    def exists(self, key: str) -> bool:
        return self._stat(key) is not None

    def size(self, key: str) -> int:
        s = self._stat(key)
        if s is None:
            raise NotFound(key)
        return s

    def list(self, prefix: str = "") -> Iterator[str]:
        names = [o.object_name for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)]
        yield from sorted(n for n in names if n)

    def delete(self, key: str) -> None:
        try:
            self.client.remove_object(self.bucket, check_key(key))
        except S3Error as e:
            if e.code not in _MISSING:
                raise

    def check(self) -> None:
        try:
            self.client.bucket_exists(self.bucket)
        except Exception as e:
            raise StorageError(f"S3 store {self.url} unavailable: {e}") from e
