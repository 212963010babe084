"""Local-folder object store (embedded default). Atomic, fsync'ed writes.

OS errors are mapped at this boundary: a missing object is :class:`NotFound`, a permission problem a
:class:`~storage.base.StorageConfigError`, anything else (disk full, I/O error, a network mount gone) a
:class:`~storage.base.StorageUnavailable` to retry later.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from storage.base import NotFound, ObjectStore, StorageConfigError, StorageError, StorageUnavailable, check_key


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    try:
        yield
    except StorageError:
        raise
    except FileNotFoundError as e:
        raise NotFound(what) from e
    except PermissionError as e:
        raise StorageConfigError(f"{what}: {e}") from e
    except OSError as e:
        raise StorageUnavailable(f"{what}: {e}") from e


class FileStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = self.root.resolve().as_uri()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create storage folder {self.root}: {e}") from e

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write(self, key: str, writer: object) -> None:
        dest = self._path(key)
        try:
            with _mapped(key):
                self._write_to(dest, writer)
        except NotFound as e:  # a folder removed under us (a concurrent delete_prefix): the store is fine
            raise StorageUnavailable(f"{key}: {e}") from e

    def _write_to(self, dest: Path, writer: object) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                writer(f)  # type: ignore[operator]
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
            dfd = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._write(key, lambda f: f.write(data))

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        if not Path(path).is_file():
            raise FileNotFoundError(path)  # the caller's file, not the store's

        def copy(f: object) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, f, 1024 * 1024)  # type: ignore[arg-type]

        self._write(key, copy)

    def get_bytes(self, key: str) -> bytes:
        src = self._path(key)
        with _mapped(key):
            return src.read_bytes()

    def download(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise NotFound(key)
        with _mapped(key):
            shutil.copyfile(src, path)

    def exists(self, key: str) -> bool:
        p = self._path(key)
        with _mapped(key):
            return p.is_file()

    def size(self, key: str) -> int:
        p = self._path(key)
        with _mapped(key):
            return p.stat().st_size

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root
        found: list[str] = []
        if not base.is_dir():
            raise StorageUnavailable(f"storage folder {base} is gone")
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                key = Path(dirpath, name).relative_to(base).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        yield from sorted(found)

    def delete(self, key: str) -> None:
        p = self._path(key)
        with _mapped(key):
            p.unlink(missing_ok=True)
        parent = p.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def check(self) -> None:
        if not self.root.is_dir():
            raise StorageUnavailable(f"storage folder {self.root} is gone")
        if not os.access(self.root, os.W_OK):
            raise StorageConfigError(f"storage folder {self.root} is not writable")
