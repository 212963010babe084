"""Append-only audit log of who did what to which dossier, kept in object storage (the system of record).

Decree 13/2023/NĐ-CP on personal-data protection asks the controller to be able to show who processed
citizens' personal data, when, and what for. Every read, search, export, upload, change and
administrative act is therefore recorded as an :class:`AuditEvent` and kept next to the documents.

How it is written
-----------------
``AuditLog.record(event)`` only appends the event to an in-memory buffer (a lock and a list append:
no I/O, never raises, does not slow a search measurably — see ``bench/audit_overhead.py``). A daemon
thread flushes the buffer every ``flush_interval_s`` seconds, or as soon as it holds ``max_buffer``
events. ``close()`` (and an ``atexit`` hook, for a process that forgets to call it) flushes what is left.

Each flush writes NEW objects only, never rewriting or appending to an existing one, so the log is
append-only on ``file://`` and on S3 alike (on S3, add a bucket policy or Object Lock in governance/
compliance mode so that nobody can delete or overwrite ``audit/`` either)::

    audit/{YYYY}/{MM}/{DD}/{HHMMSS.ffffff}-{hostname}-{pid}-{seq:06d}.jsonl

* one segment holds the events of ONE UTC day (a flush that spans midnight writes one segment per day),
  at most ``max_buffer`` of them; the date and ``HHMMSS.ffffff`` in the key are those of the earliest
  event of the segment, so the events of day D are all under ``audit/D/`` and a query lists only the
  day folders it needs;
* ``seq`` counts the segments written by this process (all ``AuditLog`` instances of the process share
  the counter), so two segments of one process never get the same key, even in the same microsecond;
  the writer also checks that the key does not exist before writing it;
* the file is UTF-8 JSON Lines: line 1 is the segment header, every following line is one event
  (:meth:`AuditEvent.to_dict`), all text NFC.

Tamper evidence (a per-writer hash chain)
-----------------------------------------
The header line is ``{"audit_segment": 1, "writer": "<host>-<pid>-<random>", "n": 0, "prev": "",
"count": 12, "body_sha256": "…", "written": "<UTC ISO time>"}``: ``writer`` names one ``AuditLog``
instance (one chain), ``n`` numbers its segments from 0, ``prev`` is the sha256 (hex) of the complete
bytes of segment ``n-1`` of the same writer ("" for n = 0), ``body_sha256`` the sha256 of the event lines
of this segment. :func:`verify` recomputes both: editing, inserting or deleting an event in any segment,
or deleting a segment in the middle of a chain, is reported. What the chain cannot show: the removal of
the LAST segment(s) of a chain, or a consistent rewrite of the last segment's header and body by someone
with write access to the bucket — for that, make ``audit/`` write-once (S3 Object Lock / WORM) and/or
copy segment hashes elsewhere. A new process (or ``AuditLog`` instance) starts a new chain.

What can be lost
----------------
Nothing on a clean stop (``close()``, normal interpreter exit, SIGTERM handled by the server). A
``kill -9``, an OOM kill or a power cut loses the events of that process still in the buffer: at most
those of the last ``flush_interval_s`` (1 s by default) plus the duration of a flush in progress. If the
store is down, events stay in the buffer (a warning is logged) and are retried at every tick; they are
then lost only if the process is killed before the store comes back.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import json
import logging
import os
import re
import secrets
import socket
import threading
import unicodedata
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Any

from storage import ObjectStore

log = logging.getLogger("sohoa.audit")

PREFIX = "audit/"
ACTOR_KINDS = ("user", "token", "cli", "anonymous")
OUTCOMES = ("ok", "denied", "failed")
DEFAULT_DAYS = 31  # a query without ``since`` covers the last 31 days (today included)
SEGMENT_FORMAT = 1
_KEY = re.compile(r"^audit/(\d{4})/(\d{2})/(\d{2})/(\d{6}\.\d{6})-([A-Za-z0-9._-]+)-(\d+)-(\d+)\.jsonl$")
_READ_THREADS = 8


def _nfc_deep(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {_nfc_deep(k): _nfc_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nfc_deep(v) for v in value]
    return value


def utc_iso(dt: datetime) -> str:
    """``2026-07-15T08:30:00.123456+00:00``: UTC, always with microseconds (fixed width, sorts as text).

    A naive datetime is taken as UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return utc_iso(datetime.now(UTC))


@dataclass(kw_only=True)
class AuditEvent:
    """One audited act. Only ``action`` is required; strings are NFC, ``ts`` canonical UTC."""

    ts: str = field(default_factory=now_iso)
    actor: str = "anonymous"  # user name, "token:<id>", "cli:<os user>" or "anonymous"
    actor_kind: str = "anonymous"  # user | token | cli | anonymous
    roles: list[str] = field(default_factory=list)
    ip: str = ""
    action: str  # dotted verb: "search", "document.read", "auth.login", "export.portal" …
    target: str = ""  # document id, dossier code, user name …
    dossier: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # e.g. the query text and filters of a search
    outcome: str = "ok"  # ok | denied | failed
    status: int = 0  # HTTP status, 0 outside HTTP

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or not self.action.strip():
            raise ValueError("audit event without an action")
        if self.actor_kind not in ACTOR_KINDS:
            raise ValueError(f"actor_kind {self.actor_kind!r} is not one of {ACTOR_KINDS}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {OUTCOMES}")
        try:
            self.ts = utc_iso(datetime.fromisoformat(self.ts))
        except (TypeError, ValueError):
            raise ValueError(f"audit event time {self.ts!r} is not ISO 8601") from None
        for name in ("actor", "ip", "action", "target", "dossier"):
            setattr(self, name, _nfc_deep(str(getattr(self, name))))
        self.roles = [_nfc_deep(str(r)) for r in self.roles]
        self.details = _nfc_deep(dict(self.details))
        self.status = int(self.status)

    @property
    def day(self) -> str:
        """The UTC day of the event, ``YYYY-MM-DD``."""
        return self.ts[:10]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditEvent:
        """The inverse of :meth:`to_dict`; unknown keys (written by a later version) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_json(self) -> str:
        """One line of JSON; never fails (a value JSON cannot hold is written as its ``str``/``repr``)."""
        try:
            return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"), default=str)
        except Exception:  # e.g. a circular structure in details: keep the event, not the detail
            d = {f.name: getattr(self, f.name) for f in fields(self)}
            d["details"] = {"unserializable": repr(self.details)}
            return json.dumps(d, ensure_ascii=False, separators=(",", ":"), default=str)


# -- segments -------------------------------------------------------------------------------------------
def _hostname() -> str:
    return (re.sub(r"[^A-Za-z0-9.]+", "-", socket.gethostname()).strip("-.") or "host")[:63]


_SEQ = itertools.count(1)
_SEQ_LOCK = threading.Lock()


def _next_seq() -> int:
    with _SEQ_LOCK:
        return next(_SEQ)


def segment_key(first_ts: str, seq: int, host: str | None = None, pid: int | None = None) -> str:
    """``audit/YYYY/MM/DD/HHMMSS.ffffff-host-pid-seq.jsonl`` for a segment whose earliest event is *first_ts*."""
    try:
        t = datetime.fromisoformat(first_ts).astimezone(UTC)
    except (TypeError, ValueError):  # an event's ts changed after construction: never block the buffer on it
        t = datetime.now(UTC)
    host = host or _hostname()
    pid = os.getpid() if pid is None else pid
    return f"{PREFIX}{t:%Y/%m/%d}/{t:%H%M%S.%f}-{host}-{pid}-{seq:06d}.jsonl"


def _key_ts(key: str) -> str | None:
    """The canonical time encoded in a segment key (earliest event of the segment), or None."""
    m = _KEY.match(key)
    if not m:
        return None
    y, mo, d, hms = m.group(1), m.group(2), m.group(3), m.group(4)
    return f"{y}-{mo}-{d}T{hms[0:2]}:{hms[2:4]}:{hms[4:6]}.{hms[7:13]}+00:00"


def encode_segment(events: list[AuditEvent], writer: str, n: int, prev: str) -> bytes:
    body = "".join(e.to_json() + "\n" for e in events).encode("utf-8")
    header = {
        "audit_segment": SEGMENT_FORMAT,
        "writer": writer,
        "n": n,
        "prev": prev,
        "count": len(events),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "written": now_iso(),
    }
    return json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n" + body


def decode_segment(data: bytes) -> tuple[dict[str, Any], list[AuditEvent]]:
    """(header, events) of a segment; ValueError if it is not one."""
    head, sep, body = data.partition(b"\n")
    header = json.loads(head.decode("utf-8"))
    if not isinstance(header, dict) or "audit_segment" not in header:
        raise ValueError("first line is not an audit segment header")
    events = [AuditEvent.from_dict(json.loads(line)) for line in body.decode("utf-8").splitlines() if line.strip()]
    return header, events


# -- reading --------------------------------------------------------------------------------------------
def _as_bounds(since: date | datetime | None, until: date | datetime | None) -> tuple[str, str]:
    """Inclusive canonical time bounds; a date means the whole UTC day."""

    def bound(v: date | datetime, end: bool) -> str:
        if isinstance(v, datetime):
            return utc_iso(v)
        return utc_iso(datetime.combine(v, time.max if end else time.min, UTC))

    hi = bound(until, True) if until is not None else utc_iso(datetime.combine(datetime.now(UTC).date(), time.max, UTC))
    if since is not None:
        lo = bound(since, False)
    else:
        lo = utc_iso(datetime.combine(date.fromisoformat(hi[:10]) - timedelta(days=DEFAULT_DAYS - 1), time.min, UTC))
    return lo, hi


def _days(lo: str, hi: str) -> list[date]:
    first, last = date.fromisoformat(lo[:10]), date.fromisoformat(hi[:10])
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _match(
    e: AuditEvent, lo: str, hi: str, user: str | None, dossier: str | None, action: str | None, outcome: str | None
) -> bool:
    if not lo <= e.ts <= hi:
        return False
    if user is not None and e.actor != user:
        return False
    if dossier is not None and e.dossier != dossier:
        return False
    if outcome is not None and e.outcome != outcome:
        return False
    if action is not None:
        if action.endswith(".*"):
            return e.action.startswith(action[:-1])
        return e.action == action
    return True


def _read_segment(store: ObjectStore, key: str) -> list[AuditEvent]:
    try:
        return decode_segment(store.get_bytes(key))[1]
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        log.warning("unreadable audit segment skipped (run verify)", extra={"key": key, "error": str(e)})
        return []


def read_events(
    store: ObjectStore,
    user: str | None = None,
    dossier: str | None = None,
    action: str | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    limit: int = 1000,
    outcome: str | None = None,
    extra: list[AuditEvent] | None = None,
) -> list[AuditEvent]:
    """Events in *store* matching every given filter, newest first, at most *limit*.

    ``since``/``until`` are inclusive (a ``date`` covers its whole UTC day; default: the last 31 days).
    ``user`` is the exact ``actor``; ``action`` is exact, or a prefix when it ends with ``.*``
    (``document.*``). Only the day folders ``audit/YYYY/MM/DD/`` of the range are listed; days are read
    newest first and reading stops once *limit* events are found. *extra* (events not yet written) are
    filtered the same way and merged in.
    """
    if limit <= 0:
        return []
    user, dossier, action = (_nfc_deep(v) if v is not None else None for v in (user, dossier, action))
    lo, hi = _as_bounds(since, until)
    if lo > hi:
        return []
    out = [e for e in (extra or []) if _match(e, lo, hi, user, dossier, action, outcome)]
    with ThreadPoolExecutor(_READ_THREADS) as pool:
        for day in reversed(_days(lo, hi)):
            keys = [k for k in store.list(f"{PREFIX}{day:%Y/%m/%d}/") if k.endswith(".jsonl")]
            # a segment's key time is its earliest event: a segment keyed after ``hi`` has nothing in range
            keys = [k for k in keys if (_key_ts(k) or "") <= hi]
            for events in pool.map(lambda k: _read_segment(store, k), keys):
                out.extend(e for e in events if _match(e, lo, hi, user, dossier, action, outcome))
            if len(out) >= limit:
                break  # days partition the events: older days cannot hold newer ones
    out.sort(key=lambda e: e.ts, reverse=True)
    return out[:limit]


@dataclass
class VerifyResult:
    ok: bool
    segments: int
    events: int
    problems: list[str]


def verify(store: ObjectStore, since: date | None = None, until: date | None = None) -> VerifyResult:
    """Check every segment (of the days in [since, until], default all): body hash, event count, hash chain.

    With *since*, a chain may start before the range (its first segment's ``prev`` cannot be checked);
    without, every chain must start at ``n`` = 0. Removing the last segment of a chain is not detectable.
    """
    if since is not None and until is not None:  # list only the day folders of the range
        days = _days(since.isoformat(), until.isoformat())
        keys = [k for d in days for k in store.list(f"{PREFIX}{d:%Y/%m/%d}/") if k.endswith(".jsonl")]
    else:
        keys = [k for k in store.list(PREFIX) if k.endswith(".jsonl")]
    if since is not None or until is not None:
        lo = since.isoformat() if since else "0000-00-00"
        hi = until.isoformat() if until else "9999-99-99"
        keys = [k for k in keys if lo <= (_key_ts(k) or "")[:10] <= hi]
    problems: list[str] = []
    chains: dict[str, list[tuple[int, str, str, str]]] = {}  # writer -> (n, prev, own sha256, key)
    n_events = 0

    def load(key: str) -> tuple[str, bytes]:
        return key, store.get_bytes(key)

    with ThreadPoolExecutor(_READ_THREADS) as pool:
        for key, data in pool.map(load, keys):
            if not _KEY.match(key):
                problems.append(f"{key}: not an audit segment name")
            head, _sep, body = data.partition(b"\n")
            try:
                header = json.loads(head.decode("utf-8"))
                if not isinstance(header, dict) or header.get("audit_segment") != SEGMENT_FORMAT:
                    raise ValueError("no segment header")
                lines = [ln for ln in body.decode("utf-8").splitlines() if ln.strip()]
                events = [AuditEvent.from_dict(json.loads(ln)) for ln in lines]
            except (ValueError, TypeError, UnicodeDecodeError) as e:
                problems.append(f"{key}: unreadable ({e})")
                continue
            n_events += len(events)
            if hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
                problems.append(f"{key}: events do not match the segment's body_sha256 (modified)")
            if header.get("count") != len(events):
                problems.append(f"{key}: header says {header.get('count')} events, found {len(events)}")
            day = key[len(PREFIX) : len(PREFIX) + 10].replace("/", "-")
            if any(e.day != day for e in events):
                problems.append(f"{key}: holds events of another day")
            n = header.get("n")
            if not isinstance(n, int) or n < 0:
                problems.append(f"{key}: bad segment number {n!r}")
                continue
            chains.setdefault(str(header.get("writer")), []).append(
                (n, str(header.get("prev", "")), hashlib.sha256(data).hexdigest(), key)
            )
    for writer, segs in chains.items():
        segs.sort()
        first_n, first_prev, _h, first_key = segs[0]
        if since is None and first_n != 0:
            problems.append(f"writer {writer}: segments 0..{first_n - 1} missing (first is {first_key})")
        if first_n == 0 and first_prev != "":
            problems.append(f"{first_key}: first segment of writer {writer} has a prev hash")
        for (n0, _p0, h0, k0), (n1, p1, _h1, k1) in itertools.pairwise(segs):
            if n1 == n0:
                problems.append(f"writer {writer}: segment number {n1} twice ({k0}, {k1})")
            elif n1 != n0 + 1:
                problems.append(f"writer {writer}: segments {n0 + 1}..{n1 - 1} missing (between {k0} and {k1})")
            elif p1 != h0:
                problems.append(f"{k1}: prev hash does not match {k0} (modified or replaced)")
    return VerifyResult(ok=not problems, segments=len(keys), events=n_events, problems=problems)


# -- writing --------------------------------------------------------------------------------------------
_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


class AuditLog:
    """Buffered, append-only audit writer (see the module docstring). Thread-safe; one per process is usual."""

    def __init__(self, store: ObjectStore, flush_interval_s: float = 1.0, max_buffer: int = 1000) -> None:
        if flush_interval_s <= 0 or max_buffer < 1:
            raise ValueError("flush_interval_s must be > 0 and max_buffer >= 1")
        self.store = store
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max_buffer
        self.last_error: str | None = None
        self._init_state()
        atexit.register(self._atexit)
        _LOGS.add(self)

    def _init_state(self) -> None:
        """Fresh buffer, chain and flusher thread (at start, and in the child after a fork)."""
        self._lock = threading.Lock()  # guards _buf only: record() never waits for I/O
        self._flush_lock = threading.Lock()  # one flush at a time (keeps the chain in order)
        self._wake = threading.Event()
        self._stopped = False
        self._buf: list[AuditEvent] = []
        self._host = _hostname()
        self._pid = os.getpid()
        self.writer = f"{self._host}-{self._pid}-{secrets.token_hex(4)}"
        self._n = 0
        self._prev = ""
        self._failing_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="sohoa-audit-flush", daemon=True)
        self._thread.start()

    # -- the hot path -----------------------------------------------------------------------------------
    def record(self, event: AuditEvent) -> None:
        """Queue *event* for writing; returns at once and never raises."""
        try:
            with self._lock:
                self._buf.append(event)
                full = len(self._buf) >= self.max_buffer
            if full or self._stopped:
                self._wake.set()
                if self._stopped:  # after close(): nobody ticks any more, write now (best effort)
                    self.flush()
        except Exception:  # pragma: no cover - an audit failure must never break the request
            log.exception("audit record failed")

    @property
    def pending(self) -> int:
        """Events recorded but not yet written."""
        with self._lock:
            return len(self._buf)

    # -- flushing ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._stopped:
                break
            self.flush()

    def flush(self) -> int:
        """Write the buffered events now (one new segment per day and per ``max_buffer`` events).

        Returns the number of events written. Never raises: on a store error the events stay buffered,
        a warning is logged, ``last_error`` is set and the next tick retries."""
        with self._flush_lock:
            return self._flush_locked()

    def _flush_locked(self) -> int:
        written = 0
        while True:
            with self._lock:
                if not self._buf:
                    break
                head = self._buf[: self.max_buffer]
            # record() only appends and flushes are serialised: ``head`` stays the start of the buffer
            day = head[0].day
            batch = [e for e in head if e.day == day]
            try:
                self._write_segment(batch)
            except Exception as e:
                self._on_failure(e)
                break
            with self._lock:
                if len(batch) == len(head):
                    del self._buf[: len(head)]
                else:  # a flush that spans midnight: keep the other day's events, in order
                    self._buf[: len(head)] = [e for e in head if e.day != day]
            written += len(batch)
        if written and self._failing_since is not None:
            log.warning("audit store reachable again; buffered events written", extra={"events": written})
            self._failing_since = None
            self.last_error = None
        return written

    def _write_segment(self, events: list[AuditEvent]) -> None:
        first = min(e.ts for e in events)
        data = encode_segment(events, self.writer, self._n, self._prev)
        while True:
            key = segment_key(first, _next_seq(), self._host, self._pid)
            if not self.store.exists(key):
                break
        self.store.put_bytes(key, data, "application/x-ndjson; charset=utf-8")
        self._n += 1
        self._prev = hashlib.sha256(data).hexdigest()

    def _on_failure(self, e: Exception) -> None:
        self.last_error = f"{type(e).__name__}: {e}"
        now = monotonic()
        if self._failing_since is None or now - self._failing_since >= 60:  # one warning a minute at most
            log.warning(
                "audit flush failed; events kept in memory and retried",
                extra={"pending": self.pending, "store": getattr(self.store, "url", "?"), "error": self.last_error},
            )
            self._failing_since = now

    def close(self) -> None:
        """Stop the flusher thread and write everything still buffered (logs an error if the store is down)."""
        self._stopped = True
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        self.flush()
        if self.pending:
            log.error(
                "audit events could not be written at close; retried at exit",
                extra={"pending": self.pending, "error": self.last_error},
            )
        else:
            atexit.unregister(self._atexit)

    def _atexit(self) -> None:
        with contextlib.suppress(Exception):
            self._stopped = True
            self.flush()
            if self.pending:
                log.error("audit events lost at exit: the store is unreachable", extra={"pending": self.pending})

    def _after_fork_in_child(self) -> None:
        # the parent still holds (and will write) the events buffered before the fork
        self._init_state()
        self._stopped = False

    # -- reading ----------------------------------------------------------------------------------------
    def query(
        self,
        user: str | None = None,
        dossier: str | None = None,
        action: str | None = None,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        limit: int = 1000,
        outcome: str | None = None,
    ) -> list[AuditEvent]:
        """:func:`read_events` on this log's store, including the events this process has not written yet."""
        with self._flush_lock:  # no flush between the snapshot of the buffer and the read: no duplicates
            self._flush_locked()
            with self._lock:
                pending = list(self._buf)
            return read_events(self.store, user, dossier, action, since, until, limit, outcome, extra=pending)

    def verify(self) -> VerifyResult:
        self.flush()
        return verify(self.store)


def _reinit_after_fork() -> None:
    for audit_log in list(_LOGS):
        if not audit_log._stopped:
            audit_log._after_fork_in_child()


os.register_at_fork(after_in_child=_reinit_after_fork)


class NullAudit:
    """Records nothing (benches, tests and tools that need a baseline or no audit)."""

    last_error: str | None = None
    pending = 0

    def record(self, event: AuditEvent) -> None:
        pass

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def query(
        self,
        user: str | None = None,
        dossier: str | None = None,
        action: str | None = None,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        limit: int = 1000,
        outcome: str | None = None,
    ) -> list[AuditEvent]:
        return []

    def verify(self) -> VerifyResult:
        return VerifyResult(ok=True, segments=0, events=0, problems=[])
