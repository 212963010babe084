"""Helpers to run sohoa in the two deployment shapes during tests."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from sohoa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CODE = "000.00.06.H56-261105-0001"
_db = itertools.count(1)


def fresh_redis_url(base: str) -> str:
    """A Redis database of its own (flushed) so that workers of earlier tests cannot steal jobs."""
    url = base.rsplit("/", 1)[0] + f"/{next(_db) % 15 + 1}"
    redis.Redis.from_url(url).flushdb()
    return url


def scaled_settings(request: Any, tmp_path: Path, prefix: str, **overrides: Any) -> Settings:
    """Settings for the scaled-out shape on the harness's servers (S3, Elasticsearch API, Redis)."""
    from conftest import s3_url

    s3, es, rd = (request.getfixturevalue(n) for n in ("s3_server", "es_url", "redis_server"))
    return Settings(data_dir=tmp_path / "data", storage_url=s3_url(s3), index_url=es, es_index_prefix=prefix,
                    broker_url=fresh_redis_url(rd.url), **overrides)  # fmt: skip


def sohoa_process(
    settings: Settings, *args: str, log: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.to_env(), **(extra_env or {})}
    with open(log, "ab") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "sohoa.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_for(fn: Any, timeout: float = 300, interval: float = 0.3, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


ALL_ROLES = ("clerk", "staff", "manager", "auditor", "admin")


def api_token(settings: Settings, roles: tuple[str, ...] = ALL_ROLES, units: tuple[str, ...] = ("*",),
              name: str = "test") -> str:  # fmt: skip
    """A bearer token made directly in the settings' object store (as `sohoa token create` does)."""
    from sohoa.auth import AuthStore
    from storage import open_store

    store = open_store(settings.storage_url)
    try:
        return AuthStore(store).create_token(name, roles, units)
    finally:
        store.close()


def authorize(client: Any, settings: Settings, **kw: Any) -> Any:
    """*client* (a TestClient or httpx.Client) with a bearer token of every role and every unit."""
    client.headers["Authorization"] = f"Bearer {api_token(settings, **kw)}"
    return client
