"""ONE contract suite for the object store, run against file:// and s3:// (SeaweedFS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import NotFound, ObjectStore, StorageError, open_store

from conftest import s3_url


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return open_store((tmp_path / "objects").as_uri())
    srv = request.getfixturevalue("s3_server")
    return open_store(s3_url(srv))


def test_put_get_overwrite(store: ObjectStore) -> None:
    store.put_bytes("documents/a/manifest.json", b'{"x": 1}', "application/json")
    assert store.get_bytes("documents/a/manifest.json") == b'{"x": 1}'
    store.put_bytes("documents/a/manifest.json", b'{"x": 2}')
    assert store.get_bytes("documents/a/manifest.json") == b'{"x": 2}'
    assert store.exists("documents/a/manifest.json")
    assert store.size("documents/a/manifest.json") == 8


def test_missing(store: ObjectStore) -> None:
    assert not store.exists("documents/none/x")
    with pytest.raises(NotFound):
        store.get_bytes("documents/none/x")
    with pytest.raises(NotFound):
        store.size("documents/none/x")
    store.delete("documents/none/x")  # not an error


def test_put_file_download_large(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    data = bytes(range(256)) * (24 * 4096)  # 24 MiB: multipart on S3
    src.write_bytes(data)
    store.put_file("documents/b/original.pdf", src, "application/pdf")
    dest = tmp_path / "back.bin"
    store.download("documents/b/original.pdf", dest)
    assert dest.read_bytes() == data
    with pytest.raises(NotFound):
        store.download("documents/b/missing", tmp_path / "m")


def test_list_and_delete_prefix(store: ObjectStore) -> None:
    for k in (
        "documents/c/out/page-0002.txt",
        "documents/c/out/page-0001.txt",
        "documents/c/manifest.json",
        "documents/cc/manifest.json",
    ):
        store.put_bytes(k, b"x")
    assert list(store.list("documents/c/")) == [
        "documents/c/manifest.json",
        "documents/c/out/page-0001.txt",
        "documents/c/out/page-0002.txt",
    ]
    assert store.delete_prefix("documents/c/") == 3
    assert list(store.list("documents/c/")) == []
    assert list(store.list("documents/cc/")) == ["documents/cc/manifest.json"]


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "tên-file.pdf", "a b"])
def test_rejects_bad_keys(store: ObjectStore, key: str) -> None:
    with pytest.raises(StorageError):
        store.put_bytes(key, b"x")


def test_unicode_content_roundtrip(store: ObjectStore) -> None:
    text = "Quyết định số 12/QĐ-UBND về việc cấp giấy chứng nhận"
    store.put_bytes("documents/d/out/page-0001.txt", text.encode("utf-8"), "text/plain; charset=utf-8")
    assert store.get_bytes("documents/d/out/page-0001.txt").decode("utf-8") == text


def test_unreachable_s3_fails_clearly() -> None:
    with pytest.raises(StorageError, match="cannot reach"):
        open_store("s3://k:s@127.0.0.1:1/bucket")


def test_unknown_scheme() -> None:
    with pytest.raises(StorageError, match="unsupported"):
        open_store("ftp://x/y")
