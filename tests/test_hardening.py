"""Hardening, each against a measured problem:

* request bodies are limited while they stream in (a 60 MB body was once spooled under a 1 MB limit);
* every response carries security headers, and the OpenAPI pages work under a CSP without inline script;
* no page decodes to more pixels than SOHOA_MAX_PAGE_PIXELS (a PDF page is rendered at a lower dpi);
* temp folders name their process, so those of a killed process are removed at the next start.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.testclient import TestClient

from api.docs import add_offline_docs
from api.limits import BodyLimit, copy_limited
from api.security import CONTENT_SECURITY_POLICY, SecurityHeaders, cors_middleware_kwargs
from ingest import InputError
from sohoa.settings import Settings

import fixtures
from conftest import LiveServer

MiB = 1024 * 1024
LIMIT = 2 * MiB
BIG = 64 * MiB  # what the client tries to send


# -- request bodies limited while they stream -----------------------------------------------------------


class Counting:
    """Outermost layer: counts the body bytes that the layers inside pulled from the server."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


async def read_all(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, answers its size."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({"size": size}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def answer_then_read(scope: Any, receive: Any, send: Any) -> None:
    """Starts a chunked response, then reads the body (too late for a 413)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.body", "body": b"done\n"})


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[LiveServer] = []

    def start(app: Any, limit: int | None = LIMIT) -> tuple[LiveServer, Counting]:
        counting = Counting(BodyLimit(app, limit_for=lambda scope: limit))
        server = LiveServer(counting)
        started.append(server)
        return server, counting

    yield start
    for s in started:
        s.stop()


@dataclass
class RawResult:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client managed to hand to its kernel
    closed: bool  # the server closed the connection within 2 s of answering


def raw_post(
    port: int, total: int, *, chunked: bool, send_body: bool = True,
    path: str = "/upload", content_type: str = "application/octet-stream", prefix: bytes = b"",
) -> RawResult:  # fmt: skip
    """POST ``prefix`` + ``total`` bytes over a raw socket, sending from a thread while the response is read
    (as curl and browsers do), so an early 413 is seen however much of the body the server refused."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(prefix) + total}"
    request = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{length}\r\n\r\n"
    sock.sendall(request.encode())
    sent = 0

    def pump() -> None:
        nonlocal sent
        block = b"\x00" * (64 * 1024)
        try:
            if prefix:
                sock.sendall(b"%x\r\n%s\r\n" % (len(prefix), prefix) if chunked else prefix)
            while sent < total:
                part = block[: min(len(block), total - sent)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                sent += len(part)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection: it will not read the rest

    pumper = threading.Thread(target=pump, daemon=True)
    if send_body:
        pumper.start()
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            got = sock.recv(65536)
            assert got, f"connection closed before a response: {data!r}"
            data += got
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        want = int(headers.get("content-length", "-1"))
        closed = False
        while want < 0 or len(body) < want:
            got = sock.recv(65536)
            if not got:
                closed = True
                break
            body += got
        if not closed:  # a prompt close, not uvicorn's 5 s keep-alive timeout
            sock.settimeout(2)
            try:
                closed = sock.recv(1) == b""
            except ConnectionResetError:
                closed = True
            except TimeoutError:
                closed = False
    finally:
        sock.close()
        if send_body:
            pumper.join(10)
    return RawResult(status, headers, body, sent, closed)


def assert_413(r: RawResult) -> None:
    assert r.status == 413, r
    assert r.headers["content-type"] == "application/json" and r.headers["connection"] == "close"
    message = json.loads(r.body)["detail"]["message"]
    assert message == "tệp tải lên quá lớn: vượt giới hạn 2 MB (upload too large: over the 2 MB limit)", message
    assert r.closed, "the server must close the connection instead of waiting for the rest of the body"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_big_body_is_refused_while_streaming(serve: Any, chunked: bool) -> None:
    """The client streams 64 MB while reading the response. With Content-Length the 413 comes before any
    of the body is read; chunked, once the count passes the 2 MB limit. Either way the server drops the
    connection (the client could not push the whole body)."""
    server, counting = serve(read_all)
    r = raw_post(server.port, BIG, chunked=chunked)
    assert_413(r)
    if chunked:
        assert LIMIT < counting.read < LIMIT + MiB, counting.read
    else:
        assert counting.read == 0
    assert r.sent < BIG


def test_declared_length_above_the_limit_is_refused_before_the_body_is_sent(serve: Any) -> None:
    server, counting = serve(read_all)
    r = raw_post(server.port, BIG, chunked=False, send_body=False)
    assert_413(r)
    assert counting.read == 0 and r.sent == 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_within_the_limit_passes(serve: Any, chunked: bool) -> None:
    server, counting = serve(read_all)
    r = raw_post(server.port, LIMIT, chunked=chunked)  # exactly the limit
    assert r.status == 200 and json.loads(r.body) == {"size": LIMIT}, r
    assert counting.read == LIMIT and not r.closed  # keep-alive as usual


def test_httpx_streaming_upload_gets_413(serve: Any) -> None:
    server, counting = serve(read_all)

    def body() -> Iterator[bytes]:
        for _ in range(BIG // MiB):
            yield b"\x00" * MiB

    with httpx.Client(timeout=30) as http:
        r = http.post(f"{server.url}/upload", content=body())  # no length: chunked
        assert r.status_code == 413, r.text
        assert "quá lớn" in r.json()["detail"]["message"]
        small = http.post(f"{server.url}/upload", content=b"x" * 1000)
        assert small.status_code == 200 and small.json() == {"size": 1000}
    assert counting.read < LIMIT + MiB + 1000


def test_fastapi_form_upload_gets_413_not_400(serve: Any) -> None:
    """FastAPI turns any error while parsing a form into 400; the middleware answers 413 instead, and the
    endpoint never runs."""
    app = FastAPI()
    calls: list[int] = []

    @app.post("/documents")
    def upload(files: list[UploadFile] = File(...)) -> dict[str, int]:  # noqa: B006
        calls.append(len(files))
        return {"files": len(files)}

    server, counting = serve(app)
    boundary = "----sohoa"
    prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"scan.pdf\"\r\n"
              "Content-Type: application/pdf\r\n\r\n").encode()  # fmt: skip
    r = raw_post(server.port, BIG, chunked=True, path="/documents", prefix=prefix,
                 content_type=f"multipart/form-data; boundary={boundary}")  # fmt: skip
    assert_413(r)
    assert LIMIT < counting.read < LIMIT + MiB and calls == []

    with httpx.Client(timeout=30) as http:
        ok = http.post(f"{server.url}/documents", files=[("files", ("a.pdf", b"%PDF-1.4 " * 100, "application/pdf"))])
    assert ok.status_code == 200 and ok.json() == {"files": 1} and calls == [1]


def test_response_already_started_is_aborted(serve: Any) -> None:
    server, counting = serve(answer_then_read)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    received = b""

    def pump() -> None:
        try:
            for _ in range(BIG // (64 * 1024)):
                sock.sendall(b"10000\r\n" + b"\x00" * 65536 + b"\r\n")
        except OSError:
            pass

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        while True:
            got = sock.recv(65536)
            if not got:
                break
            received += got
    except ConnectionResetError:
        pass
    finally:
        sock.close()
        t.join(10)
    assert received.startswith(b"HTTP/1.1 200") and b"started" in received, received
    assert b"done" not in received and not received.endswith(b"0\r\n\r\n"), received  # cut off, not completed
    assert counting.read < LIMIT + MiB


def test_no_limit_and_other_scopes_pass_through() -> None:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    with TestClient(BodyLimit(app, limit_for=lambda scope: None)) as c:  # lifespan scope passes too
        assert c.post("/echo", content=b"x" * (3 * MiB)).json() == {"size": 3 * MiB}


def test_copy_limited_stops_as_soon_as_the_limit_is_passed() -> None:
    class Source(io.BytesIO):
        pulled = 0

        def read(self, n: int | None = -1) -> bytes:
            data = super().read(n)
            self.pulled += len(data)
            return data

    src, dst = Source(b"x" * (10 * MiB)), io.BytesIO()
    with pytest.raises(InputError) as e:
        copy_limited(src, dst, 3 * MiB, "hồ sơ.pdf")
    assert e.value.status == 413 and e.value.filename == "hồ sơ.pdf"
    assert "vượt giới hạn 3 MB mỗi tệp" in e.value.message and "SOHOA_MAX_UPLOAD_MB" in e.value.message
    assert src.pulled == 3 * MiB + 1 and len(dst.getvalue()) <= 3 * MiB

    src, dst = Source(b"y" * (3 * MiB)), io.BytesIO()
    assert copy_limited(src, dst, 3 * MiB, "ok.pdf") == 3 * MiB and dst.getvalue() == b"y" * (3 * MiB)


# -- security headers, CSP-compatible OpenAPI pages, CORS --------------------------------------------------

EXPECTED_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def docs_app() -> FastAPI:
    app = FastAPI(title="sohoa", docs_url=None, redoc_url=None)
    add_offline_docs(app)

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"xin": "chào"}

    @app.get("/framed")
    def framed() -> Any:
        from fastapi.responses import PlainTextResponse

        return PlainTextResponse("ok", headers={"X-Frame-Options": "SAMEORIGIN"})

    return app


def test_security_headers_on_every_response() -> None:
    with TestClient(SecurityHeaders(docs_app())) as c:
        for url, status in (("/hello", 200), ("/docs", 200), ("/static/docs/swagger-init.js", 200), ("/nope", 404)):
            r = c.get(url)
            assert r.status_code == status, url
            for name, value in EXPECTED_HEADERS.items():
                assert r.headers.get(name) == value, (url, name, r.headers.get(name))
            assert "strict-transport-security" not in r.headers  # plain http
        assert c.get("/framed").headers["x-frame-options"] == "SAMEORIGIN"  # the app's own choice is kept


@pytest.mark.parametrize(
    ("base_url", "forwarded", "trusted", "hsts"),
    [
        ("https://testserver", None, False, True),
        ("http://testserver", "https", False, False),  # anyone can send X-Forwarded-Proto
        ("http://testserver", "https", True, True),
        ("http://testserver", "http", True, False),
    ],
)
def test_hsts_only_over_https(base_url: str, forwarded: str | None, trusted: bool, hsts: bool) -> None:
    with TestClient(SecurityHeaders(docs_app(), trusted_proxy=trusted), base_url=base_url) as c:
        r = c.get("/hello", headers={"X-Forwarded-Proto": forwarded} if forwarded else {})
    assert (r.headers.get("strict-transport-security") == "max-age=31536000") is hsts, r.headers


def test_413_carries_the_security_headers() -> None:
    app = SecurityHeaders(BodyLimit(docs_app(), limit_for=lambda scope: 10))
    with TestClient(app) as c:
        r = c.post("/hello", content=b"x" * 100)
    assert r.status_code == 413 and r.headers["x-frame-options"] == "DENY"


def test_docs_pages_have_no_inline_script() -> None:
    with TestClient(docs_app()) as c:
        for url in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            page = c.get(url).text
            scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
            assert scripts, page
            for attrs, inline in scripts:
                src = re.search(r'src="([^"]+)"', attrs)
                assert src and not inline.strip(), f"{url} has an inline script: {inline[:80]!r}"
                assert src[1].startswith("/static/docs/"), src[1]
                js = c.get(src[1])
                assert js.status_code == 200 and "javascript" in js.headers["content-type"], src[1]
            assert "cdn." not in page
        assert 'data-openapi-url="/openapi.json"' in c.get("/docs").text
        assert c.get("/static/docs/swagger-ui-bundle.js").status_code == 200  # fastapi-offline's, same mount


def test_docs_page_passes_the_csrf_token_to_swagger_ui() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    add_offline_docs(app, csrf_token=lambda request: 'tok"<en')
    with TestClient(app) as c:
        assert 'data-csrf-token="tok&quot;&lt;en"' in c.get("/docs").text
        assert "X-CSRF-Token" in c.get("/static/docs/swagger-init.js").text


def test_docs_pages_work_under_the_csp_in_a_browser(browser: Any) -> None:
    """Chromium enforces the policy: Swagger UI and ReDoc must render with no CSP violation."""
    server = LiveServer(SecurityHeaders(docs_app()))
    try:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        r = page.goto(f"{server.url}/docs")
        assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        page.wait_for_selector("#operations-default-hello_hello_get", timeout=30_000)
        assert "sohoa" in page.inner_text(".swagger-ui .info .title")
        page.goto(f"{server.url}/redoc")
        page.wait_for_selector("h5:has-text('hello'), h2:has-text('Hello')", timeout=30_000)
        # ReDoc always tries its vendor logo from cdn.redoc.ly (hidden when it fails to load): the policy
        # blocking that third-party request is wanted. Anything else (an inline script, ReDoc's blob:
        # search worker, which is why its search is off) is a failure.
        unexpected = [p for p in problems if "https://cdn.redoc.ly/redoc/logo-mini.svg" not in p]
        assert not unexpected, unexpected
        page.close()
    finally:
        server.stop()


def test_cors_is_off_unless_configured() -> None:
    assert cors_middleware_kwargs("") is None and cors_middleware_kwargs(" , ") is None
    kw = cors_middleware_kwargs("https://dichvucong.example.gov.vn, http://localhost:5173/")
    assert kw is not None
    assert kw["allow_origins"] == ["https://dichvucong.example.gov.vn", "http://localhost:5173"]
    assert kw["allow_credentials"] is False
    assert cors_middleware_kwargs("*")["allow_origins"] == ["*"]  # type: ignore[index]
    for bad in ("dichvucong.gov.vn", "https://a.gov.vn/path", "ftp://a.gov.vn"):
        with pytest.raises(ValueError, match="SOHOA_CORS_ORIGINS"):
            cors_middleware_kwargs(bad)

    from fastapi.middleware.cors import CORSMiddleware

    app = docs_app()
    app.add_middleware(CORSMiddleware, **kw)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    with TestClient(app) as c:
        ok = c.options("/hello", headers={"Origin": "http://localhost:5173", **preflight})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://localhost:5173"
        other = c.get("/hello", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_hardening_settings() -> None:
    s = Settings(data_dir=Path("/nonexistent"))
    assert (s.max_page_pixels, s.max_batch_mb, s.cors_origins, s.trusted_proxy) == (40_000_000, 2048, "", False)
    env = {"SOHOA_MAX_PAGE_PIXELS": "60000000", "SOHOA_MAX_BATCH_MB": "4096",
           "SOHOA_CORS_ORIGINS": "https://a.gov.vn", "SOHOA_TRUSTED_PROXY": "1"}  # fmt: skip
    s = Settings.from_env(env)
    assert (s.max_page_pixels, s.max_batch_mb, s.cors_origins, s.trusted_proxy) == (
        60_000_000, 4096, "https://a.gov.vn", True)  # fmt: skip
    assert {k: v for k, v in s.to_env().items() if k in env} == {**env}


# -- decoded pixels per page in the worker ---------------------------------------------------------------


def test_pdf_with_a_huge_mediabox_is_rasterised_within_the_budget(tmp_path: Path, caplog: Any) -> None:
    """3000×3000 pt at 300 dpi would be 12500×12500 px (156 MP, under SOHOA_MAX_PIXELS): rendered at the
    highest dpi within the 40 MP page budget instead, and logged."""
    from PIL import Image

    from workers.pages import iter_pages

    p = tmp_path / "ban-do.pdf"
    p.write_bytes(fixtures.pdf_with_page_size(3000, 3000, "Ban do dia chinh"))
    s = Settings(data_dir=tmp_path)
    with caplog.at_level("WARNING", logger="sohoa.worker"):
        (page,) = list(iter_pages(p, "application/pdf", s.render_dpi, s.max_page_pixels))
    assert page.dpi == 151 and page.image.size == (6292, 6292), (page.dpi, page.image.size)
    assert page.image.width * page.image.height <= s.max_page_pixels
    assert page.colour_mode.endswith("(rendered at 151 dpi)")
    assert "rendered at 151 dpi instead of 300" in caplog.text
    assert page.image.convert("L").getextrema()[0] < 128  # the text was drawn
    assert Image.MAX_IMAGE_PIXELS is not None

    p.write_bytes(fixtures.two_page_pdf())  # scanned A4 pages at 200 dpi: their own images, not rendered
    pages = [(x.dpi, x.image.size, x.encoded_filter) for x in iter_pages(p, "application/pdf", 300, s.max_page_pixels)]
    assert pages == [(200, (1654, 2338), "DCTDecode")] * 2, pages


def test_worker_never_decodes_a_scan_above_the_budget(tmp_path: Path) -> None:
    """A scan stored before the budget was lowered: a JPEG is decoded at a reduced scale (libjpeg never
    builds the full image); other formats fail the document with the reason."""
    from workers.pages import PageSourceError, iter_pages

    jpg = tmp_path / "scan.jpg"
    jpg.write_bytes(fixtures.blank_scan(3000, 2000, "JPEG", dpi=300, mode="L"))
    (page,) = list(iter_pages(jpg, "image/jpeg", max_page_pixels=2_000_000))
    assert page.image.size == (1500, 1000) and page.dpi == 150
    png = tmp_path / "scan.png"
    png.write_bytes(fixtures.blank_scan(3000, 2000))
    with pytest.raises(PageSourceError, match=r"page 1 is 3000×2000 px .*SOHOA_MAX_PAGE_PIXELS"):
        list(iter_pages(png, "image/png", max_page_pixels=2_000_000))
    with pytest.raises(PageSourceError, match=r"page 1 is 12000×12000 px"):
        bomb = tmp_path / "bomb.png"
        bomb.write_bytes(fixtures.huge_png_header(12_000, 12_000))
        list(iter_pages(bomb, "image/png"))


def test_ocr_never_upscales_a_page_above_the_budget() -> None:
    """The OCR upscales pages below 250 dpi towards 300 dpi, capped at 40 MP: within the default budget a
    low-dpi page keeps its dpi (the OCR's cap keeps it in); under a smaller budget a page whose upscaling
    would pass it is handed to the OCR as 250 dpi (no upscaling)."""
    import numpy as np

    import ocr
    from workers.pages import OCR_MAX_PIXELS, OCR_UPSCALE_BELOW, OCR_UPSCALE_TO, ocr_input_dpi

    page = np.zeros((100, 100), np.uint8)  # the numbers pinned to what ocr.normalize_dpi does
    assert ocr.normalize_dpi(page, OCR_UPSCALE_BELOW - 1)[1] == OCR_UPSCALE_TO
    assert ocr.normalize_dpi(page, OCR_UPSCALE_BELOW)[0].shape == (100, 100)
    assert ocr.OcrSettings().max_pixels == OCR_MAX_PIXELS
    a4_72 = np.zeros((2339, 1654), np.uint8)
    up, dpi = ocr.normalize_dpi(a4_72, 72)
    assert up.size <= OCR_MAX_PIXELS and dpi == 232  # upscaled only as far as its cap

    budget = 40_000_000
    assert ocr_input_dpi((1654, 2339), 72, budget) == 72  # the OCR's own cap keeps it within the budget
    assert ocr_input_dpi((6292, 6292), 151, budget) == 151  # the huge PDF page rendered at 151 dpi
    assert ocr_input_dpi((2480, 3508), 300, budget) == 300
    assert ocr_input_dpi((6000, 6000), None, budget) is None
    small = 8_000_000
    assert ocr_input_dpi((6000, 6000), 72, small) == 250
    assert ocr_input_dpi((1654, 2339), 72, small) == 250
    assert ocr_input_dpi((1000, 1400), 150, small) == 150  # upscaled to 5.6 MP: within the budget


def test_low_dpi_scan_is_read_within_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through the job with a 72-dpi PNG whose upscaling would pass a 8 MP budget."""
    from ingest import UploadItem, accept_batch
    from sohoa.context import Context
    from workers.process import process_document

    settings = Settings(data_dir=tmp_path / "data", max_page_pixels=8_000_000)
    ctx = Context(settings)
    try:
        scan = tmp_path / "scan.png"
        img = fixtures.small_page(fixtures.JPEG_LINES)  # A4 at 200 dpi: 1654×2339 px
        img.save(scan, "PNG", dpi=(72, 72))
        (acc,) = accept_batch(ctx, [UploadItem(scan, "scan.png", "000.00.06.H56-260715-0361", "input")])
        doc = acc.manifest.id  # type: ignore[union-attr]
        process_document(ctx, doc)
        m = ctx.load_manifest(doc)
        assert m.status == "done", m.to_dict()
        (info,) = m.pages
        assert info.width * info.height <= settings.max_page_pixels, (info.width, info.height)
        assert info.low_dpi and info.dpi == 250
    finally:
        ctx.close()


def test_pil_guard_stays_finite(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from workers.pages import PIL_DEFAULT_MAX_IMAGE_PIXELS, ensure_pil_guard

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # as the old code left it
    ensure_pil_guard(40_000_000)
    assert Image.MAX_IMAGE_PIXELS == PIL_DEFAULT_MAX_IMAGE_PIXELS
    ensure_pil_guard(150_000_000)  # a budget above PIL's default raises the guard, never removes it
    assert Image.MAX_IMAGE_PIXELS == 150_000_000


# -- temp folders ---------------------------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_tempdir_names_its_process_and_is_always_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sohoa.tempfiles import tempdir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with tempdir("upload") as d:
        assert d.parent == tmp_path and re.fullmatch(rf"sohoa-upload-{os.getpid()}-[a-z0-9_]+", d.name), d
        (d / "f").write_bytes(b"x")
    assert not d.exists()
    with pytest.raises(RuntimeError), tempdir("job") as d:
        raise RuntimeError("boom")
    assert not d.exists()
    with pytest.raises(ValueError):
        tempdir("../x").__enter__()


def test_remove_stale_removes_folders_of_dead_processes_only(tmp_path: Path, caplog: Any) -> None:
    from sohoa.tempfiles import remove_stale

    gone = dead_pid()
    dead = tmp_path / f"sohoa-job-{gone}-abc_1234"
    dead2 = tmp_path / f"sohoa-upload-{gone}-zz99zz99"
    live = tmp_path / f"sohoa-job-{os.getpid()}-abc_1234"
    legacy = tmp_path / "sohoa-tess-abc_1234"  # no pid in its name: cannot tell, kept
    other = tmp_path / f"other-job-{gone}-abc_1234"
    for d in (dead, dead2, live, legacy, other):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "page.png").write_bytes(b"x" * 100)
    link = tmp_path / f"sohoa-registry-{gone}-link0000"
    link.symlink_to(other)  # never followed
    assert remove_stale(max_age_s=3600, root=tmp_path) == 0  # too young
    with caplog.at_level("INFO", logger="sohoa.tempfiles"):
        assert remove_stale(root=tmp_path) == 2
    assert "removed 2 stale temp folder(s)" in caplog.text
    assert not dead.exists() and not dead2.exists()
    assert live.exists() and legacy.exists() and other.exists() and (other / "sub" / "page.png").exists()
    assert link.is_symlink()
    assert remove_stale(root=tmp_path) == 0


def test_job_temp_folder_is_gone_after_a_failing_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ocr
    from ingest import UploadItem, accept_batch
    from sohoa.context import Context
    from workers.process import process_document

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    ctx = Context(Settings(data_dir=tmp_path / "data"))
    try:
        scan = tmp_path / "scan.png"
        scan.write_bytes(fixtures.png_scan())
        (acc,) = accept_batch(ctx, [UploadItem(scan, "scan.png", "000.00.06.H56-260715-0361", "input")])
        doc = acc.manifest.id  # type: ignore[union-attr]
        seen: list[str] = []

        def crash(*args: Any, **kwargs: Any) -> Any:
            seen.extend(p.name for p in temp.iterdir())
            raise RuntimeError("OCR engine crashed")

        monkeypatch.setattr(ocr, "process_page", crash)
        with pytest.raises(RuntimeError, match="OCR engine crashed"):  # retried later by the queue
            process_document(ctx, doc)
        assert len(seen) == 1 and re.fullmatch(rf"sohoa-job-{os.getpid()}-\w+", seen[0]), seen
        assert list(temp.iterdir()) == []

        ctx.store.put_bytes(ctx.load_manifest(doc).original_key, b"\x89PNG\r\n\x1a\n broken")  # permanent failure
        process_document(ctx, doc)
        assert ctx.load_manifest(doc).status == "failed"
        assert list(temp.iterdir()) == []
    finally:
        ctx.close()
