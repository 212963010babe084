"""The audit log (NĐ 13/2023): append-only segments in object storage, on file:// and s3:// (SeaweedFS)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from sohoa import audit
from sohoa.audit import AuditEvent, AuditLog, NullAudit, read_events, segment_key, verify
from sohoa.settings import Settings
from storage import ObjectStore, StorageError, open_store

from conftest import s3_url

ROOT = Path(__file__).resolve().parent.parent
KEY = re.compile(r"^audit/\d{4}/\d{2}/\d{2}/\d{6}\.\d{6}-[A-Za-z0-9.-]+-\d+-\d{6,}\.jsonl$")
NFD = lambda s: unicodedata.normalize("NFD", s)  # noqa: E731


class ProxyStore(ObjectStore):
    """A real store behind a switch: ``down`` makes writes (and exists) fail; ``gate`` holds puts; logs calls."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.down = False
        self.gate: threading.Event | None = None
        self.in_put = threading.Event()
        self.puts: list[str] = []
        self.lists: list[str] = []

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.in_put.set()
        if self.gate is not None:
            self.gate.wait(30)
        if self.down:
            raise StorageError("store down (test)")
        self.puts.append(key)
        self.inner.put_bytes(key, data, content_type)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        self.put_bytes(key, path.read_bytes(), content_type)

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def download(self, key: str, path: Path) -> None:
        self.inner.download(key, path)

    def exists(self, key: str) -> bool:
        if self.down:
            raise StorageError("store down (test)")
        return self.inner.exists(key)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        self.lists.append(prefix)
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return open_store((tmp_path / "objects").as_uri())
    return open_store(s3_url(request.getfixturevalue("s3_server")))


def ev(ts: str | None = None, **kw: object) -> AuditEvent:
    base: dict[str, object] = dict(
        actor="lan", actor_kind="user", roles=["clerk"], ip="10.0.0.7", action="search", target="", dossier=""
    )
    base.update(kw)
    if ts is not None:
        base["ts"] = ts
    return AuditEvent(**base)  # type: ignore[arg-type]


def segments(store: ObjectStore) -> list[str]:
    return [k for k in store.list("audit/") if k.endswith(".jsonl")]


def wait_until(cond: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# -- the event ---------------------------------------------------------------------------------------------
def test_event_nfc_time_and_roundtrip() -> None:
    e = AuditEvent(
        ts="2026-07-15T15:30:00+07:00",
        actor=NFD("Nguyễn Thị Hồng"),
        actor_kind="user",
        roles=[NFD("cán bộ một cửa")],
        ip="10.1.2.3",
        action="search",
        target=NFD("hồ sơ đất đai"),
        dossier="000.00.06.H56-260715-0361",
        details={"q": NFD("quyền sử dụng đất"), "filters": {NFD("đơn vị"): [NFD("UBND xã Quảng Định")]}},
        outcome="ok",
        status=200,
    )
    assert e.ts == "2026-07-15T08:30:00.000000+00:00" and e.day == "2026-07-15"
    assert e.actor == "Nguyễn Thị Hồng" and e.actor != NFD("Nguyễn Thị Hồng")
    assert e.roles == ["cán bộ một cửa"] and e.target == "hồ sơ đất đai"
    assert e.details == {"q": "quyền sử dụng đất", "filters": {"đơn vị": ["UBND xã Quảng Định"]}}
    back = AuditEvent.from_dict(json.loads(e.to_json()))
    assert back == e and back.to_dict() == e.to_dict()
    assert AuditEvent.from_dict({**e.to_dict(), "added_later": 1}) == e
    now = AuditEvent(action="auth.login")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", now.ts)
    assert now.actor == "anonymous" and now.outcome == "ok" and now.status == 0
    assert AuditEvent(ts="2026-01-02T03:04:05", action="x").ts == "2026-01-02T03:04:05.000000+00:00"  # naive = UTC
    for bad in ({"outcome": "maybe"}, {"actor_kind": "robot"}, {"ts": "yesterday"}, {"action": " "}):
        with pytest.raises(ValueError):
            AuditEvent(**{"action": "search", **bad})  # type: ignore[arg-type]


def test_null_audit_records_nothing() -> None:
    n = NullAudit()
    n.record(ev())
    assert n.flush() == 0 and n.query() == [] and n.pending == 0 and n.verify().ok
    n.close()


# -- writing ---------------------------------------------------------------------------------------------
def test_threads_record_then_close_exactly_n(store: ObjectStore) -> None:
    threads, per = 8, 150
    log = AuditLog(store, flush_interval_s=0.05, max_buffer=64)

    def work(t: int) -> None:
        for i in range(per):
            log.record(
                ev(
                    actor=NFD(f"cán bộ {t}"),
                    action="document.read",
                    target=f"{t}-{i}",
                    dossier=f"000.00.06.H56-261130-{t:04d}",
                    details={"trang": i, "ghi chú": NFD("Đơn đăng ký biến động đất đai")},
                    status=200,
                )
            )

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    log.close()
    assert log.pending == 0
    got = read_events(store, limit=100_000)
    assert len(got) == threads * per
    assert sorted(e.target for e in got) == sorted(f"{t}-{i}" for t in range(threads) for i in range(per))
    one = next(e for e in got if e.target == "3-17")
    assert one.actor == "cán bộ 3" and one.dossier == "000.00.06.H56-261130-0003"
    assert one.details == {"trang": 17, "ghi chú": "Đơn đăng ký biến động đất đai"}
    assert (one.action, one.actor_kind, one.roles, one.ip, one.status) == (
        "document.read", "user", ["clerk"], "10.0.0.7", 200,
    )  # fmt: skip
    keys = segments(store)
    assert len(keys) >= threads * per // 64 and all(KEY.match(k) for k in keys)
    assert all(len(store.get_bytes(k).splitlines()) - 1 <= 64 for k in keys)
    res = verify(store)
    assert res.ok, res.problems
    assert (res.segments, res.events) == (len(keys), threads * per)


def test_segment_layout_one_day_per_segment(tmp_path: Path) -> None:
    store = open_store((tmp_path / "o").as_uri())
    log = AuditLog(store, flush_interval_s=3600)
    log.record(ev("2020-05-01T23:59:59.900000+00:00", target=NFD("Trần Thị Mai")))
    log.record(ev("2020-05-02T00:00:00.100000+00:00", target="b"))
    log.record(ev("2020-05-01T23:59:59.950000+00:00", target="c"))
    assert log.flush() == 3 and log.pending == 0
    keys = segments(store)
    host, pid = audit._hostname(), os.getpid()
    assert len(keys) == 2 and all(KEY.match(k) for k in keys)
    assert keys[0].startswith(f"audit/2020/05/01/235959.900000-{host}-{pid}-")
    assert keys[1].startswith(f"audit/2020/05/02/000000.100000-{host}-{pid}-")
    raw = store.get_bytes(keys[0])
    assert "Trần Thị Mai".encode() in raw  # UTF-8, NFC, not \u escapes
    lines = raw.decode("utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["audit_segment"] == 1 and header["n"] == 0 and header["prev"] == "" and header["count"] == 2
    assert [json.loads(x)["target"] for x in lines[1:]] == ["Trần Thị Mai", "c"]
    assert json.loads(store.get_bytes(keys[1]).splitlines()[0])["n"] == 1
    log.close()


def test_segments_never_overwritten(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = ProxyStore(store)
    ts = "2021-02-03T04:05:06.123456+00:00"  # the same time everywhere: the keys differ only by seq
    a, b = AuditLog(spy, flush_interval_s=3600), AuditLog(spy, flush_interval_s=3600)
    # an object already at the key the next segment would take is not touched
    monkeypatch.setattr(audit, "_SEQ", itertools.count(500))
    taken = segment_key(ts, 500, audit._hostname(), os.getpid())
    store.put_bytes(taken, b"not mine")
    for rnd in range(2):
        a.record(ev(ts, actor="a", target=f"a{rnd}"))
        b.record(ev(ts, actor="b", target=f"b{rnd}"))
        assert a.flush() == 1 and b.flush() == 1
    assert store.get_bytes(taken) == b"not mine" and taken not in spy.puts
    assert len(spy.puts) == 4 and len(set(spy.puts)) == 4
    assert {k.split("/")[4][:13] for k in spy.puts} == {"040506.123456"}
    got = read_events(store, since=date(2021, 2, 3), until=date(2021, 2, 3))
    assert sorted(e.target for e in got) == ["a0", "a1", "b0", "b1"]
    store.delete(taken)
    res = verify(store)
    assert res.ok, res.problems
    assert {json.loads(store.get_bytes(k).splitlines()[0])["writer"] for k in spy.puts} == {a.writer, b.writer}
    a.close()
    b.close()


# -- reading ---------------------------------------------------------------------------------------------
def test_query_filters(store: ObjectStore) -> None:
    spy = ProxyStore(store)
    log = AuditLog(spy, flush_interval_s=3600)
    d1, d2 = "000.00.06.H56-200301-0001", "000.00.06.H56-200302-0002"
    e1 = ev("2020-03-01T08:00:00+00:00", actor="lan", action="search", dossier=d1, details={"q": "ho so dat dai"})
    e2 = ev("2020-03-01T23:59:59.999999+00:00", actor="hùng", action="document.read", dossier=d1, target="doc1")
    e3 = ev("2020-03-02T00:00:00+00:00", actor="lan", action="document.read", dossier=d2, outcome="denied", status=403)
    e4 = ev("2020-03-03T10:00:00+00:00", actor="lan", action="export.portal", actor_kind="cli")
    e5 = ev("2020-03-05T10:00:00+00:00", actor="hùng", action="search", dossier=d2)
    now = datetime.now(UTC)
    recent = ev(audit.utc_iso(now - timedelta(minutes=5)), actor="lan", action="search", target="recent")
    old = ev(audit.utc_iso(now - timedelta(days=40)), actor="lan", action="search", target="old")
    for e in (e1, e2, e3, e4, old):
        log.record(e)
    assert log.flush() == 5
    log.record(e5)  # still in the buffer: query() includes it
    log.record(recent)
    assert log.pending == 2

    def q(**kw: object) -> list[AuditEvent]:
        kw.setdefault("since", date(2020, 3, 1))
        kw.setdefault("until", date(2020, 3, 5))
        return log.query(**kw)  # type: ignore[arg-type]

    spy.lists.clear()
    assert q() == [e5, e4, e3, e2, e1]  # newest first, fields intact
    assert sorted(spy.lists) == [f"audit/2020/03/0{d}/" for d in range(1, 6)]  # only the days asked for
    assert q(user="lan") == [e4, e3, e1]
    assert q(user=NFD("hùng")) == [e5, e2]
    assert q(dossier=d1) == [e2, e1]
    assert q(action="document.read") == [e3, e2] == q(action="document.*")
    assert q(action="search") == [e5, e1]
    assert q(outcome="denied") == [e3]
    assert q(until=date(2020, 3, 1)) == [e2, e1]  # a date includes its whole day
    assert q(since=date(2020, 3, 2), until=date(2020, 3, 4)) == [e4, e3]
    assert q(since=datetime(2020, 3, 1, 23, 59, 59, 999999, UTC), until=datetime(2020, 3, 2, tzinfo=UTC)) == [e3, e2]
    assert q(limit=2) == [e5, e4]
    assert q(user="nobody") == [] and q(limit=0) == []
    default = log.query()  # the last 31 days
    assert [e.target for e in default] == ["recent"]
    assert [e.target for e in log.query(since=now.date() - timedelta(days=45))] == ["recent", "old"]
    log.close()
    assert log.pending == 0
    # a limit stops reading at the newest days once enough events are found
    spy.lists.clear()
    assert read_events(spy, since=date(2020, 3, 1), until=date(2020, 3, 5), limit=1) == [e5]
    assert spy.lists == ["audit/2020/03/05/"]
    assert read_events(store, since=date(2020, 3, 1), until=date(2020, 3, 5)) == [e5, e4, e3, e2, e1]


# -- failures --------------------------------------------------------------------------------------------
def test_failing_store_keeps_events_and_recovers(
    store: ObjectStore, caplog: pytest.LogCaptureFixture
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, logger="sohoa.audit")
    flaky = ProxyStore(store)
    flaky.down = True
    log = AuditLog(flaky, flush_interval_s=0.05)
    for i in range(10):
        log.record(ev(target=f"t{i}", action="page.read"))  # never raises
    time.sleep(0.4)  # several ticks, every one failing
    assert log.pending == 10 and log.flush() == 0 and log.pending == 10
    assert log.last_error and "store down" in log.last_error
    assert any("audit flush failed" in r.getMessage() for r in caplog.records)
    assert segments(store) == []
    flaky.down = False
    wait_until(lambda: log.pending == 0)  # the next tick writes them, without any call
    assert log.last_error is None
    got = read_events(store)
    assert sorted(e.target for e in got) == [f"t{i}" for i in range(10)] and len(got) == 10
    log.close()
    assert verify(store).ok


def test_record_never_waits_for_the_store(tmp_path: Path) -> None:
    slow = ProxyStore(open_store((tmp_path / "o").as_uri()))
    slow.gate = threading.Event()
    opener = threading.Timer(5.0, slow.gate.set)  # so that a blocking record() fails the test, not hangs it
    opener.start()
    log = AuditLog(slow, flush_interval_s=0.01)
    log.record(ev(target="first"))
    assert slow.in_put.wait(5), "the flusher did not start writing"
    t0 = time.perf_counter()
    for i in range(2000):
        log.record(ev(target=str(i)))
    elapsed = time.perf_counter() - t0
    assert not slow.gate.is_set() and elapsed < 1.0, f"record() took {elapsed:.2f} s while a flush was stuck"
    slow.gate.set()
    opener.cancel()
    log.close()
    assert len(read_events(slow.inner, limit=10_000)) == 2001


# -- tamper evidence -------------------------------------------------------------------------------------
def test_hash_chain_verifies_and_detects_changes(store: ObjectStore) -> None:
    log = AuditLog(store, flush_interval_s=3600)
    for n in range(3):
        log.record(ev(f"2022-06-0{n + 1}T09:00:00+00:00", actor="lan", target=f"s{n}a"))
        log.record(ev(f"2022-06-0{n + 1}T09:00:01+00:00", actor="hùng", target=f"s{n}b"))
        assert log.flush() == 2
    log.close()
    keys = segments(store)
    assert len(keys) == 3
    res = verify(store)
    assert res.ok and (res.segments, res.events) == (3, 6), res.problems
    original = {k: store.get_bytes(k) for k in keys}

    def check(expect_in_problems: str) -> None:
        r = verify(store)
        assert not r.ok and any(expect_in_problems in p for p in r.problems), r.problems
        for k, data in original.items():  # restore for the next case
            store.put_bytes(k, data)
        assert verify(store).ok

    # 1. an event edited in the middle segment: its body hash no longer matches
    store.put_bytes(keys[1], original[keys[1]].replace(b'"actor":"lan"', b'"actor":"mai"'))
    check(f"{keys[1]}: events do not match")
    # 2. ... with the header's body hash recomputed too: the next segment's prev hash does not match
    head, _, body = original[keys[1]].partition(b"\n")
    body = body.replace(b'"actor":"lan"', b'"actor":"mai"')
    hdr = json.loads(head)
    hdr["body_sha256"] = __import__("hashlib").sha256(body).hexdigest()
    store.put_bytes(keys[1], json.dumps(hdr, separators=(",", ":")).encode() + b"\n" + body)
    check(f"{keys[2]}: prev hash does not match")
    # 3. the middle segment deleted: a gap in the chain
    store.delete(keys[1])
    check("segments 1..1 missing")
    # 4. an event removed from the last segment (and the count fixed): body hash
    head, _, body = original[keys[2]].partition(b"\n")
    store.put_bytes(keys[2], head.replace(b'"count":2', b'"count":1') + b"\n" + body.splitlines(True)[0])
    check(f"{keys[2]}: events do not match")
    # 5. the first segment deleted: the chain no longer starts at 0
    store.delete(keys[0])
    check("segments 0..0 missing")
    # ... unless verifying from a later day, where a chain may begin before the range
    store.delete(keys[0])
    assert verify(store, since=date(2022, 6, 2)).ok
    r = verify(store, since=date(2022, 6, 2), until=date(2022, 6, 3))
    assert r.ok and (r.segments, r.events) == (2, 4)
    store.put_bytes(keys[0], original[keys[0]])


# -- process life ----------------------------------------------------------------------------------------
def _python(code: str, *args: str, **popen: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, env=env, **popen)  # type: ignore[call-overload]


def test_exit_without_close_flushes_and_fork_child_has_own_chain(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    p = _python(
        """
        import os, sys
        from sohoa.audit import AuditEvent, AuditLog
        from storage import open_store
        log = AuditLog(open_store(sys.argv[1]), flush_interval_s=3600)
        log.record(AuditEvent(action="search", target="parent-before-fork"))
        pid = os.fork()
        if pid == 0:
            log.record(AuditEvent(action="search", target="child-1"))
            log.record(AuditEvent(action="search", target="child-2"))
            log.close()
            os._exit(0)
        os.waitpid(pid, 0)
        log.record(AuditEvent(action="search", target="parent-after-fork"))
        sys.exit(0)  # no close(): the atexit hook writes the buffer
        """,
        root.as_uri(),
    )
    assert p.wait(60) == 0
    store = open_store(root.as_uri())
    got = read_events(store)
    assert sorted(e.target for e in got) == ["child-1", "child-2", "parent-after-fork", "parent-before-fork"]
    assert len({k.rsplit("-", 2)[-2] for k in segments(store)}) == 2  # two pids
    res = verify(store)
    assert res.ok, res.problems


def test_kill_9_loses_at_most_the_unflushed_events(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    p = _python(
        """
        import sys, time
        from sohoa.audit import AuditEvent, AuditLog
        from storage import open_store
        log = AuditLog(open_store(sys.argv[1]), flush_interval_s=0.2)
        for i in range(5):
            log.record(AuditEvent(action="search", target=f"old-{i}"))
        time.sleep(1.0)  # several flush intervals
        log.flush_interval_s = 3600
        time.sleep(0.3)  # the flusher now sleeps for an hour
        log.record(AuditEvent(action="search", target="unflushed"))
        print("ready", flush=True)
        time.sleep(60)
        """,
        root.as_uri(),
        stdout=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    got = read_events(open_store(root.as_uri()))
    assert sorted(e.target for e in got) == [f"old-{i}" for i in range(5)]


# -- the CLI ---------------------------------------------------------------------------------------------
CLI = """
import sys
import sohoa.cli as cli
from sohoa.cli import audit
if audit not in cli.MODULES:  # until sohoa/cli/__init__.py lists it
    cli.MODULES = (*cli.MODULES, audit)
sys.exit(cli.main(sys.argv[1:]))
"""


def test_cli_audit(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = open_store(Settings(data_dir=data).storage_url)
    log = AuditLog(store, flush_interval_s=3600)
    today = datetime.now(UTC).date()
    log.record(
        ev(
            actor="nguyenvana",
            ip="10.0.0.5",
            action="document.read",
            target="doc42",
            dossier="000.00.06.H56-261130-0001",
        )
    )
    log.record(ev(actor=NFD("cán bộ Hùng"), action="search", details={"q": "ho so [red]dat dai[/red]"}))
    log.record(ev(actor="token:7", actor_kind="token", action="export.portal", outcome="denied", status=403))
    log.record(ev("2020-01-15T10:00:00+00:00", actor="nguyenvana", action="search", target="[bold]x[/bold]"))
    log.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_")}
    env.update(SOHOA_DATA_DIR=str(data), SOHOA_LOG_LEVEL="WARNING", COLUMNS="200", PYTHONPATH=str(ROOT))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-c", CLI, "audit", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
        print(f"$ sohoa audit {' '.join(args)} → {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    r = run()
    assert r.returncode == 0
    for shown in ("nguyenvana", "cán bộ Hùng", "token:7", "document.read", "export.portal", "doc42", "10.0.0.5",
                  "000.00.06.H56-261130-0001", "denied 403", "3 event(s)"):  # fmt: skip
        assert shown in r.stdout, shown
    assert "[bold]x" not in r.stdout  # 2020 is outside the default 31 days
    r = run("--json", "--user", "nguyenvana")
    assert r.returncode == 0
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["action"], x["target"]) for x in rows] == [("document.read", "doc42")]
    r = run("--json", "--user", "nguyenvana", "--from", "2020-01-01", "--to", today.isoformat())
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 0 and [(x["action"], x["ts"][:4]) for x in rows] == [
        ("document.read", str(today.year)), ("search", "2020"),
    ]  # fmt: skip
    r = run("--from", "2020-01-15", "--to", "2020-01-15")
    assert r.returncode == 0 and "[bold]x[/bold]" in r.stdout and "1 event(s)" in r.stdout  # no markup injection
    r = run("--json", "--action", "export.*", "--limit", "5")
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 0 and [(x["actor"], x["outcome"], x["status"]) for x in got] == [("token:7", "denied", 403)]
    bad = run("--from", "garbage")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    bad = run("--from", "2026-02-01", "--to", "2026-01-01")
    assert bad.returncode == 2 and "--from" in bad.stdout + bad.stderr
