"""The API's edges on the embedded default: offline docs, clean URLs in /health, clear 422/404 for bad
dates and pages that do not exist; and the page view in a real browser (Chromium), where Vietnamese
letters with two marks must be drawn by one font, not as a letter and a detached mark."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api import create_app
from sohoa.settings import Settings

import fixtures
from conftest import LiveServer
from deploy import CODE, authorize, wait_for


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("api") / "data")
    with TestClient(create_app(settings)) as c:
        authorize(c, settings)
        r = c.post("/documents", data={"dossier_code": CODE, "kind": "input", "component": "Đơn đề nghị"},
                   files=[("files", ("đơn.pdf", fixtures.two_page_pdf(), "application/pdf"))])  # fmt: skip
        assert r.status_code == 202, r.text
        doc = r.json()["documents"][0]["id"]
        wait_for(lambda: c.get(f"/documents/{doc}").json()["status"] == "done", 180, what="OCR done")
        yield c, doc


def test_docs_pages_load_their_scripts_from_the_app(served: tuple[TestClient, str]) -> None:
    c, _ = served
    for url in ("/docs", "/redoc"):
        page = c.get(url)
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', page.text)
        assert assets, page.text
        for a in assets:
            assert a.startswith("/static/docs/"), f"{url} loads {a} from outside the app"
            r = c.get(a)
            assert r.status_code == 200 and len(r.content) > 1000, a
        assert "cdn." not in page.text and "fonts.googleapis" not in page.text


def test_health_shows_clean_urls(served: tuple[TestClient, str]) -> None:
    assert served[0].get("/health", headers={"Authorization": ""}).json() == {"status": "ok"}  # liveness only
    h = served[0].get("/health/details").json()
    assert re.fullmatch(r"sqlite:///[^/].*index\.sqlite3", h["index"]), h
    assert re.fullmatch(r"file:///[^/].*objects", h["storage"]), h
    assert h["broker"] == "memory://"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-13-01"}, "ngày không hợp lệ"),
        ({"date_to": "garbage"}, "YYYY-MM-DD"),
        ({"date_from": "2026-02-30"}, "ngày không hợp lệ"),
        ({"date_from": "2026-12-01", "date_to": "2026-01-01"}, "trước ngày bắt đầu"),
    ],
)
def test_bad_search_dates_are_422(served: tuple[TestClient, str], params: dict, message: str) -> None:
    r = served[0].get("/search", params={"q": "dat dai", **params})
    assert r.status_code == 422 and message in r.json()["detail"]["message"], r.text


def test_good_search_dates_filter(served: tuple[TestClient, str]) -> None:
    c, _ = served
    assert c.get("/search", params={"q": "dat dai", "date_from": "2026-01-01"}).json()["total"] >= 1
    assert c.get("/search", params={"q": "dat dai", "date_to": "2000-01-01"}).json()["total"] == 0


@pytest.mark.parametrize("url", ["/view/{doc}/9", "/view/{doc}/0", "/documents/{doc}/pages/3",
                                 "/documents/{doc}/pages/9/text", "/documents/{doc}/pages/0/hocr"])  # fmt: skip
def test_pages_that_do_not_exist_are_404(served: tuple[TestClient, str], url: str) -> None:
    c, doc = served
    r = c.get(url.format(doc=doc))
    assert r.status_code == 404, r.text
    assert "chỉ có 2 trang" in (r.text if url.startswith("/view") else r.json()["detail"]["message"])


def test_pages_that_exist_answer(served: tuple[TestClient, str]) -> None:
    c, doc = served
    assert c.get(f"/view/{doc}/2").status_code == 200
    r = c.get(f"/documents/{doc}/pages/2")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "Hồ sơ đất đai" in c.get(f"/documents/{doc}/pages/2/text").text


def test_page_view_draws_vietnamese_letters_with_one_font(tmp_path: Path, browser: object, shots: object) -> None:
    """The text pane once drew "Đề nghị" as "Đê`nghị": the page text is NFC (checked here too), but the
    browsers' default monospace font (DejaVu Sans Mono) has no precomposed ề/ấ/ộ, so Chromium drew a base
    letter plus a detached combining mark. The pane now uses the body font, which has every letter."""
    app_settings = Settings(data_dir=tmp_path / "data")
    app = create_app(app_settings)
    server = LiveServer(app)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            authorize(http, app_settings)
            r = http.post("/documents", data={"dossier_code": CODE, "kind": "input"},
                          files=[("files", ("đề nghị.pdf", fixtures.two_page_pdf(), "application/pdf"))])  # fmt: skip
            doc = r.json()["documents"][0]["id"]
            wait_for(lambda: http.get(f"/documents/{doc}").json()["status"] == "done", 180, what="OCR done")
            stored = http.get(f"/documents/{doc}/pages/2/text").text
        assert unicodedata.is_normalized("NFC", stored) and "ĐỀ NGHỊ" in stored

        from sohoa.auth import AuthStore
        from storage import open_store

        store = open_store(app_settings.storage_url)
        AuthStore(store).add_user("tra.cuu", "Tra-cuu-2026!", ["staff"], ["*"], "Cán bộ tra cứu")
        store.close()

        page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        shot = shots(page)  # type: ignore[operator]
        page.goto(f"{server.url}/view/{doc}/2?q=de%20nghi")
        assert "/login" in page.url  # no session: sent to the sign-in page, then back
        shot("sign-in")
        page.fill("#username", "tra.cuu")
        page.fill("#password", "Tra-cuu-2026!")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.url.endswith(f"/view/{doc}/2?q=de%20nghi"), page.url
        shown = page.inner_text("pre.page-text")
        assert unicodedata.is_normalized("NFC", shown) and "ĐỀ NGHỊ" in shown
        shot("page-view")

        cdp = page.context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "pre.page-text"})["nodeId"]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        families = {f["familyName"] for f in fonts}
        assert len(families) == 1 and "DejaVu Sans Mono" not in families, fonts  # no per-glyph fallback

        missing = page.goto(f"{server.url}/view/{doc}/9")
        assert missing.status == 404
        shot("page-9-of-2")
        page.close()
    finally:
        server.stop()
