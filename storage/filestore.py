"""Local-folder object store (embedded default). Atomic, fsync'ed writes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from storage.base import NotFound, ObjectStore, StorageError, check_key


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
        def copy(f: object) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, f, 1024 * 1024)  # type: ignore[arg-type]

        self._write(key, copy)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as e:
            raise NotFound(key) from e

    def download(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self._path(key), path)
        except FileNotFoundError as e:
            raise NotFound(key) from e

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as e:
            raise NotFound(key) from e

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root
        found: list[str] = []
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
        p.unlink(missing_ok=True)
        parent = p.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"storage folder {self.root} is not writable")
