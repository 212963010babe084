"""sohoa.pdfa: the archival PDF/A-2b, checked structurally (no validator installs from the registries here),
its text layer scored with pdftotext against the ground truth, its images and its streaming."""

from __future__ import annotations

import io
import re
import subprocess
import time
import unicodedata
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageCms
from rapidfuzz.distance import Levenshtein

from ocr import process_page
from ocr.pdf import archive_page
from ocr.pipeline import PageResult
from ocr.textlayer import Word
from sohoa.pdfa import ArchiveMeta, ArchiveWriter, EncodeSettings, PageImage, encode_page, glyphless_font

DATA = Path(__file__).parent / "data" / "ocr"
VN = timezone(timedelta(hours=7))
META = ArchiveMeta(
    title="Quyết định số 12/QĐ-UBND về việc cấp phép",
    dossier_code="000.00.01.H01-261130-0001",
    kind="quyet-dinh",
    component="Quyết định & phụ lục <1>",
    doc_id="d-42",
    created=datetime(2026, 11, 30, 9, 15, 0, tzinfo=VN),
    author="UBND xã Đông Hòa",
)
NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "sohoa": "https://github.com/sohoa/sohoa/ns/archive/1.0/",
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
}


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", s)).strip()


def cer(text: str, gt: str) -> float:
    return 100 * Levenshtein.distance(norm(text), gt) / len(gt)


def pdftotext(path: Path, *args: str) -> str:
    return subprocess.run(["pdftotext", *args, str(path), "-"], capture_output=True, text=True, check=True).stdout


def text_page(size: tuple[int, int] = (1240, 1754)) -> np.ndarray:
    """A clean bitonal page (black text on white), 150 dpi A4."""
    w, h = size
    page = np.full((h, w), 255, np.uint8)
    for k in range(30):
        cv2.putText(
            page, f"Dong {k}: van ban hanh chinh so {k * 7}", (80, 120 + 50 * k), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2
        )
    return page


def photo_page(size: tuple[int, int] = (600, 800)) -> np.ndarray:
    """A gray page with smooth shading and noise: no bitonal encoding can keep it."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
    rng = np.random.default_rng(1)
    return np.clip(base + rng.normal(0, 8, (h, w)), 0, 255).astype(np.uint8)


def write(path: Path, pages: list[tuple[PageImage, list[Word], tuple[int, int]]], meta: ArchiveMeta = META) -> Path:
    with ArchiveWriter(path, meta) as w:
        for image, words, frame in pages:
            w.add_page(image, words, frame, (frame[0] * 72 / 150, frame[1] * 72 / 150))
    return path


WORDS = [
    Word("QUYẾT", (100, 100, 300, 140), 0),
    Word("ĐỊNH", (320, 100, 480, 140), 0),
    Word("Số:", (100, 200, 160, 240), 1),
    Word("12/QĐ-UBND", (180, 200, 480, 240), 1),
    Word("Điều", (100, 300, 200, 340), 2),
    Word("1.", (215, 300, 250, 340), 2),
    Word("Đồng", (265, 300, 370, 340), 2),
    Word("ý", (385, 300, 410, 340), 2),
]


@pytest.fixture(scope="module")
def small_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("pdfa")
    page = text_page()
    frame = (page.shape[1], page.shape[0])
    return write(tmp / "a.pdf", [(encode_page(page), WORDS, frame), (encode_page(photo_page()), WORDS[:2], frame)])


# --- PDF/A-2b, structurally ------------------------------------------------------------------------


def test_header_trailer_id_no_encryption(small_pdf: Path) -> None:
    raw = small_pdf.read_bytes()
    assert raw.startswith(b"%PDF-1.7\n%") and all(b > 127 for b in raw[10:14])
    assert raw.rstrip().endswith(b"%%EOF")
    with pikepdf.open(small_pdf) as pdf:
        assert not pdf.is_encrypted
        assert "/Encrypt" not in pdf.trailer
        ids = pdf.trailer.ID
        assert len(ids) == 2 and len(bytes(ids[0])) == 16 and bytes(ids[0]) == bytes(ids[1])
        assert pdf.check_pdf_syntax() == []  # qpdf's own structure check: xref offsets, stream lengths
        assert len(pdf.pages) == 2


def test_xmp_pdfa_identification_and_sohoa_fields(small_pdf: Path) -> None:
    with pikepdf.open(small_pdf) as pdf:
        stream = pdf.Root.Metadata
        assert "/Filter" not in stream  # PDF/A: the metadata stream is not compressed
        assert stream.Type == "/Metadata" and stream.Subtype == "/XML"
        xmp = stream.read_bytes()
        info = pdf.docinfo
        title = str(info.Title)
        producer, created = str(info.Producer), str(info.CreationDate)
        author = str(info.Author)
    assert xmp.startswith(b"<?xpacket begin=") and xmp.rstrip().endswith(b'<?xpacket end="w"?>')
    root = ET.fromstring(xmp.decode("utf-8").split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    desc = root.find("rdf:RDF/rdf:Description", NS)
    assert desc is not None
    assert desc.findtext("pdfaid:part", namespaces=NS) == "2"
    assert desc.findtext("pdfaid:conformance", namespaces=NS) == "B"
    assert desc.findtext("dc:title/rdf:Alt/rdf:li", namespaces=NS) == META.title
    assert desc.findtext("dc:creator/rdf:Seq/rdf:li", namespaces=NS) == META.author
    assert desc.findtext("sohoa:DossierCode", namespaces=NS) == META.dossier_code
    assert desc.findtext("sohoa:Kind", namespaces=NS) == META.kind
    assert desc.findtext("sohoa:Component", namespaces=NS) == META.component  # escaped, read back
    assert desc.findtext("sohoa:DocumentId", namespaces=NS) == META.doc_id
    # every sohoa property is described by the PDF/A extension schema (required for custom properties)
    schema = desc.find("pdfaExtension:schemas/rdf:Bag/rdf:li", NS)
    assert schema is not None
    assert schema.findtext("pdfaSchema:namespaceURI", namespaces=NS) == NS["sohoa"]
    assert schema.findtext("pdfaSchema:prefix", namespaces=NS) == "sohoa"
    described = {e.text for e in schema.iterfind("pdfaSchema:property/rdf:Seq/rdf:li/pdfaProperty:name", NS)}
    used = {el.tag.split("}")[1] for el in desc if el.tag.startswith("{" + NS["sohoa"])}
    assert used == described == {"DossierCode", "Kind", "Component", "DocumentId"}
    # the document information dictionary says the same as the XMP
    assert title == META.title and author == META.author
    assert producer == desc.findtext("pdf:Producer", namespaces=NS)
    assert created == "D:20261130091500+07'00'"
    assert desc.findtext("xmp:CreateDate", namespaces=NS) == "2026-11-30T09:15:00+07:00"


def test_srgb_output_intent(small_pdf: Path) -> None:
    with pikepdf.open(small_pdf) as pdf:
        intents = pdf.Root.OutputIntents
        assert len(intents) == 1
        oi = intents[0]
        assert oi.S == "/GTS_PDFA1" and str(oi.OutputConditionIdentifier)
        icc = oi.DestOutputProfile
        assert int(icc.N) == 3
        data = icc.read_bytes()
    profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
    assert data[16:20] == b"RGB " and data[12:16] == b"mntr"
    assert "sRGB" in ImageCms.getProfileDescription(profile)


def test_fonts_embedded_with_tounicode_and_no_transparency(small_pdf: Path) -> None:
    with pikepdf.open(small_pdf) as pdf:
        for page in pdf.pages:
            assert "/Group" not in page.obj
            fonts = page.Resources.Font
            assert len(fonts.keys()) == 1
            for _, font in fonts.items():
                assert font.Subtype == "/Type0" and font.Encoding == "/Identity-H"
                assert "/ToUnicode" in font
                cid = font.DescendantFonts[0]
                assert cid.Subtype == "/CIDFontType2" and "/CIDToGIDMap" in cid
                program = cid.FontDescriptor.FontFile2.read_bytes()
                assert program == glyphless_font()
                gids = np.frombuffer(cid.CIDToGIDMap.read_bytes(), ">u2")
                assert len(gids) == 65536 and set(gids.tolist()) == {1}  # never .notdef
            for _, xobj in page.Resources.XObject.items():
                assert xobj.Subtype == "/Image"
                assert "/SMask" not in xobj and "/Mask" not in xobj
                assert not bool(xobj.get("/Interpolate", False))
                assert xobj.ColorSpace in ("/DeviceGray", "/DeviceRGB")
    # the font program itself: empty glyphs, as wide as the font dictionary says
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(glyphless_font()))
    assert font["head"].unitsPerEm == 1000
    assert font["head"].created == font["head"].modified == 3_847_392_000  # same bytes on every run
    assert {name: font["hmtx"][name][0] for name in font.getGlyphOrder()} == {".notdef": 500, "blank": 500}


def test_text_extracts_as_exact_unicode(small_pdf: Path) -> None:
    text = pdftotext(small_pdf, "-f", "1", "-l", "1")
    assert norm(text) == "QUYẾT ĐỊNH Số: 12/QĐ-UBND Điều 1. Đồng ý"
    assert "Ð" not in text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines[:3] == ["QUYẾT ĐỊNH", "Số: 12/QĐ-UBND", "Điều 1. Đồng ý"]  # one line per line


def test_text_is_invisible_and_image_drawn(small_pdf: Path, tmp_path: Path) -> None:
    subprocess.run(
        ["pdftoppm", "-r", "150", "-gray", "-f", "1", "-l", "1", "-singlefile", str(small_pdf), str(tmp_path / "p")],
        check=True,
    )
    shown = np.asarray(Image.open(tmp_path / "p.pgm"))
    page = text_page()
    assert shown.shape == page.shape
    # the render is the page (not inverted, not missing; edges may move by a pixel), the words add nothing
    assert np.mean(np.abs(shown.astype(int) - page.astype(int)) > 128) < 0.01


# --- the text layer of real pages ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ocr_pages() -> dict[str, PageResult]:
    return {
        n: process_page(Image.open(DATA / n), 300)
        for n in ("anle_552022AL_p05.png", "scan_kk_New_54.2014.QH13_p02.jpg")
    }


@pytest.mark.parametrize("name", ["anle_552022AL_p05.png", "scan_kk_New_54.2014.QH13_p02.jpg"])
def test_pdftotext_cer_equals_corrected_text_cer(name: str, ocr_pages: dict[str, PageResult], tmp_path: Path) -> None:
    res = ocr_pages[name]
    gt = norm((DATA / name).with_suffix(".txt").read_text(encoding="utf-8"))
    out = tmp_path / "doc.pdf"
    with ArchiveWriter(out, META) as w:
        archive_page(w, res, budget=int(1.2 * (DATA / name).stat().st_size))
    text = pdftotext(out)
    assert abs(cer(text, gt) - cer(res.text, gt)) <= 0.1, (cer(text, gt), cer(res.text, gt))
    assert out.stat().st_size <= 1.2 * (DATA / name).stat().st_size


def test_search_finds_qd(ocr_pages: dict[str, PageResult], tmp_path: Path) -> None:
    res = ocr_pages["anle_552022AL_p05.png"]
    assert "QĐ" in res.text
    out = tmp_path / "doc.pdf"
    with ArchiveWriter(out, META) as w:
        archive_page(w, res)
    text = pdftotext(out)
    assert "QĐ" in text and "Ð" not in text
    # as a viewer's Ctrl+F sees it: pikepdf/qpdf walk of the content gives the same codes
    assert text.count("QĐ") == res.text.count("QĐ")


# --- image encodings -------------------------------------------------------------------------------


def test_bitonal_page_is_ccitt_and_small() -> None:
    page = text_page()
    img = encode_page(page)
    assert img.kind == "ccitt-g4" and img.bpc == 1 and img.filter == "CCITTFaxDecode"
    assert img.encoded is not None and len(img.encoded) < 0.2 * len(cv2.imencode(".png", page)[1])


def test_photo_page_is_jpeg_and_budget_lowers_quality() -> None:
    page = photo_page()
    img = encode_page(page)
    assert img.kind == "jpeg-gray-q75" and img.filter == "DCTDecode"
    assert img.encoded is not None
    small = encode_page(page, budget=len(img.encoded) // 2, settings=EncodeSettings(jpx_fallback=False))
    assert small.kind.startswith("jpeg-gray-q") and small.kind != "jpeg-gray-q75"
    assert small.encoded is not None and len(small.encoded) < len(img.encoded)


def test_over_budget_page_is_jpeg2000_at_the_budget(tmp_path: Path) -> None:
    page = photo_page()
    q75 = encode_page(page).encoded
    assert q75 is not None
    budget = len(q75) // 2
    img = encode_page(page, budget=budget)
    assert img.kind == "jpx" and img.filter == "JPXDecode"
    assert img.encoded is not None and 0.8 * budget <= len(img.encoded) <= budget
    out = write(tmp_path / "j.pdf", [(img, [], (600, 800))])
    subprocess.run(["pdftoppm", "-r", "150", "-gray", "-singlefile", str(out), str(tmp_path / "j")], check=True)
    shown = np.asarray(Image.open(tmp_path / "j.pgm")).astype(float)
    assert shown.shape == page.shape
    assert cv2.PSNR(shown, page.astype(float)) > 25  # decoded and drawn, not blank


def test_lossless_when_it_fits_the_budget() -> None:
    page = np.full((400, 300), 255, np.uint8)
    page[:, ::7] = 128  # flat gray stripes: mid-gray (not bitonal), tiny as Flate, large as JPEG
    img = encode_page(page, budget=2000)
    assert img.kind == "flate-gray" and img.decode_parms["Predictor"] == 15


def test_lossless_tried_on_the_whole_page_only_when_a_band_sample_says_it_may_fit(monkeypatch: Any) -> None:
    import sohoa.pdfa as pdfa

    rows: list[int] = []
    real = pdfa._png_idat

    def counted(gray: np.ndarray) -> bytes:
        rows.append(gray.shape[0])
        return real(gray)

    monkeypatch.setattr(pdfa, "_png_idat", counted)
    noisy = photo_page((700, 1200))  # a scan's grain: lossless is several times the JPEG
    img = encode_page(
        noisy, budget=len(encode_page(noisy).encoded or b"") // 2, settings=EncodeSettings(jpx_fallback=False)
    )
    assert img.kind.startswith("jpeg-gray") and rows == [128]  # the two bands of 64 rows, not the 1200
    rows.clear()
    stripes = np.full((1200, 700), 255, np.uint8)
    stripes[:, ::7] = 128  # flat: tiny as Flate, so the probe lets the whole page be compressed
    img = encode_page(stripes, budget=4000)
    assert img.kind == "flate-gray" and rows == [128, 1200]


def test_colour_page_kept_colour_gray_colour_made_gray() -> None:
    colour = np.zeros((200, 300, 3), np.uint8)
    colour[:, :, 2] = 200  # red
    assert encode_page(colour).colour_space == "DeviceRGB"
    gray3 = cv2.cvtColor(photo_page((300, 200)), cv2.COLOR_GRAY2BGR)
    assert encode_page(gray3).colour_space == "DeviceGray"


def test_original_jpeg_kept_and_cmyk_refused(tmp_path: Path) -> None:
    data = (DATA / "scan_kk_New_54.2014.QH13_p02.jpg").read_bytes()
    original = PageImage.from_jpeg(data)
    img = encode_page(np.zeros((10, 10), np.uint8), original)
    assert img is original and img.encoded == data and img.kind == "original-jpeg"
    out = write(tmp_path / "o.pdf", [(img, WORDS, (img.width, img.height))])
    with pikepdf.open(out) as pdf:
        (_, xobj), *_ = pdf.pages[0].Resources.XObject.items()
        assert xobj.read_raw_bytes() == data  # the scan's bytes, not re-encoded
    buf = io.BytesIO()
    Image.new("CMYK", (20, 20)).save(buf, "JPEG")
    with pytest.raises(ValueError, match="CMYK"):
        PageImage.from_jpeg(buf.getvalue())


# --- streaming -------------------------------------------------------------------------------------


def test_pages_written_as_they_come_and_published_on_close(tmp_path: Path) -> None:
    out = tmp_path / "s.pdf"
    img = encode_page(photo_page())
    assert img.encoded is not None
    w = ArchiveWriter(out, META)
    part = tmp_path / "s.pdf.part"
    sizes = []
    for _ in range(3):
        w.add_page(img, WORDS, (600, 800), (288.0, 384.0))
        sizes.append(part.stat().st_size)
    assert not out.exists()
    assert sizes[1] - sizes[0] >= len(img.encoded) and sizes[2] - sizes[1] >= len(img.encoded)  # on disk already
    w.close()
    assert out.exists() and not part.exists()
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 3


def test_failure_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "f.pdf"
    with pytest.raises(RuntimeError), ArchiveWriter(out, META) as w:
        w.add_page(encode_page(photo_page()), [], (600, 800), (288.0, 384.0))
        raise RuntimeError("worker failed")
    assert not out.exists() and not (tmp_path / "f.pdf.part").exists()


def test_naive_created_is_utc(tmp_path: Path) -> None:
    meta = ArchiveMeta("t", "c", "k", "p", "d", datetime(2026, 1, 2, 3, 4, 5))
    out = write(tmp_path / "n.pdf", [(encode_page(photo_page()), [], (600, 800))], meta)
    with pikepdf.open(out) as pdf:
        assert str(pdf.docinfo.CreationDate) == "D:20260102030405+00'00'"
        assert pdf.open_metadata()["xmp:CreateDate"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat()


def test_pages_added_out_of_order_are_ordered_by_index(tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    img = encode_page(photo_page())
    with ArchiveWriter(out, META) as w:
        for k in (2, 0, 1):  # as parallel page jobs finish
            w.add_page(img, [Word(f"trang{k}", (50, 50, 300, 100), 0)], (600, 800), (288.0, 384.0), index=k)
    pages = pdftotext(out).split("\f")
    assert [norm(p) for p in pages[:3]] == ["trang0", "trang1", "trang2"]


def test_missing_or_repeated_page_refused(tmp_path: Path) -> None:
    out = tmp_path / "m.pdf"
    img = encode_page(photo_page())
    w = ArchiveWriter(out, META)
    w.add_page(img, [], (600, 800), (288.0, 384.0), index=0)
    with pytest.raises(ValueError, match="already"):
        w.add_page(img, [], (600, 800), (288.0, 384.0), index=0)
    w.add_page(img, [], (600, 800), (288.0, 384.0), index=2)
    with pytest.raises(ValueError, match=r"missing.*\[1\]"):
        w.close()
    assert not out.exists() and not (tmp_path / "m.pdf.part").exists()


def test_pages_from_several_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    class Yielding:  # the file, but every write lets other threads run first (as a slow disk would)
        def __init__(self, f: Any) -> None:
            self.f = f

        def write(self, data: bytes) -> int:
            time.sleep(0.0005)
            return int(self.f.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

    out = tmp_path / "t.pdf"
    page = photo_page()
    with ArchiveWriter(out, META) as w, ThreadPoolExecutor(4) as pool:
        w._f = Yielding(w._f)  # type: ignore[assignment]
        words = [[Word(f"trang{k}", (50, 50, 300, 100), 0)] for k in range(16)]
        jobs = [
            pool.submit(w.add_page, PageImage(array=page), words[k], (600, 800), (288.0, 384.0), k) for k in range(16)
        ]
        for job in jobs:
            job.result()
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 16 and pdf.check_pdf_syntax() == []
    assert [norm(p) for p in pdftotext(out).split("\f")[:16]] == [f"trang{k}" for k in range(16)]


def test_same_input_same_bytes(tmp_path: Path) -> None:
    img = encode_page(text_page())
    a = write(tmp_path / "a.pdf", [(img, WORDS, (1240, 1754))]).read_bytes()
    b = write(tmp_path / "b.pdf", [(img, WORDS, (1240, 1754))]).read_bytes()
    assert a == b  # reproducible: no clock or random value in the file
