"""The test-server harness itself: each server starts on loopback, does a real round trip, stops.

These tests fail (never skip) when a server cannot start.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import servers

pytestmark = pytest.mark.services


def _group_gone(proc: subprocess.Popen[bytes]) -> bool:
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return True
    return False


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = servers.free_ports(20)
    assert len(set(ports)) == 20
    port = servers.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_failed_start_raises_with_log_tail(tmp_path: Path) -> None:
    sp = servers._spawn("broken", [sys.executable, "-c", "print('boom: no config'); raise SystemExit(3)"], tmp_path)
    with pytest.raises(RuntimeError, match=r"(?s)broken exited with code 3.*boom: no config"):
        servers._wait_ready(sp, lambda: False, timeout=10)
    assert _group_gone(sp.proc)


def test_not_ready_in_time_is_killed(tmp_path: Path) -> None:
    sp = servers._spawn("sleeper", [sys.executable, "-c", "import time; print('waiting'); time.sleep(60)"], tmp_path)
    with pytest.raises(RuntimeError, match=r"(?s)sleeper not ready after.*waiting"):
        servers._wait_ready(sp, lambda: False, timeout=1)
    assert sp.proc.poll() is not None
    assert _group_gone(sp.proc)


def test_seaweedfs_round_trip(tmp_path: Path) -> None:
    from minio import Minio
    from minio.commonconfig import CopySource
    from minio.deleteobjects import DeleteObject
    from minio.error import S3Error

    srv = servers.start_seaweedfs(tmp_path)
    try:
        assert srv.endpoint.startswith("127.0.0.1:")
        assert srv.url == f"http://{srv.endpoint}"
        assert Path(srv.data_dir).is_relative_to(tmp_path)
        client = Minio(srv.endpoint, srv.access_key, srv.secret_key, secure=False, region=srv.region)
        client.make_bucket("sohoa-test")
        assert client.bucket_exists("sohoa-test")
        body = "hồ sơ đất đai".encode()
        client.put_object("sohoa-test", "a/b/c.txt", io.BytesIO(body), len(body))
        big = os.urandom(6 * 1024 * 1024 + 123)
        client.put_object("sohoa-test", "a/big.bin", io.BytesIO(big), -1, part_size=5 * 1024 * 1024)
        for key, want in (("a/b/c.txt", body), ("a/big.bin", big)):
            resp = client.get_object("sohoa-test", key)
            try:
                assert resp.read() == want
            finally:
                resp.close()
                resp.release_conn()
        assert client.stat_object("sohoa-test", "a/big.bin").size == len(big)
        client.copy_object("sohoa-test", "a/b/c.txt", CopySource("sohoa-test", "a/big.bin"))  # overwrite by copy
        assert client.stat_object("sohoa-test", "a/b/c.txt").size == len(big)
        names = sorted(o.object_name or "" for o in client.list_objects("sohoa-test", prefix="a/", recursive=True))
        assert names == ["a/b/c.txt", "a/big.bin"]
        assert not list(client.remove_objects("sohoa-test", [DeleteObject(n) for n in names]))
        assert not list(client.list_objects("sohoa-test", recursive=True))
        # Signatures are checked for real: a wrong secret is refused.
        bad = Minio(srv.endpoint, srv.access_key, "wrong-secret", secure=False, region=srv.region)
        with pytest.raises(S3Error) as err:
            bad.bucket_exists("sohoa-test")
        assert err.value.code in ("AccessDenied", "SignatureDoesNotMatch")
    finally:
        srv.stop()
    srv.stop()  # idempotent
    assert _group_gone(srv.proc)
    assert _port_closed(int(srv.endpoint.rsplit(":", 1)[1]))


def test_noida_es_round_trip(tmp_path: Path) -> None:
    from elasticsearch import Elasticsearch

    srv = servers.start_noida_es(tmp_path)
    try:
        assert srv.url.startswith("http://127.0.0.1:")
        es = Elasticsearch(srv.url, request_timeout=30)
        es.indices.create(
            index="docs",
            settings={
                "analysis": {
                    "analyzer": {
                        "folded": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]}
                    }
                }
            },
            mappings={
                "properties": {
                    "text": {"type": "text", "fields": {"folded": {"type": "text", "analyzer": "folded"}}},
                    "kind": {"type": "keyword"},
                }
            },
        )
        es.index(index="docs", id="1", document={"text": "hồ sơ đất đai Thành phố", "kind": "a"}, refresh=True)
        es.index(index="docs", id="2", document={"text": "hộ số", "kind": "b"}, refresh="wait_for")
        hits = es.search(index="docs", query={"match": {"text.folded": {"query": "ho so dat dai", "operator": "and"}}})
        assert [h["_id"] for h in hits["hits"]["hits"]] == ["1"]
        assert es.get(index="docs", id="2")["_source"]["kind"] == "b"
        es.delete(index="docs", id="2", refresh=True)
        assert es.count(index="docs")["count"] == 1
    finally:
        srv.stop()
    srv.stop()
    assert _group_gone(srv.proc)
    assert _port_closed(int(srv.url.rsplit(":", 1)[1]))


def test_es_folds_vietnamese_and_ranks_exact_first(es_url: str) -> None:
    """The contract sohoa's search relies on; runs on noida-db or on SOHOA_TEST_ES_URL."""
    import uuid

    from elasticsearch import Elasticsearch

    es = Elasticsearch(es_url, request_timeout=30)
    index = f"fold-{uuid.uuid4().hex[:8]}"
    es.indices.create(
        index=index,
        settings={
            "number_of_shards": 1,
            "analysis": {
                "analyzer": {
                    "folded": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]}
                }
            },
        },
        mappings={
            "properties": {"text": {"type": "text", "fields": {"folded": {"type": "text", "analyzer": "folded"}}}}
        },
    )
    try:
        tokens = es.indices.analyze(index=index, analyzer="folded", text="Hồ SƠ Đất đai ĐĂNG KÝ")["tokens"]
        assert [t["token"] for t in tokens] == ["ho", "so", "dat", "dai", "dang", "ky"]
        for i, text in enumerate(["hồ sơ", "hộ số", "hồ sơ đất đai Thành phố", "khác"]):
            es.index(index=index, id=str(i), document={"text": text})
        es.indices.refresh(index=index)

        def search(q: str) -> list[str]:
            body = {"multi_match": {"query": q, "fields": ["text^3", "text.folded"], "operator": "and"}}
            return [h["_id"] for h in es.search(index=index, query=body)["hits"]["hits"]]

        assert set(search("ho so dat dai")) == {"2"}
        ranked = search("hồ sơ")
        assert set(ranked) == {"0", "1", "2"}
        assert set(ranked[:2]) == {"0", "2"}  # exact diacritics outrank folded-only "hộ số"
        hl = es.search(
            index=index,
            query={"match": {"text.folded": "dat"}},
            highlight={"pre_tags": ["<b>"], "post_tags": ["</b>"], "fields": {"text.folded": {}}},
        )["hits"]["hits"]
        assert hl[0]["highlight"]["text.folded"] == ["hồ sơ <b>đất</b> đai Thành phố"]
    finally:
        es.indices.delete(index=index)


def test_redis_round_trip(tmp_path: Path) -> None:
    import redis

    srv = servers.start_redis(tmp_path)
    try:
        assert srv.url == f"redis://127.0.0.1:{srv.port}/0"
        client = redis.Redis.from_url(srv.url)
        client.set("sohoa:k", "hồ sơ")
        assert client.get("sohoa:k") == "hồ sơ".encode()
        client.close()
    finally:
        srv.stop()
    srv.stop()
    assert _group_gone(srv.proc)
    assert _port_closed(srv.port)
