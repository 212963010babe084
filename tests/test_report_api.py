"""The manager's path on the embedded default: import a registry, see Q3 by unit and field, export XLSX,
list undigitized and unregistered dossiers, export in the portal's field names."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
from fastapi.testclient import TestClient

from api import create_app
from sohoa.settings import Settings

import fixtures
from deploy import authorize, wait_for

CSV = """MaHoSo,MaTTHC,TenLinhVuc,KenhThucHien,NgayTiepNhan,NgayCoKetQua,DonViXuLy,ThanhPhanBatBuoc,KhongCoKetQua
000.00.06.H56-260701-0001,1.001,Đất đai,1,01/07/2026,15/07/2026,UBND xã A,Đơn đề nghị,0
000.00.06.H56-260702-0002,1.002,Hộ tịch,2,02/07/2026,03/07/2026,UBND xã A,,1
000.00.06.H56-260930-0003,1.001,Đất đai,3,30/09/2026,01/10/2026,UBND xã B,Đơn đề nghị,0
000.00.06.H56-261001-0004,1.001,Đất đai,1,01/10/2026,,UBND xã B,,0
"""


def test_manager_flow(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as c:
        authorize(c, settings)
        r = c.post("/documents", data={"dossier_code": "000.00.06.H56-260701-0001", "kind": "input",
                                       "component": "Đơn đề nghị"},
                   files=[("files", ("don.png", fixtures.png_scan(), "image/png"))])  # fmt: skip
        doc = r.json()["documents"][0]["id"]
        wait_for(lambda: c.get(f"/documents/{doc}").json()["status"] == "done", 120, what="scan done")
        assert c.get("/reports/unregistered").json()["dossier_codes"] == ["000.00.06.H56-260701-0001"]

        r = c.post("/registry/import", files={"file": ("so-dang-ky.csv", CSV.encode("utf-8-sig"), "text/csv")})
        assert r.status_code == 200 and r.json()["inserted"] == 4, r.text
        assert c.get("/reports/unregistered").json()["count"] == 0  # the scan is now linked

        strict = c.get("/reports/digitization", params={"period": "quarter:2026-Q3", "min_confidence": 100}).json()
        assert strict["total"]["received_digitized"] == 0  # a report parameter: nothing stored changes
        rep = c.get("/reports/digitization", params={"period": "quarter:2026-Q3"}).json()
        assert rep["rule"] == "any"
        assert rep["total"]["received"] == 3 and rep["total"]["received_digitized"] == 1
        assert rep["total"]["resolved"] == 2 and rep["total"]["resolved_digitized"] == 1  # no-result procedure
        units = {ln["key"]: ln for ln in rep["breakdowns"]["unit"]}
        assert units["UBND xã A"]["input_rate"] == 50.0 and units["UBND xã B"]["input_rate"] == 0.0
        fields = {ln["key"]: ln["received"] for ln in rep["breakdowns"]["field"]}
        assert fields == {"Đất đai": 2, "Hộ tịch": 1}

        r = c.get("/reports/digitization", params={"period": "quarter:2026-Q3", "format": "xlsx"})
        wb = openpyxl.load_workbook(io.BytesIO(r.content))
        assert "Đơn vị" in wb.sheetnames
        assert [c.value for c in wb["Đơn vị"][3]][:3] == [
            "Đơn vị",
            "Số hồ sơ tiếp nhận",
            "Số hồ sơ có thành phần số hóa",
        ]
        csv_text = c.get("/reports/digitization", params={"period": "quarter:2026-Q3", "format": "csv",
                                                          "by": "field"}).text  # fmt: skip
        assert "Lĩnh vực" in csv_text and "Đất đai" in csv_text

        und = c.get("/reports/digitization/undigitized", params={"period": "quarter:2026-Q3"}).json()
        assert [d["code"] for d in und["dossiers"]] == ["000.00.06.H56-260702-0002", "000.00.06.H56-260930-0003"]
        assert c.get("/reports/digitization", params={"period": "quarter:2026-Q5"}).status_code == 422

        portal = c.get("/exports/portal").json()["dossiers"]
        first = next(d for d in portal if d["MaHoSo"] == "000.00.06.H56-260701-0001")
        assert first["HoSoCoThanhPhanSoHoa"] == 1
        assert first["ThanhPhanHoSo"][0]["DuocSoHoa"] == 1
        assert first["ThanhPhanHoSo"][0]["DuongDanTep"].endswith("/out/document.pdf")

        r = c.post(
            "/dossiers",
            json=[
                {"MaHoSo": "bad code", "NgayTiepNhan": "01/07/2026"},
                {"MaHoSo": "000.00.06.H56-260703-0005", "NgayTiepNhan": "03/07/2026"},
            ],
        )
        assert r.json()["inserted"] == 1 and r.json()["errors"][0]["line"] == 1
        d = c.get("/dossiers/000.00.06.H56-260701-0001").json()
        assert d["registered"] and d["input_digitized"] and d["required_components_digitized"]
