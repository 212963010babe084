"""ONE contract suite for the job queue, run against the in-process broker and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import UploadItem, accept_batch
from ingest.service import Accepted
from sohoa.context import Context
from sohoa.errors import TransientError
from sohoa.settings import Settings
from workers.queue import QueueUnavailable

import fixtures
from deploy import CODE, fresh_redis_url, wait_for


@pytest.fixture(params=["memory", "redis"])
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    url = "memory://" if request.param == "memory" else fresh_redis_url(request.getfixturevalue("redis_server").url)
    c = Context(Settings(data_dir=tmp_path / "data", broker_url=url, worker_threads=2))
    c.queue.start_worker(2)
    yield c
    c.close()


def test_jobs_are_processed_and_duplicates_are_harmless(ctx: Context, tmp_path: Path) -> None:
    items = []
    for i, lines in enumerate((["Giấy xác nhận cư trú"], ["Biên nhận hồ sơ"], ["Phiếu kiểm soát quá trình"])):
        p = tmp_path / f"{i}.png"
        p.write_bytes(fixtures.png_scan(lines))
        items.append(UploadItem(p, p.name, CODE, "input"))
    ids = [r.manifest.id for r in accept_batch(ctx, items) if isinstance(r, Accepted)]
    assert len(ids) == 3
    ctx.queue.enqueue(ids[0])  # a duplicate delivery must not duplicate anything
    wait_for(lambda: all(ctx.load_manifest(i).status == "done" for i in ids), 180, what="3 jobs done")
    ctx.queue.join(60)
    assert [ctx.index.page_count(i) for i in ids] == [1, 1, 1]
    assert ctx.load_manifest(ids[0]).attempts == 1


def test_same_file_twice_is_one_document(ctx: Context, tmp_path: Path) -> None:
    p = tmp_path / "a.png"
    p.write_bytes(fixtures.png_scan())
    [a] = accept_batch(ctx, [UploadItem(p, "a.png", CODE, "input")])
    [b] = accept_batch(ctx, [UploadItem(p, "a-again.png", CODE, "input")])
    assert isinstance(a, Accepted) and isinstance(b, Accepted)
    assert b.duplicate and b.manifest.id == a.manifest.id


def test_unreachable_broker_rejects_upload_and_leaves_nothing(tmp_path: Path) -> None:
    c = Context(Settings(data_dir=tmp_path / "data", broker_url="redis://127.0.0.1:1/0"))
    p = tmp_path / "a.png"
    p.write_bytes(fixtures.png_scan())
    with pytest.raises(QueueUnavailable) as e:  # transient: the API answers 503 with Retry-After
        accept_batch(c, [UploadItem(p, "a.png", CODE, "input")])
    assert isinstance(e.value, TransientError) and e.value.backend == "broker"
    assert list(c.store.list("")) == []
    assert c.index.list_documents() == []
