"""The manager's, the administrator's and the auditor's jobs in a real browser (Playwright driving Debian's
chromium, headless) on the embedded default.

The world: a province T with two communes A and B; scans uploaded through the JSON API by clerk tokens and
OCR'd; the registry imported by a manager token. The manager of A opens the quarter report, whose charts
(SVG and the tables beside them) say exactly what ``GET /reports/digitization`` says, follows a bar to the
undigitized dossiers and what they miss, downloads the XLSX, imports a registry file with a bad row; the
manager of B sees none of A; the administrator creates a user (password shown once), disables it, creates
and revokes a token, imports the unit tree; the auditor filters the log and finds the administrator's acts.
Every page passes axe-core (no serious/critical violations); screenshots of each step under
test-output/screenshots/<test name>/."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import openpyxl
import pytest

from api import create_app

import fixtures
from conftest import UI_PASSWORD, LiveServer, Site, assert_accessible, seed_site, sign_in
from deploy import wait_for

PASSWORD = UI_PASSWORD
A1, A2, A3, A4 = (f"000.00.06.H56-2607{n:02d}-01{n:02d}" for n in (1, 2, 3, 4))
B1, B2 = "000.00.06.H56-260716-0201", "000.00.06.H56-260818-0202"
A5 = "000.00.06.H56-261001-0105"
GCN = "Giấy chứng nhận quyền sử dụng đất"
REGISTRY = (
    "MaHoSo,MaTTHC,TenTTHC,TenLinhVuc,NgayTiepNhan,NgayCoKetQua,DonViXuLy,ThanhPhanBatBuoc\n"
    f"{A1},1.001,Cấp giấy chứng nhận,Đất đai,15/07/2026,,A,Đơn đề nghị;{GCN}\n"
    f"{A2},1.002,Đăng ký kết hôn,Hộ tịch,20/07/2026,05/08/2026,A,Tờ khai\n"
    f"{A3},1.001,Cấp giấy chứng nhận,Đất đai,10/08/2026,25/08/2026,A,Đơn đề nghị\n"
    f"{A4},1.003,Chứng thực,Chứng thực,02/09/2026,,A,\n"
    f"{B1},1.001,Cấp giấy chứng nhận,Đất đai,16/07/2026,,B,Đơn đề nghị\n"
    f"{B2},1.002,Đăng ký kết hôn,Hộ tịch,18/08/2026,30/08/2026,B,\n"
)  # fmt: skip
# Q3 2026 for A: received A1..A4 (A1 has a digitized input) = 1/4; resolved A2, A3 (A2 has its result) = 1/2


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("ui-manage")
    settings, tokens = seed_site(
        root,
        [("quanly.a", "manager", "A", "Lãnh đạo xã A"), ("quanly.b", "manager", "B", "Lãnh đạo xã B"),
         ("quanly.tinh", "manager", "T", "Lãnh đạo tỉnh"), ("quantri", "admin", "*", "Quản trị hệ thống"),
         ("kiemtra", "auditor", "*", "Kiểm tra nhật ký")],
        [("A", "clerk", "A"), ("B", "clerk", "B"), ("T", "manager", "T")],
    )  # fmt: skip
    server = LiveServer(create_app(settings))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            docs = []
            for unit, code, kind, comp, lines in (
                ("A", A1, "input", "Đơn đề nghị", fixtures.PAGE2),
                ("A", A2, "output", "Giấy chứng nhận kết hôn", ["GIẤY CHỨNG NHẬN KẾT HÔN", "Số 12/2026"]),
                ("B", B1, "input", "Đơn đề nghị", fixtures.PAGE2),
            ):
                r = http.post("/documents", headers={"Authorization": f"Bearer {tokens[unit]}"},
                              data={"dossier_code": code, "kind": kind, "component": comp, "unit": unit},
                              files=[("files", (f"{code}.png", fixtures.png_scan(lines), "image/png"))])  # fmt: skip
                assert r.status_code == 202, r.text
                docs.append((tokens[unit], r.json()["documents"][0]["id"]))
            for tok, doc in docs:
                h = {"Authorization": f"Bearer {tok}"}
                wait_for(lambda d=doc, h=h: http.get(f"/documents/{d}", headers=h).json()["status"] == "done", 240,
                         what="OCR done")  # fmt: skip
            r = http.post("/registry/import", headers={"Authorization": f"Bearer {tokens['T']}"},
                          files={"file": ("so-dang-ky.csv", REGISTRY.encode(), "text/csv")})  # fmt: skip
            assert r.json()["inserted"] == 6, r.text
        files = root / "files"
        files.mkdir()
        yield Site(server.url, settings, files)
    finally:
        server.stop()


def _new_page(browser: Any, width: int = 1366, height: int = 768) -> Any:
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN", accept_downloads=True)
    page = ctx.new_page()
    page.on("dialog", lambda d: d.accept())  # the "are you sure?" of disable / revoke / unit import
    return page


def _num(text: str) -> float:
    """A number as the pages write it (1.234,5 %) → 1234.5."""
    t = text.replace("%", "").replace("\xa0", " ").strip().split(" ")[0]
    return float(t.replace(".", "").replace(",", "."))


def _table(page: Any, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        f"{selector} tbody tr", "rows => rows.map(r => [...r.children].map(c => c.textContent.trim()))"
    )


def _bars(page: Any, chart: str) -> list[dict[str, str]]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        f"{chart} [data-unit]",
        "gs => gs.map(g => ({unit: g.dataset.unit, total: g.dataset.total, done: g.dataset.done, rate: g.dataset.rate,"
        " label: g.querySelector('.val').textContent}))",
    )


def _no_sideways_scroll(page: Any, width: int) -> None:
    scroll = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width + 2, f"{page.url} scrolls sideways at {width} px ({scroll})"


def _check_report_against_api(page: Any, site: Site, params: str) -> dict[str, Any]:
    """The page's numbers — headline, both unit charts (SVG and table) and the month table — are the API's."""
    api = page.request.get(f"{site.url}/reports/digitization?{params}").json()
    total = api["total"]
    assert page.inner_text("#count-input") == f"{total['received_digitized']} / {total['received']}"
    assert page.inner_text("#count-output") == f"{total['resolved_digitized']} / {total['resolved']}"
    if total["input_rate"] is not None:
        assert _num(page.inner_text("#rate-input")) == pytest.approx(total["input_rate"], abs=0.05)
    sides = (("input", "unit-input", "received", "received_digitized", "input_rate"),
             ("output", "unit-output", "resolved", "resolved_digitized", "output_rate"))  # fmt: skip
    for side, chart, n, d, rate in sides:
        lines = {ln["key"]: ln for ln in api["breakdowns"]["unit"] if ln[n]}
        bars = _bars(page, f"#c-{chart}")
        assert {b["unit"] for b in bars} == set(lines), (side, bars, lines)
        for b in bars:
            ln = lines[b["unit"]]
            assert (int(b["total"]), int(b["done"])) == (ln[n], ln[d]), (side, b, ln)
            assert float(b["rate"]) == pytest.approx(ln[rate], abs=0.01)
            assert b["label"] == f"{ln[rate]:.1f}".replace(".", ",") + f" % ({ln[d]}/{ln[n]})"
        rates = [float(b["rate"]) for b in bars]
        assert rates == sorted(rates, reverse=True), "bars sorted by rate, highest first"
        rows = _table(page, f"#t-{chart}")
        assert len(rows) == len(lines)
        for row, b in zip(rows, bars, strict=True):
            ln = lines[b["unit"]]
            assert (_num(row[1]), _num(row[2])) == (ln[n], ln[d]) and _num(row[3]) == pytest.approx(ln[rate], abs=0.05)
            assert _num(row[4]) == ln[n] - ln[d]
    months = {ln["key"]: ln for ln in api["breakdowns"]["month"]}
    for row in _table(page, "#t-trend"):
        mm, yyyy = row[0].split("/")
        ln = months.get(f"{yyyy}-{mm}")
        got = [_num(row[i]) for i in (1, 2, 4, 5)]
        assert got == ([ln["received"], ln["received_digitized"], ln["resolved"], ln["resolved_digitized"]]
                       if ln else [0, 0, 0, 0]), (row, ln)  # fmt: skip
    return api  # type: ignore[no-any-return]


def test_manager_report_drilldown_download_and_registry_import(site: Site, browser: Any, shots: Any) -> None:
    page = _new_page(browser)
    shot = shots(page)
    sign_in(page, site.url, "quanly.a", PASSWORD)
    page.goto(f"{site.url}/reports")
    assert_accessible(page, "report, default period")
    shot("report-default-period")

    # the period picker: quarter III of 2026 (only the quarter's fields are shown)
    page.select_option("#kind", "quarter")
    assert page.is_hidden("#month") and page.is_hidden("#date_from") and page.is_visible("#quarter")
    page.select_option("#year", "2026")
    page.select_option("#quarter", "3")
    with page.expect_navigation():
        page.click("#report-form button[type=submit]")
    assert "Quý 3 năm 2026 (01/07/2026 – 30/09/2026)" in page.inner_text("#period-summary")
    api = _check_report_against_api(page, site, "period=quarter:2026-Q3&rule=any")
    assert api["total"]["received"] == 4 and api["total"]["received_digitized"] == 1  # A's dossiers only
    assert page.inner_text("#rate-input") == "25,0 %" and page.inner_text("#rate-output") == "50,0 %"
    assert page.locator("#c-unit-input .target").count() == 1
    assert page.get_attribute("#c-unit-input", "role") == "img"
    assert "chỉ tiêu 90 %" in page.text_content("#c-unit-input title")
    assert page.locator("#c-trend polyline.trend").count() >= 1 and page.locator("#c-trend circle.pt-in").count() == 3
    assert "UBND xã B" not in page.inner_text("main")
    assert_accessible(page, "report Q3")
    _no_sideways_scroll(page, 1366)
    shot("report-quarter-3")

    # the XLSX and the CSV are the API's export of the same parameters
    with page.expect_download() as dl:
        page.click("#dl-xlsx")
    xlsx = site.files / "bao-cao.xlsx"
    dl.value.save_as(xlsx)
    ws = openpyxl.load_workbook(xlsx)["Tổng"]
    header = [c.value for c in ws[3]]
    values = [c.value for c in ws[4]]
    assert values[header.index("Số hồ sơ tiếp nhận")] == 4 and values[header.index("Số hồ sơ đã giải quyết")] == 2
    assert "quarter:2026-Q3" in str(ws["A1"].value)
    href = page.get_attribute("#dl-csv", "href")
    rows = list(csv.reader(io.StringIO(page.request.get(site.url + href).text().lstrip("\ufeff"))))
    assert ["A", "4", "1", "25.0", "2", "1", "50.0"] in rows, rows

    # a click on A's bar opens the undigitized dossiers of A, with what each one misses
    with page.expect_navigation():
        page.click("#c-unit-input [data-unit='A'] rect")
    assert "/reports/undigitized?" in page.url and "unit=A" in page.url
    table = {r[0]: r for r in _table(page, "#undigitized")}
    assert set(table) == {A2, A3, A4}, table
    assert "Tờ khai" in table[A2][6] and "Đơn đề nghị" in table[A3][6]
    assert "chưa có thành phần hồ sơ nào được số hóa" in table[A4][6]
    assert table[A2][4] == "20/07/2026" and table[A2][5] == "05/08/2026"
    same = page.request.get(f"{site.url}/reports/digitization/undigitized?period=quarter:2026-Q3&side=input").json()
    assert {d["code"] for d in same["dossiers"]} == set(table)
    assert_accessible(page, "drill-down input")
    shot("drill-down-input")

    # rule "required": A1 now counts as undigitized, missing its land-use certificate; reached by keyboard
    page.go_back()
    page.select_option("#rule", "required")
    with page.expect_navigation():
        page.click("#report-form button[type=submit]")
    _check_report_against_api(page, site, "period=quarter:2026-Q3&rule=required")
    assert page.inner_text("#count-input") == "0 / 4"
    page.focus("#t-unit-input tbody a")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    table = {r[0]: r for r in _table(page, "#undigitized")}
    assert set(table) == {A1, A2, A3, A4} and GCN in table[A1][6] and "Đơn đề nghị" not in table[A1][6]
    assert "đã có một phần" in table[A1][6]
    shot("drill-down-required")

    # the output side: A3 was resolved without a digitized result
    with page.expect_navigation():
        page.click("text=Xem hồ sơ chưa số hóa kết quả")
    assert [r[0] for r in _table(page, "#undigitized")] == [A3]
    assert_accessible(page, "drill-down output")
    shot("drill-down-output")

    # a date range across July and August, then the phone width
    page.goto(f"{site.url}/reports?kind=range&date_from=2026-07-01&date_to=2026-08-31")
    assert page.is_visible("#date_from") and page.is_hidden("#quarter")
    _check_report_against_api(page, site, "date_from=2026-07-01&date_to=2026-08-31&rule=any")
    assert [r[0] for r in _table(page, "#t-trend")] == ["07/2026", "08/2026"]
    shot("report-date-range")
    r = page.goto(f"{site.url}/reports?kind=range&date_from=2026-09-01&date_to=2026-07-01")
    assert r.status == 422 and "ngày kết thúc trước ngày bắt đầu" in page.inner_text(".flash.bad")
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{site.url}/reports?period=quarter:2026-Q3")
    _no_sideways_scroll(page, 360)
    assert_accessible(page, "report at 360 px")
    shot("report-360px")
    page.set_viewport_size({"width": 1366, "height": 768})

    # registry import: one bad row is reported with its line number, the rest imports
    bad = site.files / "so-dang-ky-thang-10.csv"
    bad.write_text(
        "MaHoSo,MaTTHC,TenLinhVuc,NgayTiepNhan,DonViXuLy\n"
        f"{A5},1.001,Đất đai,01/10/2026,A\n000.00.06.H56-261002-0106,1.001,Đất đai,31/02/2026,A\n",
        encoding="utf-8",
    )
    page.goto(f"{site.url}/registry")
    assert_accessible(page, "registry form")
    shot("registry-form")
    page.set_input_files("#file", str(bad))
    with page.expect_navigation():
        page.click("#registry-form button[type=submit]")
    assert page.inner_text("#n-inserted") == "1" and page.inner_text("#n-errors") == "1"
    errors = _table(page, "#errors")
    assert len(errors) == 1 and errors[0][0] == "3" and "ngày không có trong tháng" in errors[0][1], errors
    assert "1 dòng lỗi" in page.inner_text(".flash")
    assert_accessible(page, "registry result")
    shot("registry-imported-with-a-bad-row")
    q4 = page.request.get(f"{site.url}/reports/digitization?period=quarter:2026-Q4").json()
    assert q4["total"]["received"] == 1  # A5 arrived; the bad row did not
    page.context.close()


def test_manager_of_another_unit_sees_none_of_it(site: Site, browser: Any, shots: Any) -> None:
    page = _new_page(browser)
    shot = shots(page)
    sign_in(page, site.url, "quanly.b", PASSWORD)
    page.goto(f"{site.url}/reports?period=quarter:2026-Q3")
    api = _check_report_against_api(page, site, "period=quarter:2026-Q3&rule=any")
    assert api["total"]["received"] == 2 and {ln["key"] for ln in api["breakdowns"]["unit"]} == {"B"}
    main = page.inner_text("main")
    assert "UBND xã A" not in main and "(A)" not in main
    assert page.inner_text("#count-input") == "1 / 2"
    assert_accessible(page, "report of B")
    shot("report-of-unit-b")
    # asking for A's drill-down by hand gives nothing (no error that would say A exists)
    r = page.goto(f"{site.url}/reports/undigitized?period=quarter:2026-Q3&side=input&unit=A")
    assert r.status == 200 and _table(page, "#undigitized") == [["Không có hồ sơ nào chưa số hóa."]]
    page.goto(f"{site.url}/reports/undigitized?period=year:2026&side=input")
    codes = {row[0] for row in _table(page, "#undigitized")}
    assert codes == {B2}, codes
    shot("drill-down-of-unit-b")
    assert page.goto(f"{site.url}/admin/users").status == 403
    assert page.goto(f"{site.url}/audit-log").status == 403
    page.context.close()


def test_province_manager_sees_every_commune_ranked(site: Site, browser: Any, shots: Any) -> None:
    page = _new_page(browser)
    shot = shots(page)
    sign_in(page, site.url, "quanly.tinh", PASSWORD)
    page.goto(f"{site.url}/reports?period=quarter:2026-Q3&target=40")
    api = _check_report_against_api(page, site, "period=quarter:2026-Q3&rule=any")
    assert [b["unit"] for b in _bars(page, "#c-unit-input")] == ["B", "A"]  # 50 % above 25 %
    assert {ln["key"] for ln in api["breakdowns"]["unit"]} == {"A", "B"}
    low = page.eval_on_selector_all("#c-unit-input rect.bar", "rs => rs.map(r => r.classList.contains('low'))")
    assert low == [False, True]  # B reaches the 40 % target, A does not
    assert "chỉ tiêu 40 %" in page.inner_text("#h-unit-input ~ .chartbox .legend")
    assert_accessible(page, "province report")
    shot("province-report-target-40")
    page.context.close()


def test_admin_manages_users_tokens_units_and_the_auditor_sees_it(site: Site, browser: Any, shots: Any) -> None:
    page = _new_page(browser)
    shot = shots(page)
    sign_in(page, site.url, "quantri", PASSWORD)
    page.goto(f"{site.url}/admin/users")
    assert_accessible(page, "users")
    shot("users")

    page.set_viewport_size({"width": 360, "height": 740})
    page.reload()
    _no_sideways_scroll(page, 360)
    assert_accessible(page, "users at 360 px")
    shot("users-360px")
    page.set_viewport_size({"width": 1366, "height": 768})

    # a weak typed password is refused with the strength rule's message, the form keeps what was typed
    page.fill("#new-username", "yeu.mk")
    page.check("#new-role-staff")
    page.get_by_label("UBND xã A").check()
    page.check("#pw-typed")
    page.fill("#new-password", "abc12345")
    with page.expect_navigation():
        page.click("#add-user button[type=submit]")
    assert "ít nhất 10 ký tự" in page.inner_text(".flash.bad")
    assert page.input_value("#new-username") == "yeu.mk" and page.is_checked("#new-role-staff")
    shot("user-weak-password-refused")

    # a new clerk with a generated password, shown once
    page.goto(f"{site.url}/admin/users")
    page.fill("#new-username", "lan.nguyen")
    page.fill("#new-display", "Nguyễn Thị Lan")
    page.check("#new-role-clerk")
    page.get_by_label("UBND xã A").check()
    with page.expect_navigation():
        page.click("#add-user button[type=submit]")
    password = page.inner_text("#shown-password").strip()
    assert len(password) >= 10 and "Đã tạo tài khoản lan.nguyen" in page.inner_text(".flash")
    assert_accessible(page, "user created")
    shot("user-created-password-shown-once")
    page.goto(f"{site.url}/admin/users")
    assert password not in page.content() and page.locator("#shown-password").count() == 0
    row = page.inner_text("tr[data-user='lan.nguyen']")
    assert "Nguyễn Thị Lan" in row and "UBND xã A (A)" in row and "đang hoạt động" in row and "chưa đăng nhập" in row

    # she signs in with it; then the administrator disables the account and her session ends at once
    lan = _new_page(browser)
    sign_in(lan, site.url, "lan.nguyen", password)
    assert "/login" not in lan.url
    with page.expect_navigation():
        page.get_by_role("button", name="Vô hiệu hóa lan.nguyen").click()
    assert "Đã vô hiệu hóa tài khoản lan.nguyen" in page.inner_text(".flash")
    assert "đã vô hiệu hóa" in page.inner_text("tr[data-user='lan.nguyen']")
    assert page.locator("tr[data-user='lan.nguyen'] td").nth(4).inner_text() != "chưa đăng nhập"
    shot("user-disabled")
    lan.goto(f"{site.url}/queue")
    assert "/login" in lan.url
    lan.context.close()

    # an API token: secret shown once, works, then revoked and refused at once
    page.goto(f"{site.url}/admin/tokens")
    assert_accessible(page, "tokens")
    page.fill("#token-name", "máy quét 2 — một cửa xã A")
    page.check("#tok-role-clerk")
    page.get_by_label("UBND xã A").check()
    with page.expect_navigation():
        page.click("#add-token button[type=submit]")
    secret = page.inner_text("#shown-token").strip()
    token_id = secret.split("_")[1]
    assert_accessible(page, "token created")
    shot("token-created-secret-shown-once")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{site.url}/documents", headers=bearer).status_code == 200
    page.goto(f"{site.url}/admin/tokens")
    assert secret not in page.content()
    assert "đang hiệu lực" in page.inner_text(f"tr[data-token='{token_id}']")
    with page.expect_navigation():
        page.get_by_role("button", name=f"Thu hồi mã {token_id}").click()
    assert f"Đã thu hồi mã truy cập {token_id}" in page.inner_text(".flash")
    assert "đã thu hồi" in page.inner_text(f"tr[data-token='{token_id}']")
    assert httpx.get(f"{site.url}/documents", headers=bearer).status_code == 401
    shot("token-revoked")

    # the unit tree, and a new commune imported from CSV
    page.goto(f"{site.url}/admin/units")
    assert page.locator("#unit-tree > li > ul > li").count() == 2
    assert_accessible(page, "units")
    units_csv = site.files / "don-vi.csv"
    units_csv.write_text("code,name,parent\nT,UBND tỉnh Thử,\nA,UBND xã A,T\nB,UBND xã B,T\nC,UBND xã C,T\n",
                         encoding="utf-8")  # fmt: skip
    page.set_input_files("#units-file", str(units_csv))
    with page.expect_navigation():
        page.click("#units-form button[type=submit]")
    assert "Đã nhập cây đơn vị: 4 đơn vị" in page.inner_text(".flash")
    assert "UBND xã C" in page.inner_text("#unit-tree")
    shot("units-imported")
    page.context.close()

    # the auditor filters the log by the administrator and sees each of those acts, newest first
    page = _new_page(browser)
    shot.page = page  # the same folder and numbering as the administrator's steps
    sign_in(page, site.url, "kiemtra", PASSWORD)
    page.goto(f"{site.url}/audit-log")
    assert_accessible(page, "audit log")
    page.fill("#f-user", "quantri")
    with page.expect_navigation():
        page.click("#audit-filter button[type=submit]")
    rows = _table(page, "#events")
    acts = [(r[3].split()[0], r[4]) for r in rows]
    for act in (("user.create", "lan.nguyen"), ("user.update", "lan.nguyen"), ("token.create", token_id),
                ("token.revoke", token_id), ("unit.import", ""), ("user.create", "yeu.mk")):  # fmt: skip
        assert act in acts, (act, acts)
    assert all(r[1] == "quantri" for r in rows) and all(r[2] for r in rows)  # actor and address of each
    assert acts.index(("token.revoke", token_id)) < acts.index(("token.create", token_id))  # newest first
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", rows[0][0]), rows[0][0]
    failed = [r for r in rows if r[3].startswith("user.create") and r[4] == "yeu.mk"]
    assert "không thành công" in failed[0][6]
    assert_accessible(page, "audit log filtered")
    shot("audit-log-by-admin")
    page.fill("#f-action", "token.*")
    with page.expect_navigation():
        page.click("#audit-filter button[type=submit]")
    assert {r[3].split()[0] for r in _table(page, "#events")} == {"token.create", "token.revoke", "token.list"}
    shot("audit-log-token-actions")
    page.set_viewport_size({"width": 360, "height": 740})
    page.reload()
    _no_sideways_scroll(page, 360)
    shot("audit-log-360px")
    page.context.close()
