"""Test harness: real servers (SeaweedFS S3, Elasticsearch API, Redis) on free loopback ports.

A test that needs a server that cannot start FAILS; nothing is skipped. Set
``SOHOA_TEST_ES_URL=http://host:9200`` to run the Elasticsearch tests against a real cluster
instead of the noida-db emulator.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sohoa.settings import Settings  # noqa: E402

import servers  # noqa: E402


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.S3Server]:
    srv = servers.start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def es_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("SOHOA_TEST_ES_URL")
    if external:
        yield external
        return
    srv = servers.start_noida_es(tmp_path_factory.mktemp("noida"))
    yield srv.url
    srv.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.RedisServer]:
    srv = servers.start_redis(tmp_path_factory.mktemp("redis"))
    yield srv
    srv.stop()


def s3_url(srv: servers.S3Server, bucket: str | None = None) -> str:
    bucket = bucket or f"t{uuid.uuid4().hex[:12]}"
    return f"s3://{srv.access_key}:{srv.secret_key}@{srv.endpoint}/{bucket}?region={srv.region}"


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", broker_url="memory://", worker_threads=2)
