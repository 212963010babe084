"""ONE contract suite for the search index, run against SQLite FTS5 and Elasticsearch."""

from __future__ import annotations

import unicodedata

from index import SearchIndex
from sohoa.models import DocRecord, PageText, SearchQuery


def doc(
    i: str,
    code: str = "000.00.06.H56-261105-0001",
    kind: str = "input",
    unit: str = "UBND xã A",
    received: str = "2026-11-05T08:00:00.000+00:00",
    status: str = "done",
) -> DocRecord:
    return DocRecord(
        id=i,
        dossier_code=code,
        kind=kind,
        component="Đơn",
        unit=unit,
        filename=f"{i}.pdf",
        status=status,
        received_at=received,
        sha256=f"sha-{i}",
        page_count=1,
    )


def test_upsert_get_list(index: SearchIndex) -> None:
    index.upsert_document(doc("d1", status="queued"))
    index.upsert_document(doc("d2", code="000.00.06.H56-261105-0002", received="2026-11-06T08:00:00.000+00:00"))
    index.upsert_document(doc("d1", status="processing"))
    assert index.get_document("d1").status == "processing"  # type: ignore[union-attr]
    assert index.get_document("nope") is None
    assert [d.id for d in index.list_documents()] == ["d1", "d2"]
    assert [d.id for d in index.list_documents(statuses=["processing"])] == ["d1"]
    assert [d.id for d in index.list_documents(dossier_code="000.00.06.H56-261105-0002")] == ["d2"]
    assert [d.id for d in index.list_documents(sha256="sha-d2")] == ["d2"]


def test_folded_search_finds_diacritics_and_page(index: SearchIndex) -> None:
    index.replace_pages(
        doc("d1"), [PageText(1, "Trang bìa không liên quan"), PageText(2, "Đơn đăng ký: hồ sơ đất đai của hộ gia đình")]
    )
    res = index.search(SearchQuery(q="ho so dat dai"))
    assert res.total == 1
    hit = res.hits[0]
    assert (hit.document_id, hit.page, hit.dossier_code) == ("d1", 2, "000.00.06.H56-261105-0001")
    assert "<mark>hồ</mark> <mark>sơ</mark> <mark>đất</mark> <mark>đai</mark>" in hit.snippet


def test_exact_diacritics_rank_first(index: SearchIndex) -> None:
    # the folded-only matches are given more occurrences so that plain relevance would favour them
    index.replace_pages(doc("a"), [PageText(1, "hộ số hộ số hộ số: danh sách hộ số cũ")])
    index.replace_pages(doc("b"), [PageText(1, "nộp hồ sơ tại bộ phận một cửa")])
    index.replace_pages(doc("c"), [PageText(1, "ho so ho so ho so khong dau")])
    res = index.search(SearchQuery(q="hồ sơ"))
    assert res.total == 3
    assert res.hits[0].document_id == "b" and res.hits[0].exact
    assert not any(h.exact for h in res.hits[1:])


def test_d_stroke_and_case_and_nfd_query(index: SearchIndex) -> None:
    index.replace_pages(doc("a"), [PageText(1, "ĐĂNG KÝ ĐẤT ĐAI")])
    for q in ("dang ky dat dai", "đăng ký", unicodedata.normalize("NFD", "đăng ký đất đai"), "DAT"):
        assert index.search(SearchQuery(q=q)).total == 1, q
    assert index.search(SearchQuery(q="dang ky nha o")).total == 0  # every word must match


def test_phrase(index: SearchIndex) -> None:
    index.replace_pages(doc("a"), [PageText(1, "quyền sử dụng đất và tài sản")])
    index.replace_pages(doc("b"), [PageText(1, "đất sử dụng quyền khác")])
    res = index.search(SearchQuery(q='"quyen su dung dat"'))
    assert [h.document_id for h in res.hits] == ["a"]


def test_filters(index: SearchIndex) -> None:
    index.replace_pages(
        doc("a", kind="input", unit="UBND xã A", received="2026-01-10T00:00:00.000+00:00"),
        [PageText(1, "giấy chứng nhận quyền sử dụng đất")],
    )
    index.replace_pages(
        doc(
            "b",
            code="000.00.06.H56-261105-0009",
            kind="output",
            unit="UBND huyện B",
            received="2026-03-10T00:00:00.000+00:00",
        ),
        [PageText(1, "giấy chứng nhận quyền sử dụng đất")],
    )
    q = "giay chung nhan"
    assert index.search(SearchQuery(q=q)).total == 2
    assert [h.document_id for h in index.search(SearchQuery(q=q, kind="output")).hits] == ["b"]
    assert [h.document_id for h in index.search(SearchQuery(q=q, unit="UBND xã A")).hits] == ["a"]
    assert [h.document_id for h in index.search(SearchQuery(q=q, dossier_code="000.00.06.H56-261105-0009")).hits] == [
        "b"
    ]
    assert [h.document_id for h in index.search(SearchQuery(q=q, date_from="2026-02-01")).hits] == ["b"]
    assert [h.document_id for h in index.search(SearchQuery(q=q, date_to="2026-01-10")).hits] == ["a"]


def test_pagination(index: SearchIndex) -> None:
    index.replace_pages(doc("a"), [PageText(n, f"trang {n} về hộ tịch") for n in range(1, 8)])
    seen = []
    for p in (1, 2, 3):
        res = index.search(SearchQuery(q="ho tich", page=p, size=3))
        assert res.total == 7
        seen += [(h.document_id, h.page) for h in res.hits]
    assert sorted(seen) == [("a", n) for n in range(1, 8)]


def test_replace_pages_is_idempotent(index: SearchIndex) -> None:
    pages = [PageText(1, "thửa đất số 125"), PageText(2, "tờ bản đồ số 7"), PageText(3, "thửa đất bổ sung")]
    index.replace_pages(doc("a"), pages)
    index.replace_pages(doc("a"), pages)
    assert index.page_count("a") == 3
    assert index.search(SearchQuery(q="thua dat")).total == 2
    index.replace_pages(doc("a"), pages[:1])  # a re-run that produced fewer pages
    assert index.page_count("a") == 1
    assert index.search(SearchQuery(q="thua dat")).total == 1


def test_delete_and_clear(index: SearchIndex) -> None:
    index.replace_pages(doc("a"), [PageText(1, "biên bản")])
    index.replace_pages(doc("b"), [PageText(1, "biên bản")])
    index.delete_document("a")
    assert index.get_document("a") is None and index.page_count("a") == 0
    assert index.search(SearchQuery(q="bien ban")).total == 1
    index.clear()
    assert index.list_documents() == [] and index.search(SearchQuery(q="bien ban")).total == 0


def test_dossier_summary(index: SearchIndex) -> None:
    code = "000.00.06.H56-261105-0001"
    index.upsert_document(doc("a", code=code, kind="input", status="done"))
    index.upsert_document(doc("b", code=code, kind="output", status="processing"))
    s = index.dossier(code)
    assert s.input_digitized and not s.output_digitized
    index.upsert_document(doc("b", code=code, kind="output", status="done"))
    assert index.dossier(code).output_digitized


def test_nfc_everywhere(index: SearchIndex) -> None:
    nfd = unicodedata.normalize("NFD", "Ủy ban nhân dân xã Quảng Định")
    index.replace_pages(doc("a", unit=nfd), [PageText(1, nfd)])
    d = index.get_document("a")
    assert d is not None and d.unit == unicodedata.normalize("NFC", nfd)
    res = index.search(SearchQuery(q="Quảng Định", unit="Ủy ban nhân dân xã Quảng Định"))
    assert res.total == 1 and res.hits[0].exact
