"""Fault injection on real servers, shared by ``tests/test_faults.py`` and ``bench/faults.py``.

A :class:`Cluster` owns its own SeaweedFS (S3), noida-db (Elasticsearch API) and Redis, started by the
harness in ``tests/servers.py``, and can stop and start each of them again on the same ports with the same
data (Redis without persistence: a restart loses every message). sohoa runs as real processes (``sohoa serve``
without workers, ``sohoa worker``), logging JSON to files, with a private temp folder.

:func:`verdict` checks what every fault scenario must leave: every accepted document ``done`` (or ``failed`` for
a permanent reason), storage and index agreeing, no document processed by two runs at once (from the workers'
``run.start``/``run.end`` log events), no document completed twice, no temp folders, no zombie processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sohoa.context import Context
from sohoa.models import Status
from sohoa.settings import Settings

import servers
from deploy import api_token, fresh_redis_url, kill, sohoa_process, wait_for

FAST = {  # test-sized timings: leases, reconciler passes and retries in seconds, not minutes
    "lease_ttl_s": 6.0,
    "reconcile_interval_s": 2.0,
    "retry_min_backoff_ms": 500,
    "retry_max_backoff_ms": 4000,
    "redis_heartbeat_ms": 4000,
    "worker_threads": 2,
}


def _cmdline(srv: servers.ServerProcess) -> list[str]:
    """The command that started *srv*, from the first line of its log (redis rewrites its /proc cmdline)."""
    first = next(line for line in srv.log.read_text(errors="replace").splitlines() if line.startswith("$ "))
    return first[2:].split(" ")


def _respawn(old: servers.ServerProcess, cmd: list[str], ready: Any, timeout: float = 60) -> subprocess.Popen[bytes]:
    sp = servers._spawn(old.name, cmd, old.log.parent)
    servers._wait_ready(sp, ready, timeout)
    return sp.proc


class Cluster:
    """S3 + Elasticsearch API + Redis of one test module or bench run, each restartable in place."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.s3 = servers.start_seaweedfs(self.workdir / "s3")
        self.es = servers.start_noida_es(self.workdir / "es")
        self.redis = servers.start_redis(self.workdir / "redis")
        self._cmd = {name: _cmdline(srv) for name, srv in self._servers().items()}

    def _servers(self) -> dict[str, servers.ServerProcess]:
        return {"s3": self.s3, "es": self.es, "redis": self.redis}

    def settings(self, tmp: Path, **overrides: Any) -> Settings:
        prefix = f"f{uuid.uuid4().hex[:8]}"
        s3 = f"s3://{self.s3.access_key}:{self.s3.secret_key}@{self.s3.endpoint}/{prefix}?region={self.s3.region}"
        base = {**FAST, **overrides}
        return Settings(data_dir=tmp / "data", storage_url=s3, index_url=self.es.url, es_index_prefix=prefix,
                        broker_url=fresh_redis_url(self.redis.url), **base)  # fmt: skip

    # -- faults ------------------------------------------------------------------------------------------
    def stop(self, name: str) -> None:
        self._servers()[name].stop()

    def start(self, name: str) -> None:
        srv = self._servers()[name]
        if name == "s3":
            from minio import Minio

            s3 = self.s3

            def ready() -> bool:
                Minio(s3.endpoint, s3.access_key, s3.secret_key, secure=False, region=s3.region).list_buckets()
                return True
        elif name == "es":

            def ready() -> bool:
                return servers._http_get_ok(self.es.url + "/_cluster/health")
        else:

            def ready() -> bool:
                import redis

                return bool(redis.Redis.from_url(self.redis.url, socket_timeout=1).ping())

        srv.proc = _respawn(srv, self._cmd[name], ready)

    def close(self) -> None:
        for srv in self._servers().values():
            srv.stop()


@dataclass
class Sohoa:
    """sohoa processes of one scenario: an API (no workers) and workers, logging JSON with a private TMPDIR."""

    settings: Settings
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: dict[int, float] = field(default_factory=dict)  # pid -> when it was killed
    port: int = 0
    token: str = ""

    def __post_init__(self) -> None:
        self.tmp = self.workdir / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.env = {"SOHOA_LOG_JSON": "1", "TMPDIR": str(self.tmp)}

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start_worker(self, name: str = "worker", threads: int | None = None) -> subprocess.Popen[bytes]:
        args = ["worker"] + (["--threads", str(threads)] if threads else [])
        p = sohoa_process(self.settings, *args, log=self.log(name), extra_env=self.env)
        self.procs[name] = p
        return p

    def start_api(self, name: str = "api") -> str:
        if not self.port:
            self.port = servers.free_port()
        env = {**self.env, "SOHOA_PORT": str(self.port)}
        self.procs[name] = sohoa_process(self.settings, "serve", log=self.log(name), extra_env=env)
        wait_for(lambda: self.live(), 90, what="API up")
        if not self.token:
            self.token = api_token(self.settings)
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def live(self) -> bool:
        try:
            return httpx.get(self.url + "/health/live", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        p = self.procs[name]
        self.kills[p.pid] = time.time()
        if sig == signal.SIGKILL:
            os.kill(p.pid, sig)  # the process only (its tesseract children are orphaned, as with the OOM killer)
            p.wait(20)
        else:
            kill(p, sig)

    def stop_all(self) -> None:
        for p in self.procs.values():
            kill(p, signal.SIGTERM)

    def upload(self, files: list[tuple[str, bytes]], dossier: str, timeout: float = 120) -> httpx.Response:
        return httpx.post(
            self.url + "/documents",
            data={"dossier_code": dossier, "kind": "input", "component": "Giấy tờ"},
            files=[("files", (n, b, "image/png")) for n, b in files],
            headers=self.auth,
            timeout=timeout,
        )

    def events(self) -> list[dict[str, Any]]:
        out = []
        for log in self.workdir.glob("*.log"):
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("{") and '"event"' in line:
                    with contextlib.suppress(ValueError):
                        out.append(json.loads(line))
        return out


def scans(n: int, tag: str = "") -> list[tuple[str, bytes]]:
    """*n* different one-page scans (distinct SHA-256), small enough to OCR in ~2 s each."""
    import fixtures

    tag = tag or uuid.uuid4().hex[:6]
    return [(f"giay-{tag}-{i:03d}.png", fixtures.png_scan([f"Giấy xác nhận số {i} mã {tag}"])) for i in range(n)]


def all_done(ctx: Context, ids: list[str]) -> bool:
    """Every document finished; False while the store itself still answers errors (a server just restarted:
    SeaweedFS answers 500 for a few seconds after /health/ready turns green)."""
    from sohoa.errors import TransientError

    try:
        return all(Status(ctx.load_manifest(i).status).terminal for i in ids)
    except TransientError:
        return False


@dataclass
class Verdict:
    accepted: int
    done: int
    failed: list[str]
    lost: list[str]  # accepted, not finished
    disagree: list[str]  # storage and index differ
    overlapping: list[str]  # two runs of the same document at once
    completed_twice: list[str]
    temp_left: list[str]
    zombies: list[str]

    @property
    def duplicated(self) -> int:
        return len(set(self.overlapping) | set(self.completed_twice))

    def ok(self) -> bool:
        return not (self.failed or self.lost or self.disagree or self.overlapping or self.completed_twice
                    or self.temp_left or self.zombies) and self.done == self.accepted  # fmt: skip

    def __str__(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())


def runs(events: list[dict[str, Any]], kills: dict[int, float]) -> dict[str, list[tuple[float, float, str]]]:
    """Per document, the (start, end, outcome) of every run; a run of a killed process ends when it was killed."""
    ends = {(e["doc_id"], e["owner"], round(float(e["t0"]), 6)): e for e in events if e.get("event") == "run.end"}
    out: dict[str, list[tuple[float, float, str]]] = {}
    for e in events:
        if e.get("event") != "run.start":
            continue
        key = (e["doc_id"], e["owner"], round(float(e["t"]), 6))
        end = ends.get(key)
        pid = int(str(e["owner"]).split(":")[1])
        if end is not None:
            span = (float(e["t"]), float(end["t"]), str(end.get("outcome")))
        else:
            span = (float(e["t"]), kills.get(pid, float("inf")), "killed" if pid in kills else "running")
        out.setdefault(e["doc_id"], []).append(span)
    return out


def zombies(roots: list[int]) -> list[str]:
    """Zombie processes whose parent is one of *roots* (or any zombie tesseract at all)."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,stat=,comm="], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2].startswith("Z") and (int(parts[1]) in roots or "tesseract" in parts[3]):
            found.append(line.strip())
    return found


def verdict(ctx: Context, ids: list[str], sohoa: Sohoa) -> Verdict:
    failed, lost, disagree = [], [], []
    done = 0
    for i in ids:
        m = ctx.load_manifest(i)
        if m.status == Status.DONE.value:
            done += 1
        elif m.status == Status.FAILED.value:
            failed.append(f"{i}: {m.error}")
        else:
            lost.append(f"{i}: {m.status} {m.error or ''}")
        d = ctx.index.get_document(i)
        if d is None or d.status != m.status or d.page_count != m.page_count or (
            m.status == Status.DONE.value and ctx.index.page_count(i) != len(m.pages)
        ):  # fmt: skip
            disagree.append(f"{i}: store {m.status}/{m.page_count} index {d.status if d else None}")
    spans = runs(sohoa.events(), sohoa.kills)
    overlapping, twice = [], []
    for doc, lst in spans.items():
        lst.sort()
        if any(b[0] < a[1] for a, b in zip(lst, lst[1:], strict=False)):
            overlapping.append(doc)
        if sum(1 for s in lst if s[2] == "done") > 1:
            twice.append(doc)
    temp = [p.name for p in sohoa.tmp.iterdir() if p.name.startswith("sohoa-")]
    roots = [os.getpid(), *(p.pid for p in sohoa.procs.values() if p.poll() is None)]
    return Verdict(len(ids), done, failed, lost, disagree, overlapping, twice, temp, zombies(roots))
