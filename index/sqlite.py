"""SQLite FTS5 index (embedded default).

``pages_fts`` has two indexed columns: ``exact`` (the NFC text, diacritics kept) and ``folded``
(the text with diacritics removed by :func:`sohoa.text.fold`); both use the ``unicode61``
tokenizer with ``remove_diacritics 0`` so that only our own folding (which also maps ``đ``→``d``)
applies. Pages that match the query words exactly rank first, then ``bm25`` with the exact
column weighted above the folded one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from index.base import IndexBackend, IndexError_, IndexUnavailable, map_errors
from index.rates_sqlite import SqliteRegistry, migrate_registry, register_functions, unit_scope, unit_values_sql
from sohoa.models import DocRecord, PageText, SearchHit, SearchQuery, SearchResults
from sohoa.text import fold, nfc, parse_query, snippet

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    dossier_code TEXT NOT NULL,
    kind TEXT NOT NULL,
    component TEXT NOT NULL DEFAULT '',
    unit TEXT NOT NULL DEFAULT '',
    filename TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    received_at TEXT NOT NULL,
    sha256 TEXT NOT NULL DEFAULT '',
    page_count INTEGER NOT NULL DEFAULT 0,
    mean_confidence REAL,
    processed_at TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS documents_dossier ON documents(dossier_code);
CREATE INDEX IF NOT EXISTS documents_status ON documents(status);
CREATE INDEX IF NOT EXISTS documents_sha ON documents(sha256);
CREATE TABLE IF NOT EXISTS pages (
    rowid INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    text TEXT NOT NULL,
    UNIQUE(doc_id, number)
);
CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts USING fts5(
    exact, folded, tokenize = 'unicode61 remove_diacritics 0'
);
-- every unit value stored in documents or dossiers (unit scope, see index/rates_sqlite.py)
CREATE TABLE IF NOT EXISTS unit_values (unit TEXT PRIMARY KEY) WITHOUT ROWID;
""" + unit_values_sql("documents")

_DOC_COLS = (
    "id, dossier_code, kind, component, unit, filename, status, received_at, sha256, "
    "page_count, mean_confidence, processed_at, error"
)


def _fts_phrase(words: tuple[str, ...] | list[str]) -> str:
    return '"' + " ".join(w.replace('"', "") for w in words) + '"'


_TRANSIENT = ("locked", "busy", "disk i/o", "unable to open", "disk is full", "readonly database")


@contextmanager
def sqlite_errors() -> Iterator[None]:
    """SQLite exceptions → :mod:`sohoa.errors` kinds: a busy/locked database or a failing disk is transient."""
    try:
        yield
    except sqlite3.OperationalError as e:
        if any(w in str(e).lower() for w in _TRANSIENT):
            raise IndexUnavailable(f"SQLite index: {e}") from e
        raise IndexError_(f"SQLite index: {e}") from e
    except sqlite3.DatabaseError as e:
        raise IndexError_(f"SQLite index: {e}") from e


@map_errors(sqlite_errors)
class SqliteIndex(SqliteRegistry, IndexBackend):
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.url = f"sqlite://{self.path}"  # sqlite:///abs/path, like a file:// URI
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.RLock()
        with self._lock, sqlite_errors():
            conn = self._conn()
            had_units = conn.execute("SELECT 1 FROM sqlite_master WHERE name='unit_values'").fetchone()
            conn.executescript(SCHEMA)
            stale = migrate_registry(conn)
            if not had_units:  # database from before the unit scope: the values already stored
                conn.execute(
                    "INSERT OR IGNORE INTO unit_values (unit) "
                    "SELECT unit FROM documents UNION SELECT unit FROM dossiers"
                )
        if stale:  # flags of a database from before report-time rules: recompute from the documents
            with sqlite_errors():
                self.rebuild_flags()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            except sqlite3.Error as e:
                raise IndexError_(f"cannot open SQLite index {self.path}: {e}") from e
            conn.row_factory = sqlite3.Row
            register_functions(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _row_to_doc(r: sqlite3.Row) -> DocRecord:
        return DocRecord(**{k: r[k] for k in r.keys()})  # noqa: SIM118 - sqlite3.Row

    def _upsert(self, db: sqlite3.Connection, doc: DocRecord) -> None:
        d = doc.to_dict()
        cols = list(d)
        db.execute(
            f"INSERT INTO documents ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
            f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c}=excluded.{c}' for c in cols if c != 'id')}",
            [nfc(v) if isinstance(v, str) else v for v in d.values()],
        )

    def _delete_pages(self, db: sqlite3.Connection, doc_id: str) -> None:
        rowids = [r[0] for r in db.execute("SELECT rowid FROM pages WHERE doc_id=?", (doc_id,))]
        for rid in rowids:
            db.execute("DELETE FROM pages_fts WHERE rowid=?", (rid,))
        db.execute("DELETE FROM pages WHERE doc_id=?", (doc_id,))

    def upsert_document(self, doc: DocRecord) -> None:
        with self._tx() as db:
            self._upsert(db, doc)
            self._refresh_flags(db, nfc(doc.dossier_code))

    def replace_pages(self, doc: DocRecord, pages: list[PageText]) -> None:
        with self._tx() as db:
            self._upsert(db, doc)
            self._delete_pages(db, doc.id)
            for p in pages:
                text = nfc(p.text)
                cur = db.execute("INSERT INTO pages (doc_id, number, text) VALUES (?, ?, ?)", (doc.id, p.number, text))
                db.execute(
                    "INSERT INTO pages_fts (rowid, exact, folded) VALUES (?, ?, ?)",
                    (cur.lastrowid, text, fold(text)),
                )
            self._refresh_flags(db, nfc(doc.dossier_code))

    def delete_document(self, doc_id: str) -> None:
        with self._tx() as db:
            row = db.execute("SELECT dossier_code FROM documents WHERE id=?", (doc_id,)).fetchone()
            self._delete_pages(db, doc_id)
            db.execute("DELETE FROM documents WHERE id=?", (doc_id,))
            if row:
                self._refresh_flags(db, row[0])

    def get_document(self, doc_id: str) -> DocRecord | None:
        r = self._conn().execute(f"SELECT {_DOC_COLS} FROM documents WHERE id=?", (doc_id,)).fetchone()
        return self._row_to_doc(r) if r else None

    def list_documents(
        self,
        dossier_code: str | None = None,
        statuses: list[str] | None = None,
        sha256: str | None = None,
        limit: int = 1000,
        *,
        units: tuple[str, ...] | None = None,
    ) -> list[DocRecord]:
        where: list[str] = []
        args: list[object] = []
        if units is not None:
            cond, arg = unit_scope("unit", units)
            where.append(cond)
            args.append(arg)
        if dossier_code is not None:
            where.append("dossier_code=?")
            args.append(nfc(dossier_code))
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            args.extend(statuses)
        if sha256 is not None:
            where.append("sha256=?")
            args.append(sha256)
        sql = f"SELECT {_DOC_COLS} FROM documents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY received_at, id LIMIT ?"
        args.append(limit)
        return [self._row_to_doc(r) for r in self._conn().execute(sql, args)]

    def page_count(self, doc_id: str) -> int:
        return int(self._conn().execute("SELECT count(*) FROM pages WHERE doc_id=?", (doc_id,)).fetchone()[0])

    def search(self, query: SearchQuery) -> SearchResults:
        pq = parse_query(query.q)
        size = max(1, min(query.size, 100))
        page = max(1, query.page)
        if pq.empty:
            return SearchResults(query=pq.raw, total=0, page=page, size=size, hits=[])
        folded_parts = [_fts_phrase([fold(t)]) for t in pq.terms] + [
            _fts_phrase([fold(w) for w in ph]) for ph in pq.phrases
        ]
        exact_parts = [_fts_phrase([t]) for t in pq.terms] + [_fts_phrase(list(ph)) for ph in pq.phrases]
        match = "folded : (" + " AND ".join(folded_parts) + ")"
        exact_match = "exact : (" + " AND ".join(exact_parts) + ")"
        where = ["pages_fts MATCH ?"]
        args: list[object] = [match]
        for col, val in (("d.dossier_code", query.dossier_code), ("d.kind", query.kind), ("d.unit", query.unit)):
            if val:
                where.append(f"{col}=?")
                args.append(nfc(val))
        if query.date_from:
            where.append("substr(d.received_at, 1, 10) >= ?")
            args.append(query.date_from[:10])
        if query.date_to:
            where.append("substr(d.received_at, 1, 10) <= ?")
            args.append(query.date_to[:10])
        if query.units is not None:
            cond, arg = unit_scope("d.unit", query.units)
            where.append(cond)
            args.append(arg)
        base = (
            "FROM pages_fts JOIN pages p ON p.rowid = pages_fts.rowid JOIN documents d ON d.id = p.doc_id "
            "WHERE " + " AND ".join(where)
        )
        conn = self._conn()
        try:
            total = int(conn.execute(f"SELECT count(*) {base}", args).fetchone()[0])
            rows = conn.execute(
                f"SELECT p.doc_id, p.number, p.text, d.dossier_code, d.kind, d.component, d.unit, d.filename, "
                f"bm25(pages_fts, 4.0, 1.0) AS score, "
                f"(pages_fts.rowid IN (SELECT rowid FROM pages_fts WHERE pages_fts MATCH ?)) AS is_exact "
                f"{base} ORDER BY is_exact DESC, score ASC, p.doc_id, p.number LIMIT ? OFFSET ?",
                [exact_match, *args, size, (page - 1) * size],
            ).fetchall()
        except sqlite3.OperationalError as e:
            raise IndexError_(f"search failed: {e}") from e
        hits = [
            SearchHit(
                document_id=r["doc_id"],
                dossier_code=r["dossier_code"],
                kind=r["kind"],
                component=r["component"],
                unit=r["unit"],
                filename=r["filename"],
                page=r["number"],
                score=round(-float(r["score"]), 4),
                exact=bool(r["is_exact"]),
                snippet=snippet(r["text"], pq),
            )
            for r in rows
        ]
        return SearchResults(query=pq.raw, total=total, page=page, size=size, hits=hits)

    def clear(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM pages_fts")
            db.execute("DELETE FROM pages")
            db.execute("DELETE FROM documents")
            db.execute(
                "UPDATE dossiers SET has_input=0, required_ok=0, has_output=0, components='[]', in_conf=-1, "
                "req_conf=-1, out_conf=-1, comp_conf='{}' WHERE has_input OR has_output OR required_ok "
                "OR in_conf >= 0 OR out_conf >= 0"
            )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
