"""S3 / MinIO object store via the ``minio`` client.

Errors are mapped at this boundary (see :mod:`sohoa.errors`): a missing key is :class:`NotFound`; a
connection refused or reset, a timeout, an S3 5xx, ``SlowDown`` or a garbled answer is
:class:`StorageUnavailable` (transient); wrong credentials or a missing bucket are a
:class:`StorageConfigError`. The HTTP client has bounded timeouts and few retries so that an outage is
reported within seconds instead of minutes; :meth:`S3Store.check` uses an even quicker client.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from urllib3.util import Retry, Timeout

from storage.base import NotFound, ObjectStore, StorageConfigError, StorageError, StorageUnavailable, check_key

_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound"}
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed",
              "XMinioServerNotInitialized", "OperationAborted", "XAmzContentSHA256Mismatch"}  # fmt: skip
_CONFIG = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket", "AllAccessDisabled"}
_PART = 16 * 1024 * 1024


def _pool(connect_s: float, read_s: float, retries: int) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=Timeout(connect=connect_s, read=read_s),
        maxsize=16,
        cert_reqs="CERT_REQUIRED",
        ca_certs=certifi.where(),
        retries=Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


@contextlib.contextmanager
def mapped(what: str, endpoint: str) -> Iterator[None]:
    """Translate the minio/urllib3 exceptions raised inside the block into :mod:`sohoa.errors` kinds."""
    try:
        yield
    except StorageError:
        raise
    except S3Error as e:
        if e.code in _MISSING:
            raise NotFound(what) from e
        if e.code in _TRANSIENT:
            raise StorageUnavailable(f"S3 {endpoint}: {e.code}: {e.message}") from e
        if e.code in _CONFIG:
            raise StorageConfigError(f"S3 {endpoint}: {e.code}: {e.message}") from e
        raise StorageError(f"S3 {endpoint}: {what}: {e.code}: {e.message}") from e
    except (ServerError, InvalidResponseError) as e:
        raise StorageUnavailable(f"S3 {endpoint}: {e}") from e
    except (urllib3.exceptions.HTTPError, OSError, MinioException) as e:
        raise StorageUnavailable(f"cannot reach S3 endpoint {endpoint}: {type(e).__name__}: {e}") from e


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
        self.endpoint = endpoint
        self.url = f"s3://{endpoint}/{bucket}"
        kw = {"access_key": access_key, "secret_key": secret_key, "secure": secure, "region": region}
        self.client = Minio(endpoint, http_client=_pool(3.0, 120.0, 2), **kw)  # type: ignore[arg-type]
        self._quick = Minio(endpoint, http_client=_pool(1.0, 2.0, 0), **kw)  # type: ignore[arg-type]
        try:
            with mapped(bucket, endpoint):
                if not self.client.bucket_exists(bucket):
                    self.client.make_bucket(bucket)
        except StorageUnavailable as e:
            raise StorageUnavailable(f"cannot reach S3 endpoint {endpoint}: {e}") from e
        except StorageError as e:
            cause = e.__cause__
            if isinstance(cause, S3Error) and cause.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return
            raise StorageConfigError(f"S3 bucket {bucket!r} at {endpoint}: {e}") from e

    def _m(self, what: str) -> contextlib.AbstractContextManager[None]:
        return mapped(what, self.endpoint)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        with self._m(key):
            self.client.put_object(self.bucket, check_key(key), io.BytesIO(data), len(data), content_type=content_type)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        if not Path(path).is_file():
            raise FileNotFoundError(path)  # the caller's file, not the store's
        with self._m(key):
            self.client.fput_object(self.bucket, check_key(key), str(path), content_type=content_type, part_size=_PART)

    def get_bytes(self, key: str) -> bytes:
        with self._m(key):
            resp = self.client.get_object(self.bucket, check_key(key))
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

    def download(self, key: str, path: Path) -> None:
        with self._m(key):
            self.client.fget_object(self.bucket, check_key(key), str(path))

    def _stat(self, key: str) -> int | None:
        try:
            with self._m(key):
                st = self.client.stat_object(self.bucket, check_key(key))
        except NotFound:
            return None
        return int(st.size or 0)

    def exists(self, key: str) -> bool:
        return self._stat(key) is not None

    def size(self, key: str) -> int:
        s = self._stat(key)
        if s is None:
            raise NotFound(key)
        return s

    def list(self, prefix: str = "") -> Iterator[str]:
        with self._m(prefix or "(all)"):
            names = [o.object_name for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)]
        yield from sorted(n for n in names if n)

    def delete(self, key: str) -> None:
        try:
            with self._m(key):
                self.client.remove_object(self.bucket, check_key(key))
        except NotFound:
            pass

    def check(self) -> None:
        with mapped(self.bucket, self.endpoint):
            if not self._quick.bucket_exists(self.bucket):
                raise StorageConfigError(f"S3 bucket {self.bucket!r} at {self.endpoint} is missing")

    def close(self) -> None:
        for c in (self.client, self._quick):
            with contextlib.suppress(Exception):
                c._http.clear()
