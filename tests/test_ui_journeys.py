"""The clerk's and the staff's whole jobs in a real browser (Playwright driving Debian's chromium, headless) on
the embedded default: sign in, upload 3 files for 2 dossiers, watch them reach done, fix a wrong component,
replace a page; search without diacritics, open a hit, see the boxes on the page image; a user of another
unit sees none of it. Every page passes axe-core (no serious/critical violations); screenshots of each step
under test-output/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from api import create_app
from sohoa.demo import pdf_bytes

import fixtures
from conftest import UI_PASSWORD, LiveServer, Site, assert_accessible, seed_site, sign_in

CODE_1 = "000.00.06.H56-260715-0101"
CODE_2 = "000.00.06.H56-260716-0102"
PASSWORD = UI_PASSWORD


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("ui")
    users = [("vanthu.a", "clerk", "A", "Văn thư xã A"), ("tracuu.a", "staff", "A", "Tra cứu xã A"),
             ("tracuu.b", "staff", "B", "Tra cứu xã B")]  # fmt: skip
    settings, _ = seed_site(root, users)
    files = root / "files"
    files.mkdir()
    (files / "đơn đề nghị.pdf").write_bytes(fixtures.two_page_pdf())  # page 2: "Hồ sơ đất đai …"
    (files / "tờ khai.jpg").write_bytes(fixtures.jpeg_scan())
    (files / "quyết định.png").write_bytes(fixtures.png_scan(["QUYẾT ĐỊNH", "Về việc cấp giấy chứng nhận"]))
    rescan = fixtures.small_page(["ĐƠN ĐỀ NGHỊ (BẢN QUÉT LẠI)", "Hồ sơ đất đai quét lại rõ hơn", "Thửa đất số 42"])
    (files / "quét lại trang 2.pdf").write_bytes(pdf_bytes([rescan], dpi=200))
    server = LiveServer(create_app(settings))
    try:
        yield Site(server.url, settings, files)
    finally:
        server.stop()


def _new_page(browser: object) -> object:
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")  # type: ignore[attr-defined]
    return ctx.new_page()


def _statuses(page: object) -> list[str]:
    return page.eval_on_selector_all("#list .status", "els => els.map(e => e.textContent)")  # type: ignore[attr-defined,no-any-return]


def test_clerk_uploads_watches_fixes_and_replaces(site: Site, browser: object, shots: object) -> None:
    page = _new_page(browser)
    shot = shots(page)  # type: ignore[operator]
    sign_in(page, site.url, "vanthu.a", PASSWORD)
    page.goto(f"{site.url}/upload")  # type: ignore[attr-defined]
    assert_accessible(page, "upload")
    shot("upload-empty")
    page.fill("#b-code", CODE_1)  # type: ignore[attr-defined]
    page.fill("#b-comp", "Đơn đề nghị")  # type: ignore[attr-defined]
    page.set_input_files("#files", [str(site.files / n) for n in ("đơn đề nghị.pdf", "tờ khai.jpg", "quyết định.png")])  # type: ignore[attr-defined]
    page.fill("#code-2", "000.00.06.H56-26-bad")  # type: ignore[attr-defined]
    page.select_option("#kind-2", "output")  # type: ignore[attr-defined]
    page.click("#send")  # type: ignore[attr-defined]
    assert "cần sửa" in _statuses(page)[2] and "không đúng dạng" in page.inner_text("#list")  # type: ignore[attr-defined]
    assert all(s == "chưa gửi" for s in _statuses(page)[:2])  # nothing sent while a row is wrong
    shot("upload-checked")
    page.fill("#code-2", CODE_2)  # type: ignore[attr-defined]
    page.fill("#comp-2", "Quyết định")  # type: ignore[attr-defined]
    page.click("#send")  # type: ignore[attr-defined]
    page.wait_for_function("() => [...document.querySelectorAll('#list .status')].every(e => e.textContent === 'xong')",
                           timeout=240_000)  # fmt: skip
    assert [int(v) for v in page.eval_on_selector_all("#list progress", "els => els.map(e => e.value)")] == [100] * 3  # type: ignore[attr-defined]
    shot("upload-done")

    # the queue lists the three; then the document page of the JPEG: its component was wrong
    page.goto(f"{site.url}/queue?mine=1")  # type: ignore[attr-defined]
    assert page.locator("tbody tr").count() == 3  # type: ignore[attr-defined]
    assert_accessible(page, "queue")
    shot("queue")
    page.click("text=tờ khai.jpg")  # type: ignore[attr-defined]
    assert_accessible(page, "document")
    page.fill("#e-comp", "Tờ khai đăng ký kết hôn")  # type: ignore[attr-defined]
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.click("form[action$='/edit'] button")  # type: ignore[attr-defined]
    assert "Đã sửa thông tin" in page.inner_text("main")  # type: ignore[attr-defined]
    assert "«Đơn đề nghị» → «Tờ khai đăng ký kết hôn»" in page.inner_text("main")  # type: ignore[attr-defined]
    shot("component-fixed")

    # replace page 2 of the PDF by a re-scan: re-OCR'd, the old original kept
    page.goto(f"{site.url}/queue")  # type: ignore[attr-defined]
    page.click("text=đơn đề nghị.pdf")  # type: ignore[attr-defined]
    doc_url = page.url  # type: ignore[attr-defined]
    page.fill("#r-number", "2")  # type: ignore[attr-defined]
    page.set_input_files("#r-file", str(site.files / "quét lại trang 2.pdf"))  # type: ignore[attr-defined]
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.click("form[action$='/replace'] button")  # type: ignore[attr-defined]
    assert "Đã thay trang" in page.inner_text("main")  # type: ignore[attr-defined]
    page.wait_for_function("() => document.querySelector('[data-doc-id]').dataset.status === 'done'", timeout=180_000)  # type: ignore[attr-defined]
    page.goto(doc_url)  # type: ignore[attr-defined]
    assert "thay trang 2 bằng quét lại trang 2.pdf" in page.inner_text("main")  # type: ignore[attr-defined]
    shot("page-replaced")
    doc_id = doc_url.rstrip("/").split("/")[-1].split("?")[0]
    text = page.request.get(f"{site.url}/documents/{doc_id}/pages/2/text").text()  # type: ignore[attr-defined]
    assert "quét lại" in text.lower() or "QUÉT LẠI" in text, text
    d = page.request.get(f"{site.url}/documents/{doc_id}").json()  # type: ignore[attr-defined]
    assert d["original_key"].endswith("original-v2.pdf") and d["versions"][0]["key"].endswith("original.pdf")
    assert page.request.get(f"{site.url}/documents/{doc_id}/original").ok  # type: ignore[attr-defined]
    page.context.close()  # type: ignore[attr-defined]


def test_staff_searches_without_diacritics_and_sees_the_boxes(site: Site, browser: object, shots: object) -> None:
    test_clerk_done = site  # the clerk's test ran first (module order); make sure its documents are there
    page = _new_page(browser)
    shot = shots(page)  # type: ignore[operator]
    sign_in(page, site.url, "tracuu.a", PASSWORD)
    page.goto(f"{site.url}/?q=ho+so+dat+dai")  # type: ignore[attr-defined]
    assert_accessible(page, "search results")
    summary = page.inner_text("#summary")  # type: ignore[attr-defined]
    assert re.match(r"[1-9]\d* trang khớp", summary), summary
    assert f"Hồ sơ {CODE_1}" in page.inner_text("main")  # type: ignore[attr-defined]  # grouped by dossier
    shot("search-no-diacritics")
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.click("a.hitlink >> nth=0")  # type: ignore[attr-defined]
    boxes = page.locator(".pageimg .box").count()  # type: ignore[attr-defined]
    marks = page.locator("pre.page-text mark").count()  # type: ignore[attr-defined]
    assert boxes >= 3 and marks >= 3, (boxes, marks)
    inside = page.evaluate("""() => [...document.querySelectorAll('.pageimg .box')].every(b => {
        const r = b.getBoundingClientRect(), i = document.querySelector('.pageimg img').getBoundingClientRect();
        return r.width > 2 && r.left >= i.left - 1 && r.right <= i.right + 1
            && r.top >= i.top - 1 && r.bottom <= i.bottom + 1; })""")  # type: ignore[attr-defined]
    assert inside, "every highlight box lies on the page image"
    assert_accessible(page, "page view")
    shot("page-view-highlights")
    here = page.url  # type: ignore[attr-defined]
    if "/2?" in here:
        page.keyboard.press("ArrowLeft")  # type: ignore[attr-defined]
        page.wait_for_url(re.compile(r"/1\?q="))  # type: ignore[attr-defined]
        shot("keyboard-previous-page")
    page.goto(f"{site.url}/?q=đất+xyzkhongco&kind=output")  # type: ignore[attr-defined]
    assert "Không tìm thấy" in page.inner_text("main")  # type: ignore[attr-defined]
    assert page.locator("text=Tìm không dấu").count() == 1 and page.locator("text=Bỏ các bộ lọc").count() == 1  # type: ignore[attr-defined]
    shot("no-hit-suggestions")
    page.set_viewport_size({"width": 360, "height": 740})  # type: ignore[attr-defined]
    page.goto(f"{site.url}/?q=ho+so+dat+dai")  # type: ignore[attr-defined]
    width = page.evaluate("() => document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert width <= 362, f"the search page scrolls sideways at 360 px ({width})"
    shot("phone-width")
    assert test_clerk_done
    page.context.close()  # type: ignore[attr-defined]


def test_a_user_of_another_unit_sees_none_of_it(site: Site, browser: object, shots: object) -> None:
    page = _new_page(browser)
    shot = shots(page)  # type: ignore[operator]
    sign_in(page, site.url, "tracuu.a", PASSWORD)
    found = page.request.get(f"{site.url}/search?q=ho+so+dat+dai").json()  # type: ignore[attr-defined]
    doc = found["hits"][0]["document_id"]
    page.context.close()  # type: ignore[attr-defined]

    page = _new_page(browser)
    shot = shots(page)  # type: ignore[operator]
    sign_in(page, site.url, "tracuu.b", PASSWORD)
    page.goto(f"{site.url}/?q=ho+so+dat+dai")  # type: ignore[attr-defined]
    assert page.inner_text("#summary").startswith("0 trang khớp")  # type: ignore[attr-defined]
    shot("other-unit-search")
    r = page.goto(f"{site.url}/view/{doc}/1")  # type: ignore[attr-defined]
    assert r.status == 404 and "Không tìm thấy" in page.inner_text("main")  # type: ignore[attr-defined]
    shot("other-unit-page-404")
    assert page.goto(f"{site.url}/doc/{doc}").status == 404  # type: ignore[attr-defined]
    assert page.request.get(f"{site.url}/documents/{doc}/pages/1").status == 404  # type: ignore[attr-defined]
    assert page.goto(f"{site.url}/upload").status == 403  # type: ignore[attr-defined]  # staff cannot upload
    page.context.close()  # type: ignore[attr-defined]
