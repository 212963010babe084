"""Search at province scale (issue 15): capped counts, bounded ranking that keeps exact diacritics first,
filters pushed into the FTS query, the document filter of the page view, and migration of an old index."""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

import index.es as es_mod
import index.sqlite as sqlite_mod
from index import SearchIndex
from index.sqlite import SqliteIndex
from index.sqlite_search import date_tokens
from sohoa.models import DocRecord, PageText, SearchQuery
from sohoa.text import fold


def doc(
    i: str, code: str = "000.00.06.H56-261105-0001", unit: str = "UBND xã A", received: str = "2026-11-05"
) -> DocRecord:
    return DocRecord(
        id=i,
        dossier_code=code,
        kind="input",
        component="Đơn",
        unit=unit,
        filename=f"{i}.pdf",
        status="done",
        received_at=f"{received}T08:00:00.000+00:00",
        sha256=f"sha-{i}",
        page_count=1,
    )


@pytest.mark.parametrize("n, capped", [(5, False), (8, True)])
def test_count_is_capped_and_says_more_than(
    index: SearchIndex, monkeypatch: pytest.MonkeyPatch, n: int, capped: bool
) -> None:
    monkeypatch.setattr(sqlite_mod, "SEARCH_COUNT_CAP", 5)
    monkeypatch.setattr(es_mod, "SEARCH_COUNT_CAP", 5)
    index.replace_pages(doc("a"), [PageText(k, f"trang {k} về hộ tịch") for k in range(1, n + 1)])
    index.refresh()
    res = index.search(SearchQuery(q="ho tich", size=3))
    assert (res.total, res.total_capped) == (5, capped)
    assert res.to_dict()["total_capped"] is capped
    assert len(res.hits) == 3
    seen = [h.page for p in (1, 2, 3) for h in index.search(SearchQuery(q="ho tich", size=3, page=p)).hits]
    assert sorted(seen) == list(range(1, n + 1))  # every match still reachable past the cap


def test_document_filter(index: SearchIndex) -> None:
    index.replace_pages(doc("a"), [PageText(1, "quyết định giao đất"), PageText(2, "bìa"), PageText(3, "giao đất")])
    index.replace_pages(doc("b"), [PageText(1, "quyết định giao đất")])
    index.refresh()
    res = index.search(SearchQuery(q="giao dat", document_id="a", size=100))
    assert sorted(h.page for h in res.hits) == [1, 3] and res.total == 2
    assert {h.document_id for h in index.search(SearchQuery(q="giao dat", document_id="b")).hits} == {"b"}
    assert index.search(SearchQuery(q="giao dat", document_id="zzz")).total == 0


def test_bounded_ranking_keeps_exact_diacritics_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact page is the OLDEST row, outside the newest-first ranking window of the folded matches."""
    monkeypatch.setattr(sqlite_mod, "RANK_WINDOW", 3)
    ix = SqliteIndex(tmp_path / "i.db")
    ix.replace_pages(doc("exact"), [PageText(1, "nộp hồ sơ tại bộ phận một cửa")])
    for k in range(12):
        ix.replace_pages(doc(f"f{k:02d}"), [PageText(1, "ho so ho so ho so khong dau " + "x " * k)])
    res = ix.search(SearchQuery(q="hồ sơ", size=4))
    assert res.total == 13
    assert res.hits[0].document_id == "exact" and res.hits[0].exact
    assert not any(h.exact for h in res.hits[1:])
    # inside the window bm25 orders (shorter page = better); every page once over all result pages
    assert [h.document_id for h in res.hits[1:]] == ["f09", "f10", "f11"]
    seen = [h.document_id for p in range(1, 5) for h in ix.search(SearchQuery(q="hồ sơ", size=4, page=p)).hits]
    assert sorted(seen) == sorted(["exact"] + [f"f{k:02d}" for k in range(12)])
    assert seen[4:] == [f"f{k:02d}" for k in range(8, -1, -1)]  # past the window: newest first
    ix.close()


def test_filters_follow_document_updates(tmp_path: Path) -> None:
    ix = SqliteIndex(tmp_path / "i.db")
    ix.replace_pages(doc("a", unit="UBND xã A"), [PageText(1, "giấy chứng nhận")])
    assert ix.search(SearchQuery(q="giay", unit="UBND xã A")).total == 1
    ix.upsert_document(doc("a", unit="UBND xã B", received="2025-01-02"))
    assert ix.search(SearchQuery(q="giay", unit="UBND xã A")).total == 0
    assert ix.search(SearchQuery(q="giay", unit="UBND xã B")).total == 1
    assert ix.search(SearchQuery(q="giay", units=("ubnd  XÃ b",))).total == 1
    assert ix.search(SearchQuery(q="giay", units=("UBND xã A",))).total == 0
    assert ix.search(SearchQuery(q="giay", date_from="2025-01-02", date_to="2025-01-02")).total == 1
    assert ix.search(SearchQuery(q="giay", date_from="2026-01-01")).total == 0
    ix.delete_document("a")
    assert ix.search(SearchQuery(q="giay")).total == 0
    ix.close()


def test_token_spaces_stay_apart(tmp_path: Path) -> None:
    """No column filters in the queries: page words, literal words and filter tokens must never meet."""
    ix = SqliteIndex(tmp_path / "i.db")
    ix.replace_pages(doc("a", received="2025-03-04"), [PageText(1, "ǁy2026 ǂđất y2025 ǁm202503")])
    ix.replace_pages(doc("b", received="2026-03-04"), [PageText(1, "hồ sơ")])
    assert ix.search(SearchQuery(q="dat", date_from="2026-01-01")).total == 0  # ǁy2026 in the text is no filter
    assert [h.document_id for h in ix.search(SearchQuery(q="y2026")).hits] == ["a"]  # the word, not b's filter
    assert ix.search(SearchQuery(q="m202503")).total == 1 and ix.search(SearchQuery(q="y2025")).total == 1
    assert ix.search(SearchQuery(q="đất")).hits[0].exact  # marks in the text are dropped, the word kept
    assert ix.search(SearchQuery(q="ho so", date_from="2026-01-01")).total == 1
    ix.close()


def test_fast_snippet_equals_the_reference() -> None:
    from index.sqlite_search import snippet as fast
    from sohoa.text import parse_query, snippet, words

    rng = random.Random(5)
    texts = [p.read_text(encoding="utf-8") for p in sorted(Path(__file__).parent.glob("data/ocr/*.txt"))]
    texts += ["", "không có gì", "ĐẤT đai <b>&amp;</b> đất_đai Đất, dat; DAT đẤt 12/2024 ǂx"]
    texts += ["ho so dat " * 300 + "hồ sơ đất đai", " ".join(texts)]  # exact form late; a long text
    # a word across the end of the first folded prefix (4 × width characters), with and without a tail
    texts += [("w " * 500)[:pad] + "đấtx đất dat hồ " + "ho so " * 5 for pad in range(860, 890)]
    texts += [("w " * 500)[:pad] + "đất" for pad in range(230, 250)]
    checked = 0
    for text in texts:
        ws = words(text) or ["đất"]
        for _ in range(40):
            picked = rng.sample(ws, min(len(ws), rng.randint(1, 3)))
            picked = [rng.choice((w, fold(w), w.upper(), w.lower())) for w in picked]
            q = " ".join(picked) if rng.random() < 0.6 else f'"{" ".join(picked)}" {rng.choice(ws)}'
            if rng.random() < 0.15:
                q += " khôngcótừnày"
            pq = parse_query(q)
            for width in (220, 60):
                assert fast(text, pq, width) == snippet(text, pq, width), (q, width)
                checked += 1
    for text in texts[-50:]:
        for q in ("dat", "đất", "đất hồ", "ho so", "w"):
            for width in (220, 60):
                assert fast(text, parse_query(q), width) == snippet(text, parse_query(q), width), (q, width)
    assert checked > 400


def test_date_ranges_through_the_index(tmp_path: Path) -> None:
    """Date filters (day tokens, months minus days, whole months and years) against the dates themselves."""
    ix = SqliteIndex(tmp_path / "i.db")
    first = date(2024, 1, 25)
    days = [first + timedelta(days=k) for k in range(80)]  # 2024-01-25 … 2024-04-13 (a leap February)
    ix.bulk_replace_pages([(doc(f"d{k}", received=d.isoformat()), [PageText(1, "hồ sơ")]) for k, d in enumerate(days)])
    rng = random.Random(9)
    cases = [
        (date(2024, 2, 1), date(2024, 2, 28)),
        (date(2024, 2, 2), date(2024, 2, 29)),
        (date(2024, 3, 1), date(2024, 3, 31)),
    ]
    cases += [(date(2023, 12, 1), date(2024, 12, 31)), (date(2024, 1, 1), date(2024, 12, 31))]
    for _ in range(40):
        a = first + timedelta(days=rng.randint(-5, 85))
        cases.append((a, a + timedelta(days=rng.randint(0, 60))))
    for a, b in cases:
        want = sum(a <= d <= b for d in days)
        got = ix.search(SearchQuery(q="ho so", date_from=a.isoformat(), date_to=b.isoformat(), size=100))
        assert got.total == want, (a, b)
    ix.close()


def test_date_tokens_cover_exactly() -> None:
    rng = random.Random(3)
    for _ in range(300):
        a = date(2023, 1, 1) + timedelta(days=rng.randint(0, 1500))
        b = a + timedelta(days=rng.randint(0, 900))
        toks = {t.lstrip("ǁ") for t in date_tokens(a, b)}
        assert len(toks) <= 2 * (31 + 12) + (b.year - a.year + 1)
        d = a - timedelta(days=40)
        while d <= b + timedelta(days=40):
            covered = bool({f"y{d.year}", f"m{d.year}{d.month:02d}", f"d{d:%Y%m%d}"} & toks)
            assert covered == (a <= d <= b), (a, b, d)
            d += timedelta(days=1)


def test_fold_through_the_table_equals_folding_each_character() -> None:
    from sohoa.text import _fold_char

    s = "Đơn ĐỀ NGHỊ cấp giấy chứng nhận quyền sử dụng đất — Ủy ban, ưu tiên, ơn, Ỹ ỹ, café, ß, 日本"
    assert fold(s) == "".join(_fold_char(c) for c in s)


OLD_SCHEMA = """
CREATE TABLE documents (
    id TEXT PRIMARY KEY, dossier_code TEXT NOT NULL, kind TEXT NOT NULL, component TEXT NOT NULL DEFAULT '',
    unit TEXT NOT NULL DEFAULT '', filename TEXT NOT NULL DEFAULT '', status TEXT NOT NULL,
    received_at TEXT NOT NULL, sha256 TEXT NOT NULL DEFAULT '', page_count INTEGER NOT NULL DEFAULT 0,
    mean_confidence REAL, processed_at TEXT, error TEXT
);
CREATE TABLE pages (
    rowid INTEGER PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    number INTEGER NOT NULL, text TEXT NOT NULL, UNIQUE(doc_id, number)
);
CREATE VIRTUAL TABLE pages_fts USING fts5(exact, folded, tokenize = 'unicode61 remove_diacritics 0');
"""


def test_old_schema_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    pages = {("a", 1): "Quyết định giao đất", ("a", 2): "bìa", ("b", 1): "hồ sơ đất đai"}
    for i, unit, day in (("a", "UBND xã A", "2024-03-01"), ("b", "UBND xã B", "2025-06-01")):
        conn.execute(
            "INSERT INTO documents VALUES (?, 'HS-1', 'input', '', ?, '', 'done', ?, '', 1, NULL, NULL, NULL)",
            (i, unit, f"{day}T08:00:00+07:00"),
        )
    for (i, n), text in pages.items():
        cur = conn.execute("INSERT INTO pages (doc_id, number, text) VALUES (?, ?, ?)", (i, n, text))
        conn.execute("INSERT INTO pages_fts (rowid, exact, folded) VALUES (?, ?, ?)", (cur.lastrowid, text, fold(text)))
    conn.commit()
    conn.close()
    ix = SqliteIndex(path)
    sql = ix._conn().execute("SELECT sql FROM sqlite_master WHERE name='pages_fts'").fetchone()[0]
    assert "content = ''" in sql and "filters" in sql
    assert ix.search(SearchQuery(q="dat")).total == 2
    assert [h.document_id for h in ix.search(SearchQuery(q="dat", unit="UBND xã B")).hits] == ["b"]
    assert [h.document_id for h in ix.search(SearchQuery(q="dat", date_to="2024-12-31")).hits] == ["a"]
    assert ix.search(SearchQuery(q="đất")).hits[0].exact
    ix.replace_pages(doc("a"), [PageText(1, "thay thế")])  # rows of the migrated table delete cleanly
    assert ix.search(SearchQuery(q="dat")).total == 1
    ix.close()
    assert SqliteIndex(path).search(SearchQuery(q="thay the")).total == 1  # reopening: no second migration


V2_FTS = """
CREATE VIRTUAL TABLE pages_fts USING fts5(
    exact, folded, meta, content = '', tokenize = 'unicode61 remove_diacritics 0'
);"""


def test_unmarked_exact_column_is_migrated_to_literal_tokens(tmp_path: Path) -> None:
    """The shape before the literal column: contentless, ``exact`` sharing its tokens with ``folded``, filter
    tokens unmarked. After the migration the columns' token spaces are disjoint (queries use no column filter)."""
    from index.sqlite_search import meta_text

    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA.split("CREATE VIRTUAL")[0] + V2_FTS)
    conn.execute("ALTER TABLE pages ADD COLUMN meta TEXT NOT NULL DEFAULT ''")
    pages = {("a", 1): "quản lý hồ sơ", ("b", 1): "quan ly ho so", ("b", 2): "bìa"}
    for i in ("a", "b"):
        conn.execute(
            "INSERT INTO documents VALUES (?, 'HS-1', 'input', '', 'UBND xã A', '', 'done', "
            "'2025-06-01T08:00:00+07:00', '', 1, NULL, NULL, NULL)",
            (i,),
        )
    for (i, n), text in pages.items():
        meta = meta_text(i, "HS-1", "input", "UBND xã A", "2025-06-01T08:00:00+07:00").replace("ǁ", "")  # unmarked
        cur = conn.execute("INSERT INTO pages (doc_id, number, text, meta) VALUES (?, ?, ?, ?)", (i, n, text, meta))
        conn.execute(
            "INSERT INTO pages_fts (rowid, exact, folded, meta) VALUES (?, ?, ?, ?)",
            (cur.lastrowid, text, fold(text), meta),
        )
    conn.commit()
    conn.close()
    ix = SqliteIndex(path)
    sql = ix._conn().execute("SELECT sql FROM sqlite_master WHERE name='pages_fts'").fetchone()[0]
    assert "literal" in sql
    for q, first in (("quản lý", "a"), ("quan ly", "b")):  # each literal form ranks first
        hits = ix.search(SearchQuery(q=q, unit="UBND xã A")).hits
        assert [(h.document_id, h.exact) for h in hits] == [(first, True), ({"a": "b", "b": "a"}[first], False)]
    # the literal words have their own tokens: no folded token in the literal column and back
    vocab = ix._conn()
    vocab.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, pages_fts, 'col')")
    cols = {(t, c) for t, c in vocab.execute("SELECT term, col FROM temp.v")}
    assert ("quan", "folded") in cols and ("ǂquan", "literal") in cols and ("ǂquản", "literal") in cols
    assert {c for t, c in cols if t.startswith("ǂ")} == {"literal"}
    assert {c for t, c in cols if t.startswith("ǁ")} == {"filters"}
    assert {c for t, c in cols if t[0] not in "ǂǁ"} == {"folded"}
    ix.replace_pages(doc("b"), [PageText(1, "thay thế")])  # rows of the migrated table delete cleanly
    assert ix.search(SearchQuery(q="quan ly")).total == 1
    ix.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str, object]]:
    from fastapi.testclient import TestClient

    from api import create_app
    from sohoa.settings import Settings

    import fixtures
    from deploy import CODE, authorize, wait_for

    settings = Settings(data_dir=tmp_path_factory.mktemp("api") / "data")
    with TestClient(create_app(settings)) as c:
        authorize(c, settings)
        r = c.post("/documents", data={"dossier_code": CODE, "kind": "input"},
                   files=[("files", ("đơn.pdf", fixtures.two_page_pdf(), "application/pdf"))])  # fmt: skip
        assert r.status_code == 202, r.text
        doc_id = r.json()["documents"][0]["id"]
        wait_for(lambda: c.get(f"/documents/{doc_id}").json()["status"] == "done", 180, what="OCR done")
        yield c, doc_id, settings


def test_page_view_lists_matching_pages_from_the_index(served: tuple[object, str, object]) -> None:
    from storage import open_store

    c, doc_id, settings = served
    store = open_store(settings.storage_url)  # type: ignore[attr-defined]
    # the view no longer reads every page's text from storage: with page 2's text gone, the index still knows
    from sohoa.context import page_key

    store.delete(page_key(doc_id, 2, "txt"))
    store.close()
    html = c.get(f"/view/{doc_id}/1?q=tran%20van%20binh").text  # type: ignore[attr-defined]
    assert 'data-hit-pages="1,2"' in html, html
    assert 'data-hit-pages="2"' in c.get(f"/view/{doc_id}/1?q=thua%20dat").text  # type: ignore[attr-defined]
    assert 'data-hit-pages=""' in c.get(f"/view/{doc_id}/1?q=khong%20co%20dau").text  # type: ignore[attr-defined]


def test_api_and_search_page_say_more_than(served: tuple[object, str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    c = served[0]
    body = c.get("/search", params={"q": "tran van binh"}).json()  # type: ignore[attr-defined]
    assert (body["total"], body["total_capped"], body["total_text"]) == (2, False, "2 kết quả")
    monkeypatch.setattr(sqlite_mod, "SEARCH_COUNT_CAP", 1)
    body = c.get("/search", params={"q": "tran van binh"}).json()  # type: ignore[attr-defined]
    assert (body["total"], body["total_capped"], body["total_text"]) == (1, True, "hơn 1 kết quả")
    assert len(body["hits"]) == 2
    html = c.get("/", params={"q": "tran van binh"}).text  # type: ignore[attr-defined]
    assert re.search(r'<p id="summary">hơn 1 trang khớp', html), html


@pytest.mark.parametrize("cap, scored", [(5, False), (50, True)])
def test_a_capped_total_never_makes_a_phrase_look_rare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: int, scored: bool
) -> None:
    """A phrase is scored by bm25 only when the query's total says it is on few pages; a total stopped at the
    cap says nothing (the phrase may be on every page: scoring it would walk its whole doclist)."""
    monkeypatch.setattr(sqlite_mod, "SEARCH_COUNT_CAP", cap)
    monkeypatch.setattr(sqlite_mod, "RANK_DF_MAX", 1000)
    ix = SqliteIndex(tmp_path / "i.db")
    ix.replace_pages(doc("a"), [PageText(k, f"trang {k} về hộ tịch") for k in range(1, 21)])
    conn = ix._conn()
    for alone, base, phrases in ((True, '"tich"', ['"tich"']), (False, '("ho" AND "tich")', ['"ho"', '"tich"'])):
        counted, rank = SqliteIndex._count_and_rank(conn, base, phrases, alone)
        assert counted == min(20, cap + 1)
        assert (rank is not None) is scored, (alone, rank)
    ix.close()
