"""SQLite FTS5 index (embedded default), built for a province: 1M+ pages.

``pages`` holds each page's NFC text once (snippets are cut from it). ``pages_fts`` is a *contentless*
FTS5 table (``content=''``: no second copy of the text) with three indexed columns: ``literal`` (the NFC
words, diacritics kept, each marked with :data:`index.sqlite_search.MARK` so they have their own doclists,
apart from the folded words), ``folded`` (the text with diacritics removed by :func:`sohoa.text.fold`, which
also maps ``đ``→``d``), both tokenized by ``unicode61`` with ``remove_diacritics 0`` so only our own folding
applies, and ``filters`` (the document's filter tokens, :mod:`index.sqlite_search`; also stored in
``pages.meta`` so a row can be deleted from the contentless table). The three columns have disjoint token
spaces, so queries need no column filter.

Search (``search``): filters (document, dossier, kind, unit, unit scope, received date range) are terms of
the FTS5 expression itself. Pages that match the query words *with* their diacritics (``literal`` column)
rank first, then the others. Inside each group the ``RANK_WINDOW`` most recently indexed matches
(``ORDER BY rowid DESC LIMIT`` inside the FTS query: rowids only, nothing scored) are ordered by ``bm25`` over
the query's *informative* phrases — those on at most ``RANK_DF_MAX`` pages — computed for that window's rowid
range only; results past the window follow newest first. FTS5's ``bm25`` counts every page holding each
phrase it scores (for the IDF), so a common word (which adds next to nothing to bm25) is never scored; a query
of common words only is ordered newest first. When a group has at most ``RANK_WINDOW`` matches the ranking
covers all of them. The total is exact
up to :data:`sohoa.models.SEARCH_COUNT_CAP` and reported as "more than" above (``total_capped``).

Schema changes: a database whose ``pages_fts`` is of an earlier shape (a full-content table without
``meta``; or contentless with an unmarked ``exact`` column) is **migrated in place** when opened: ``pages.meta``
is added if missing and (re)filled from ``documents``, and the FTS table is dropped and rebuilt from ``pages.text``
(no storage read; ``sohoa reindex`` stays the way to rebuild everything from storage). Pragmas: WAL,
``mmap_size``, a 64 MiB page cache, one connection per thread; :meth:`SqliteIndex.optimize` merges the FTS
segments after a bulk load.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from index import sqlite_search as ss
from index.base import IndexBackend, IndexError_, IndexUnavailable, map_errors
from index.rates_sqlite import SqliteRegistry, migrate_registry, register_functions, unit_scope, unit_values_sql
from sohoa.models import SEARCH_COUNT_CAP, DocRecord, PageText, SearchHit, SearchQuery, SearchResults
from sohoa.text import fold, nfc, parse_query

FTS_TABLE = """
CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts USING fts5(
    literal, folded, filters, content = '', tokenize = 'unicode61 remove_diacritics 0'
);"""

SCHEMA = (
    """
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
CREATE INDEX IF NOT EXISTS documents_received ON documents(received_at);
CREATE TABLE IF NOT EXISTS pages (
    rowid INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    text TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '',
    UNIQUE(doc_id, number)
);
"""
    + FTS_TABLE
    + """
-- every unit value stored in documents or dossiers (unit scope, see index/rates_sqlite.py)
CREATE TABLE IF NOT EXISTS unit_values (unit TEXT PRIMARY KEY) WITHOUT ROWID;
"""
    + unit_values_sql("documents")
)

RANK_WINDOW = 1000  # newest matches ranked per group (exact / folded-only); see the module docstring
# a query phrase on more pages than this is left out of bm25 (see _count_and_rank); used up to SEARCH_COUNT_CAP
# only: a capped total says nothing about how rare the query's phrases are
RANK_DF_MAX = 1000
_META_COLS = ("dossier_code", "kind", "unit", "received_at")

_DOC_COLS = (
    "id, dossier_code, kind, component, unit, filename, status, received_at, sha256, "
    "page_count, mean_confidence, processed_at, error"
)


def _fts_phrase(words: tuple[str, ...] | list[str]) -> str:
    return '"' + ss.strip_marks(" ".join(w.replace('"', "") for w in words)) + '"'


def _literal_phrase(words: tuple[str, ...] | list[str]) -> str:
    return '"' + ss.literal_text(" ".join(words)) + '"'


def _fts_cols(text: str) -> tuple[str, str]:
    """The ``literal`` and ``folded`` columns of a page's NFC text."""
    return ss.literal_text(text), ss.strip_marks(fold(text))


_FTS_INSERT = "INSERT INTO pages_fts (rowid, literal, folded, filters) VALUES (?, ?, ?, ?)"

# a group's RANK_WINDOW newest matches (rowids only) ordered by bm25 over the informative phrases, computed for
# the window's rowid range only (every window row holds every phrase; other rows of the range are ignored)
_RANK_SQL = """
WITH w(r) AS MATERIALIZED (
    SELECT rowid FROM pages_fts WHERE pages_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?2
), s(r, score) AS MATERIALIZED (
    SELECT rowid, bm25(pages_fts, 4.0, 1.0, 0.0) FROM pages_fts
    WHERE pages_fts MATCH ?3 AND rowid BETWEEN (SELECT min(r) FROM w) AND (SELECT max(r) FROM w)
)
SELECT w.r, coalesce(s.score, 0.0) AS sc FROM w LEFT JOIN s ON s.r = w.r ORDER BY sc, w.r DESC LIMIT ?4 OFFSET ?5
"""


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
            old_fts = conn.execute("SELECT sql FROM sqlite_master WHERE name='pages_fts'").fetchone()
            migrate_fts = old_fts is not None and "filters" not in old_fts[0]
            if migrate_fts:
                self._drop_old_fts(conn)
            conn.executescript(SCHEMA)
            if migrate_fts:
                self._rebuild_fts(conn)
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
            conn.execute("PRAGMA mmap_size=2147418112")  # 2 GiB (the most these builds allow): OS cache, no copy
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB per connection
            conn.execute("PRAGMA temp_store=MEMORY")
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

    @staticmethod
    def _drop_old_fts(conn: sqlite3.Connection) -> None:
        """Earlier shapes of ``pages_fts`` — full-content without ``meta`` (and no ``pages.meta``), or contentless
        with an ``exact`` column sharing its tokens with ``folded`` — are dropped; :meth:`_rebuild_fts` refills."""
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DROP TABLE pages_fts")
        cols = [r[1] for r in conn.execute("PRAGMA table_info(pages)")]
        if "meta" not in cols:
            conn.execute("ALTER TABLE pages ADD COLUMN meta TEXT NOT NULL DEFAULT ''")
        conn.execute("COMMIT")

    @staticmethod
    def _rebuild_fts(conn: sqlite3.Connection) -> None:
        """Fill ``pages.meta`` from ``documents`` and ``pages_fts`` from ``pages`` (migration; one transaction)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            docs = conn.execute("SELECT id, dossier_code, kind, unit, received_at FROM documents").fetchall()
            for d in docs:
                conn.execute("UPDATE pages SET meta=? WHERE doc_id=?", (ss.meta_text(*d), d[0]))
            cur = conn.execute("SELECT rowid, text, meta FROM pages")
            while batch := cur.fetchmany(1000):
                conn.executemany(_FTS_INSERT, [(r[0], *_fts_cols(r[1]), r[2]) for r in batch])
            conn.execute("INSERT INTO pages_fts (pages_fts) VALUES ('optimize')")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    def _fts_delete(db: sqlite3.Connection, rows: list[sqlite3.Row] | list[tuple[int, str, str]]) -> None:
        # contentless table: a row is deleted by giving back the values it was indexed with
        db.executemany(
            "INSERT INTO pages_fts (pages_fts, rowid, literal, folded, filters) VALUES ('delete', ?, ?, ?, ?)",
            [(r[0], *_fts_cols(r[1]), r[2]) for r in rows],
        )

    def _delete_pages(self, db: sqlite3.Connection, doc_id: str) -> None:
        self._fts_delete(db, db.execute("SELECT rowid, text, meta FROM pages WHERE doc_id=?", (doc_id,)).fetchall())
        db.execute("DELETE FROM pages WHERE doc_id=?", (doc_id,))

    @staticmethod
    def _meta(doc: DocRecord) -> str:
        return ss.meta_text(doc.id, nfc(doc.dossier_code), nfc(doc.kind), nfc(doc.unit), nfc(doc.received_at))

    def _insert_pages(self, db: sqlite3.Connection, doc: DocRecord, pages: list[PageText]) -> None:
        meta = self._meta(doc)
        for p in pages:
            text = nfc(p.text)
            cur = db.execute(
                "INSERT INTO pages (doc_id, number, text, meta) VALUES (?, ?, ?, ?)", (doc.id, p.number, text, meta)
            )
            db.execute(_FTS_INSERT, (cur.lastrowid, *_fts_cols(text), meta))

    def upsert_document(self, doc: DocRecord) -> None:
        with self._tx() as db:
            self._upsert(db, doc)
            meta = self._meta(doc)
            rows = db.execute(
                "SELECT rowid, text, meta FROM pages WHERE doc_id=? AND meta<>?", (doc.id, meta)
            ).fetchall()
            if rows:  # filter fields changed: re-index the pages' filter tokens
                self._fts_delete(db, rows)
                db.execute("UPDATE pages SET meta=? WHERE doc_id=?", (meta, doc.id))
                db.executemany(_FTS_INSERT, [(r[0], *_fts_cols(r[1]), meta) for r in rows])
            self._refresh_flags(db, nfc(doc.dossier_code))

    def replace_pages(self, doc: DocRecord, pages: list[PageText]) -> None:
        with self._tx() as db:
            self._upsert(db, doc)
            self._delete_pages(db, doc.id)
            self._insert_pages(db, doc, pages)
            self._refresh_flags(db, nfc(doc.dossier_code))

    def bulk_replace_pages(self, items: list[tuple[DocRecord, list[PageText]]]) -> None:
        """:meth:`replace_pages` for many documents in one transaction (bulk loads, ``reindex``, benches)."""
        with self._tx() as db:
            for doc, pages in items:
                self._upsert(db, doc)
                self._delete_pages(db, doc.id)
                self._insert_pages(db, doc, pages)
            for code in sorted({nfc(d.dossier_code) for d, _ in items}):
                self._refresh_flags(db, code)

    def optimize(self) -> None:
        """Merge the FTS segments into one (after a bulk load: fewer segments = faster queries)."""
        with self._tx() as db:
            db.execute("INSERT INTO pages_fts (pages_fts) VALUES ('optimize')")
            db.execute("PRAGMA optimize")

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

    def _filter_terms(self, conn: sqlite3.Connection, query: SearchQuery) -> list[str] | None:
        """The FTS5 terms of the query's filters (None: nothing can match)."""
        terms: list[str] = []
        for val, tok in (
            (query.document_id, ss.doc_token),
            (query.dossier_code, ss.dossier_token),
            (query.kind, ss.kind_token),
            (query.unit, ss.unit_token),
        ):
            if val:
                terms.append(ss.any_of([tok(val)]))
        if query.units is not None:
            scope = ss.scope_tokens(query.units)
            if not scope:
                return None
            terms.append(ss.any_of(scope))
        if query.date_from or query.date_to:
            # two subqueries: each uses the received_at index (min and max of one SELECT scan the table)
            lo, hi = conn.execute(
                "SELECT (SELECT min(received_at) FROM documents), (SELECT max(received_at) FROM documents)"
            ).fetchone()
            if lo is None:
                return None
            start = max(query.date_from or "", lo[:10])
            end = min(query.date_to or "9999-12-31", hi[:10])
            try:
                d0, d1 = date.fromisoformat(start), date.fromisoformat(end)
            except ValueError:
                return None
            if d0 > d1:
                return None
            terms.append(ss.date_match(d0, d1))
        return terms

    @staticmethod
    def _count(conn: sqlite3.Connection, match: str, cap: int) -> int:
        """Matches of *match*, counting at most *cap* (walks the doclists, scores nothing)."""
        sql = "SELECT count(*) FROM (SELECT rowid FROM pages_fts WHERE pages_fts MATCH ? LIMIT ?)"
        return int(conn.execute(sql, (match, cap)).fetchone()[0])

    @staticmethod
    def _count_and_rank(conn: sqlite3.Connection, base: str, phrases: list[str], alone: bool) -> tuple[int, str | None]:
        """The total of *base* (at most SEARCH_COUNT_CAP + 1) and the FTS5 expression of the query phrases
        informative enough to rank by (at most RANK_DF_MAX pages each), in one statement (each statement's
        return re-takes the GIL, a wait behind other client threads). *alone*: *base* is one phrase, its total
        is its page count.

        FTS5's ``bm25`` first counts the pages holding each phrase of the expression it scores (its IDF), a walk
        over the whole doclist of a common word: 60 ms at 200k pages. A phrase on more than RANK_DF_MAX pages
        weighs little in bm25 anyway (IDF ≤ ln(N / RANK_DF_MAX)), so it is left out of the scoring. 2,000 rather
        than 5,000: at 1M pages the no-diacritics pair's mean 18 → 12 ms, p95 40 → 22 ms (interleaved A/B); 1,000
        since the total is counted only to 1,000 (SEARCH_COUNT_CAP), which bounds it. Every phrase is on at least
        as many pages as the whole query, so none is counted when the query is common (the ``CASE`` evaluates
        the phrase counts only then). The phrases are ANDed: every row of a ranking window holds all of them,
        and the AND leaves out more of the other rows of the window's rowid range (each costs a bm25
        evaluation, ~3 µs).
        """
        sub = "(SELECT count(*) FROM (SELECT rowid FROM pages_fts WHERE pages_fts MATCH ?{} LIMIT {}))"
        dfs = [] if alone else phrases
        df_max = min(RANK_DF_MAX, SEARCH_COUNT_CAP)
        cols = "".join(
            f", CASE WHEN n BETWEEN 1 AND {df_max} THEN {sub.format(i + 3, df_max + 1)} END" for i in range(len(dfs))
        )
        row = conn.execute(
            f"SELECT n{cols} FROM (SELECT {sub.format(1, '?2')} AS n)", [base, SEARCH_COUNT_CAP + 1, *dfs]
        ).fetchone()
        counted = int(row[0])
        if alone:
            rare = phrases if 0 < counted <= df_max else []
        else:
            rare = [ph for ph, df in zip(phrases, row[1:], strict=True) if df is not None and df <= df_max]
        return counted, ("(" + " AND ".join(rare) + ")" if rare else None)

    def _ranked(
        self, conn: sqlite3.Connection, match: str, rank_match: str | None, offset: int, limit: int
    ) -> list[tuple[int, float]]:
        """Rows [offset, offset+limit) of one group: the RANK_WINDOW newest matches ordered by bm25 over the
        informative phrases (*rank_match*; newest first when there are none), then the older ones newest first."""
        out: list[tuple[int, float]] = []
        if rank_match is None:  # nothing to score: the whole group newest first, only this page's rows fetched
            rows = conn.execute(
                "SELECT rowid FROM pages_fts WHERE pages_fts MATCH ? ORDER BY rowid DESC LIMIT ? OFFSET ?",
                (match, limit, offset),
            ).fetchall()
            return [(int(r[0]), 0.0) for r in rows]
        if offset < RANK_WINDOW:
            # one statement, only this page's rows come back to Python: fetching the window's 1,000 rows and
            # their scores row by row re-took the GIL per row, and under 8 client threads each re-take waits for
            # the running thread's switch interval (the 8-thread tail was ~2x the 8-process one)
            out = [
                (int(r[0]), float(r[1]))
                for r in conn.execute(_RANK_SQL, (match, RANK_WINDOW, rank_match, limit, offset)).fetchall()
            ]
            if len(out) == limit or offset + len(out) < RANK_WINDOW:  # page full, or the group ends in the window
                return out
        if len(out) < limit:
            tail = conn.execute(
                "SELECT rowid FROM pages_fts WHERE pages_fts MATCH ? ORDER BY rowid DESC LIMIT ? OFFSET ?",
                (match, limit - len(out), max(offset, RANK_WINDOW)),
            ).fetchall()
            out += [(int(r[0]), 0.0) for r in tail]
        return out

    def search(self, query: SearchQuery) -> SearchResults:
        pq = parse_query(query.q)
        size = max(1, min(query.size, 100))
        page = max(1, query.page)
        if pq.empty:
            return SearchResults(query=pq.raw, total=0, page=page, size=size, hits=[])
        folded_parts = [_fts_phrase([fold(t)]) for t in pq.terms] + [
            _fts_phrase([fold(w) for w in ph]) for ph in pq.phrases
        ]
        exact_parts = [_literal_phrase([t]) for t in pq.terms] + [_literal_phrase(ph) for ph in pq.phrases]
        folded = "(" + " AND ".join(folded_parts) + ")"  # no column filters: see the module docstring
        exact = "(" + " AND ".join(exact_parts) + ")"
        conn = self._conn()
        try:
            filters = self._filter_terms(conn, query)
            if filters is None:
                return SearchResults(query=pq.raw, total=0, page=page, size=size, hits=[])
            base = " AND ".join([folded, *filters])
            exact_match = f"{base} AND {exact}"
            rest_match = f"({base}) NOT ({exact})"
            alone = len(folded_parts) == 1 and not filters
            counted, rank_match = self._count_and_rank(conn, base, folded_parts, alone)
            offset = (page - 1) * size
            picked = [(rid, sc, True) for rid, sc in self._ranked(conn, exact_match, rank_match, offset, size)]
            if len(picked) < size:  # the exact group ends on this page: the others follow
                # the group's size: known from this page unless it ended on an earlier one
                n_exact = offset + len(picked) if picked or not offset else self._count(conn, exact_match, offset)
                rest = self._ranked(conn, rest_match, rank_match, max(0, offset - n_exact), size - len(picked))
                picked += [(rid, sc, False) for rid, sc in rest]
            rows = {
                r["rowid"]: r
                for r in conn.execute(
                    "SELECT p.rowid, p.doc_id, p.number, p.text, d.dossier_code, d.kind, d.component, d.unit, "
                    "d.filename FROM pages p JOIN documents d ON d.id = p.doc_id "
                    f"WHERE p.rowid IN ({', '.join('?' for _ in picked)})",
                    [rid for rid, _, _ in picked],
                )
            }
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
                score=round(-score, 4),
                exact=is_exact,
                snippet=ss.snippet(r["text"], pq),
            )
            for rid, score, is_exact in picked
            if (r := rows.get(rid)) is not None
        ]
        capped = counted > SEARCH_COUNT_CAP
        return SearchResults(
            query=pq.raw, total=min(counted, SEARCH_COUNT_CAP), page=page, size=size, hits=hits, total_capped=capped
        )

    def clear(self) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO pages_fts (pages_fts) VALUES ('delete-all')")
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
