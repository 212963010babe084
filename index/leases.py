"""Lease stores beside each index backend (see :mod:`sohoa.leases`): a SQLite table in the index file, an
Elasticsearch index ``{prefix}-leases``. Both write with a compare-and-set."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from index.base import IndexConfigError, map_errors, sqlite_path
from sohoa.leases import DeadFn, Lease, LeaseStore

LEASE_TABLE = """
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL, acquired_at REAL NOT NULL,
    renewed_at REAL NOT NULL
) WITHOUT ROWID;
"""


def _sqlite_errors() -> Any:
    from index.sqlite import sqlite_errors

    return sqlite_errors()


@map_errors(_sqlite_errors)
class SqliteLeases(LeaseStore):
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with _sqlite_errors():
            self._conn().executescript(LEASE_TABLE)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
        return conn

    def _row(self, conn: sqlite3.Connection, name: str) -> Lease | None:
        r = conn.execute("SELECT name, owner, expires_at, acquired_at, renewed_at FROM leases WHERE name=?",
                         (name,)).fetchone()  # fmt: skip
        return Lease(*r) if r else None

    def _cas(self, name: str, owner: str, ttl_s: float, take: bool, dead: DeadFn | None = None) -> Lease | None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            cur = self._row(conn, name)
            if cur is not None and cur.owner != owner and (not take or (cur.alive(now) and not (dead and dead(cur)))):
                conn.execute("ROLLBACK")
                return None
            acquired = cur.acquired_at if cur is not None and cur.owner == owner else now
            lease = Lease(name, owner, now + ttl_s, acquired, now)
            conn.execute(
                "INSERT INTO leases (name, owner, expires_at, acquired_at, renewed_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET owner=excluded.owner, expires_at=excluded.expires_at, "
                "acquired_at=excluded.acquired_at, renewed_at=excluded.renewed_at",
                (lease.name, lease.owner, lease.expires_at, lease.acquired_at, lease.renewed_at),
            )
            conn.execute("COMMIT")
            return lease
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def acquire(self, name: str, owner: str, ttl_s: float, dead: DeadFn | None = None) -> Lease | None:
        return self._cas(name, owner, ttl_s, take=True, dead=dead)

    def renew(self, name: str, owner: str, ttl_s: float) -> Lease | None:
        return self._cas(name, owner, ttl_s, take=False)

    def release(self, name: str, owner: str) -> None:
        self._conn().execute("DELETE FROM leases WHERE name=? AND owner=?", (name, owner))

    def get(self, name: str) -> Lease | None:
        return self._row(self._conn(), name)

    def get_many(self, names: list[str]) -> dict[str, Lease]:
        out: dict[str, Lease] = {}
        conn = self._conn()
        for i in range(0, len(names), 500):
            part = names[i : i + 500]
            marks = ",".join("?" * len(part))
            q = f"SELECT name, owner, expires_at, acquired_at, renewed_at FROM leases WHERE name IN ({marks})"
            for r in conn.execute(q, part):
                out[r[0]] = Lease(*r)
        return out

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _es_errors() -> Any:
    from index.es import es_errors

    return es_errors()


@map_errors(_es_errors)
class EsLeases(LeaseStore):
    MAPPING: dict[str, Any] = {
        "properties": {"owner": {"type": "keyword"}, **{k: {"type": "double"} for k in ("expires_at", "acquired_at",
                                                                                        "renewed_at")}}
    }

    def __init__(self, url: str, prefix: str = "sohoa") -> None:
        from elasticsearch import Elasticsearch  # here: the embedded default never loads the client (~0.9 s)

        self.index = f"{prefix}-leases"
        self.es = Elasticsearch(url, request_timeout=5, max_retries=1, retry_on_timeout=False)
        self._ready = False

    def _ensure(self) -> None:
        if self._ready:
            return
        if not self.es.indices.exists(index=self.index):
            try:
                self.es.indices.create(index=self.index, mappings=self.MAPPING)
            except Exception as e:
                if "resource_already_exists" not in str(e):
                    raise
        self._ready = True

    def _get(self, name: str) -> tuple[Lease, int, int] | None:
        from elasticsearch import NotFoundError

        self._ensure()
        try:
            r = self.es.get(index=self.index, id=name)
        except NotFoundError:
            return None
        s = r["_source"]
        lease = Lease(name, s["owner"], float(s["expires_at"]), float(s["acquired_at"]), float(s["renewed_at"]))
        return lease, int(r["_seq_no"]), int(r["_primary_term"])

    def _cas(self, name: str, owner: str, ttl_s: float, take: bool, dead: DeadFn | None = None) -> Lease | None:
        now = time.time()
        got = self._get(name)
        if got is not None:
            cur, seq, term = got
            if cur.owner != owner and (not take or (cur.alive(now) and not (dead and dead(cur)))):
                return None
        acquired = got[0].acquired_at if got is not None and got[0].owner == owner else now
        lease = Lease(name, owner, now + ttl_s, acquired, now)
        body = {"owner": owner, "expires_at": lease.expires_at, "acquired_at": acquired, "renewed_at": now}
        from elasticsearch import ConflictError

        try:
            if got is None:
                self.es.index(index=self.index, id=name, document=body, op_type="create")
            else:
                self.es.index(index=self.index, id=name, document=body, if_seq_no=seq, if_primary_term=term)
        except ConflictError:
            return None  # someone else wrote it first
        return lease

    def acquire(self, name: str, owner: str, ttl_s: float, dead: DeadFn | None = None) -> Lease | None:
        return self._cas(name, owner, ttl_s, take=True, dead=dead)

    def renew(self, name: str, owner: str, ttl_s: float) -> Lease | None:
        return self._cas(name, owner, ttl_s, take=False)

    def release(self, name: str, owner: str) -> None:
        from elasticsearch import ConflictError, NotFoundError

        got = self._get(name)
        if got is None or got[0].owner != owner:
            return
        with contextlib.suppress(ConflictError, NotFoundError):
            self.es.delete(index=self.index, id=name, if_seq_no=got[1], if_primary_term=got[2])

    def get(self, name: str) -> Lease | None:
        got = self._get(name)
        return got[0] if got else None

    def get_many(self, names: list[str]) -> dict[str, Lease]:
        self._ensure()
        out: dict[str, Lease] = {}
        for i in range(0, len(names), 1000):
            docs = self.es.mget(index=self.index, ids=names[i : i + 1000])["docs"]
            for d in docs:
                if d.get("found"):
                    s = d["_source"]
                    out[d["_id"]] = Lease(d["_id"], s["owner"], float(s["expires_at"]), float(s["acquired_at"]),
                                          float(s["renewed_at"]))  # fmt: skip
        return out

    def close(self) -> None:
        self.es.close()


def open_leases(index_url: str, es_prefix: str = "sohoa") -> LeaseStore:
    scheme = urlparse(index_url).scheme
    if scheme == "sqlite":
        return SqliteLeases(sqlite_path(index_url))
    if scheme in ("http", "https"):
        return EsLeases(index_url, es_prefix)
    raise IndexConfigError(f"no lease store for index URL scheme {scheme!r}")
