"""Every command line in the README's ``bash`` blocks is run here, exactly as written, on the embedded
default in a temporary data dir (the files the lines name — scans/, batch.csv, the registry — are made by
code in the working folder). A README line that no test runs fails ``test_every_readme_line_is_run``;
a subcommand that no README line shows fails ``test_every_subcommand_is_in_the_readme``."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from sohoa.cli import subcommands
from sohoa.context import Context
from sohoa.settings import Settings

import fixtures
from deploy import ROOT, wait_for
from servers import free_port

README = ROOT / "README.md"
OCR_DATA = ROOT / "tests" / "data" / "ocr"
CODE = "000.00.06.H56-260715-0361"  # the code the README's lines use
CODE_2 = "000.00.06.H56-260716-0362"  # a second registered dossier, scanned through batch.csv
CODE_3 = "000.00.06.H56-260820-0363"  # registered, never scanned
UNREGISTERED = "000.00.06.H56-260801-0399"  # scanned, not in the registry


def readme_lines() -> list[str]:
    """The commands of the README's ```bash blocks, comments stripped, normalised by shlex."""
    out, in_bash = [], False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_bash = not in_bash and line.strip() == "```bash"
            continue
        if in_bash and (tokens := shlex.split(line, comments=True)):
            out.append(shlex.join(tokens))
    return out


# README line (prefix) → the test that runs it. Lines that cannot be run from a test say why instead.
COVERED = {
    "bash scripts/demo.sh": "test_demo_script_processes_the_batch_and_serves",
    "bash scripts/test.sh": "NOT RUN HERE: it is the command that runs this suite (.ci/run calls it)",
    "source .venv/bin/activate": "NOT RUN HERE: a shell builtin; every test calls .venv/bin/sohoa",
    "sohoa config": "test_config_masks_secrets_and_prints_effective_folders",
    "sohoa serve": "test_serve_answers_health_and_offline_docs",
    "sohoa ingest scans/": "test_ingest_folder_and_manifest",
    "sohoa ingest --manifest batch.csv": "test_ingest_folder_and_manifest",
    "sohoa status --dossier": "test_status",
    "sohoa search ho so dat dai": "test_search",
    "sohoa dossier": "test_dossier",
    "sohoa reindex": "test_reindex_then_search_again",
    "sohoa recover": "test_recover",
    "sohoa worker": "test_worker_on_redis_processes_a_queued_upload",
    "sohoa registry so-dang-ky-q3.xlsx": "test_registry_import",
    "sohoa report --period quarter:2026-Q3 --by unit": "test_report_table_and_xlsx",
    "sohoa report --period quarter:2026-Q3 --rule required --undigitized input": "test_report_undigitized",
    "sohoa report --unregistered": "test_report_unregistered",
    "sohoa export-portal portal.json": "test_export_portal",
    "sohoa cover": "test_scanning_station",
    "sohoa ingest chong-ho-so.pdf --split": "test_scanning_station",
    "sohoa watch may-quet --split": "test_scanning_station",
    "sohoa ingest ca-sang/ --recursive": "test_operator_ingest_folder_tree_sidecars_and_duplicates",
    "sohoa unit import don-vi.csv": "test_accounts_units_tokens_and_audit",
    "sohoa user add lan.nguyen": "test_accounts_units_tokens_and_audit",
    "sohoa user list": "test_accounts_units_tokens_and_audit",
    "sohoa user passwd lan.nguyen": "test_accounts_units_tokens_and_audit",
    "sohoa user disable lan.nguyen": "test_accounts_units_tokens_and_audit",
    "sohoa token create": "test_accounts_units_tokens_and_audit",
    "sohoa token list": "test_accounts_units_tokens_and_audit",
    "sohoa token revoke TOKEN_ID": "test_accounts_units_tokens_and_audit",
    "sohoa audit --user lan.nguyen": "test_accounts_units_tokens_and_audit",
    ".venv/bin/python bench/ocr_quality.py": "test_benchmarks_run",
    ".venv/bin/python bench/ocr_speed.py": "test_benchmarks_run",
    ".venv/bin/python bench/pipeline_speed.py": "test_benchmarks_run",
    ".venv/bin/python bench/report_speed.py": "test_benchmarks_run",
    ".venv/bin/python bench/search_speed.py": "test_benchmarks_run",
    ".venv/bin/python bench/pdf_archive.py": "test_benchmarks_run",
    ".venv/bin/python bench/pdf_pages.py": "test_benchmarks_run",
    ".venv/bin/python bench/stack_split.py": "test_benchmarks_run",
    ".venv/bin/python bench/pipeline_memory.py": "test_benchmarks_run",
}


def readme(prefix: str) -> list[str]:
    """The README line that starts with *prefix*, as argv."""
    found = [line for line in readme_lines() if line.startswith(prefix)]
    assert len(found) == 1, f"README lines starting with {prefix!r}: {found}"
    return shlex.split(found[0])


def argv(tokens: list[str]) -> list[str]:
    bindir = Path(sys.executable).parent
    if tokens[0] == "sohoa":
        return [str(bindir / "sohoa"), *tokens[1:]]
    if tokens[0] == ".venv/bin/python":
        return [sys.executable, *tokens[1:]]
    return tokens


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_")}
    for keep in ("SOHOA_TESSDATA_DIR", "SOHOA_LEXICON_DIR"):
        if keep in os.environ:
            env[keep] = os.environ[keep]
    env.update(SOHOA_DATA_DIR=str(data_dir), SOHOA_LOG_LEVEL="WARNING", SOHOA_WORKER_THREADS="2", COLUMNS="200")
    env.update(extra)
    return env


@dataclass
class Run:
    code: int
    out: str


@dataclass
class Workdir:
    cwd: Path
    data: Path

    def run(self, tokens: list[str], timeout: float = 600, **env: str) -> Run:
        p = subprocess.run(argv(tokens), cwd=self.cwd, env=clean_env(self.data, **env), capture_output=True,
                           timeout=timeout)  # fmt: skip
        out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
        print(f"$ {shlex.join(tokens)}  → {p.returncode}\n{out[-4000:]}")
        return Run(p.returncode, out)

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data)


REGISTRY_HEADER = ["MaHoSo", "MaTTHC", "TenTTHC", "TenLinhVuc", "KenhThucHien", "NgayTiepNhan", "NgayCoKetQua",
                   "DonViXuLy", "ThanhPhanBatBuoc"]  # fmt: skip
REGISTRY_ROWS = [
    [CODE, "1.004227", "Đăng ký biến động đất đai", "Đất đai", "1", "15/07/2026", "20/07/2026", "UBND xã A",
     "Đơn đề nghị"],
    [CODE_2, "1.001193", "Đăng ký kết hôn", "Hộ tịch", "2", "16/07/2026", "", "UBND xã A",
     "Tờ khai;Giấy tờ nhân thân"],
    [CODE_3, "1.004227", "Đăng ký biến động đất đai", "Đất đai", "3", "20/08/2026", "", "UBND xã B", "Đơn đề nghị"],
]  # fmt: skip


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    cwd = tmp_path_factory.mktemp("readme")
    (cwd / "scans").mkdir()
    (cwd / "scans" / "đơn đề nghị.pdf").write_bytes(fixtures.two_page_pdf())  # page 2: "Hồ sơ đất đai …"
    (cwd / "batch").mkdir()
    (cwd / "batch" / "tờ khai.jpg").write_bytes(fixtures.jpeg_scan())
    (cwd / "batch" / "kết quả.png").write_bytes(fixtures.png_scan(["QUYẾT ĐỊNH", "Về việc cấp giấy chứng nhận"]))
    (cwd / "batch" / "chưa đăng ký.png").write_bytes(fixtures.png_scan())
    (cwd / "batch.csv").write_text(
        "file,dossier_code,kind,component,unit\n"
        f"batch/tờ khai.jpg,{CODE_2},input,Tờ khai,UBND xã A\n"
        f"batch/kết quả.png,{CODE},output,Quyết định,UBND xã A\n"
        f"batch/chưa đăng ký.png,{UNREGISTERED},input,Tờ khai,UBND xã B\n",
        encoding="utf-8",
    )
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(REGISTRY_HEADER)
    for row in REGISTRY_ROWS:
        ws.append(row)
    wb.save(cwd / "so-dang-ky-q3.xlsx")
    (cwd / "don-vi.csv").write_text(
        "code,name,parent\n38,UBND tỉnh Thanh Hóa,\n38.QX,UBND huyện Quảng Xương,38\n"
        "38.QX.QD,UBND xã Quảng Định,38.QX\n",
        encoding="utf-8",
    )
    return Workdir(cwd, cwd / "data")


@pytest.fixture(scope="module")
def ingested(work: Workdir) -> tuple[Run, Run]:
    return work.run(readme("sohoa ingest scans/")), work.run(readme("sohoa ingest --manifest batch.csv"))


@pytest.fixture(scope="module")
def registered(work: Workdir, ingested: tuple[Run, Run]) -> Run:
    return work.run(readme("sohoa registry so-dang-ky-q3.xlsx"))


# -- the list itself ---------------------------------------------------------------------------------
def test_every_readme_line_is_run() -> None:
    lines = readme_lines()
    assert len(lines) >= 20
    for line in lines:
        owners = [p for p in COVERED if line.startswith(p)]
        assert len(owners) == 1, f"README line without exactly one test: {line!r} (matches {owners})"
    for prefix, test in COVERED.items():
        assert any(line.startswith(prefix) for line in lines), f"stale entry, no README line starts with {prefix!r}"
        assert test.startswith("NOT RUN HERE") or test in globals(), test


def test_every_subcommand_is_in_the_readme() -> None:
    shown = {shlex.split(line)[1] for line in readme_lines() if line.startswith("sohoa ")}
    assert "sohoa demo" in (ROOT / "scripts" / "demo.sh").read_text()  # `demo` runs through scripts/demo.sh
    assert set(subcommands()) - {"demo"} <= shown, set(subcommands()) - shown


# -- the documents ---------------------------------------------------------------------------------
def test_ingest_folder_and_manifest(ingested: tuple[Run, Run]) -> None:
    folder, manifest = ingested
    assert folder.code == 0 and "accepted 1 file(s), rejected 0" in folder.out
    assert manifest.code == 0 and "accepted 3 file(s), rejected 0" in manifest.out
    assert "done" in folder.out and "failed" not in manifest.out  # the embedded default waits for OCR


def test_status(work: Workdir, ingested: tuple[Run, Run]) -> None:
    r = work.run(readme("sohoa status --dossier"))
    assert r.code == 0 and "done=2" in r.out and "đơn đề nghị.pdf" in r.out, r.out
    doc_id = re.search(r"\b([0-9a-f]{32})\b", r.out)
    assert doc_id
    one = work.run(["sohoa", "status", doc_id[1]])
    assert one.code == 0 and "done=1" in one.out
    missing = work.run(["sohoa", "status", "0" * 32])
    assert missing.code == 1 and "không có tài liệu" in missing.out


def test_search(work: Workdir, ingested: tuple[Run, Run]) -> None:
    r = work.run(readme("sohoa search ho so dat dai"))
    assert r.code == 0 and re.search(r"^[1-9]\d* page\(s\) match «ho so dat dai»", r.out, re.M), r.out
    assert CODE in r.out and "p.2" in r.out  # the PDF's second page holds "Hồ sơ đất đai"
    output_only = work.run(["sohoa", "search", "ho", "so", "dat", "dai", "--kind", "output"])
    assert output_only.code == 0 and output_only.out.startswith("0 page(s)")
    bad = work.run(["sohoa", "search", "dat", "--from", "garbage"])
    assert bad.code == 2 and "YYYY-MM-DD" in bad.out
    bad = work.run(["sohoa", "search", "dat", "--from", "2026-13-01"])
    assert bad.code == 2 and "ngày không hợp lệ" in bad.out
    bad = work.run(["sohoa", "search", "dat", "--from", "2026-12-01", "--to", "2026-01-01"])
    assert bad.code == 2 and "trước ngày bắt đầu" in bad.out


def test_dossier(work: Workdir, registered: Run) -> None:
    r = work.run(readme("sohoa dossier"))
    assert r.code == 0 and "input digitized=True output digitized=True" in r.out, r.out
    assert "registry: 1.004227" in r.out
    unknown = work.run(["sohoa", "dossier", "000.00.06.H56-261231-9999"])
    assert unknown.code == 1 and "unknown dossier" in unknown.out


def test_reindex_then_search_again(work: Workdir, registered: Run) -> None:
    before = work.run(readme("sohoa search ho so dat dai"))
    r = work.run(readme("sohoa reindex"))
    assert r.code == 0 and "re-indexed 4 document(s)" in r.out, r.out
    after = work.run(readme("sohoa search ho so dat dai"))
    assert after.out.splitlines()[0] == before.out.splitlines()[0]


def test_recover(work: Workdir, ingested: tuple[Run, Run]) -> None:
    r = work.run(readme("sohoa recover"))
    assert r.code == 0 and "re-queued 0 document(s)" in r.out


# -- the manager's commands ------------------------------------------------------------------------
def test_registry_import(work: Workdir, registered: Run) -> None:
    assert registered.code == 0 and "imported: 3 new, 0 updated, 0 unchanged, 0 row(s) with errors" in registered.out
    again = work.run(readme("sohoa registry so-dang-ky-q3.xlsx"))
    assert again.code == 0 and "0 new, 0 updated, 3 unchanged" in again.out
    missing = work.run(["sohoa", "registry", "khong-co.xlsx"])
    assert missing.code == 2 and "không tìm thấy" in missing.out


def test_report_table_and_xlsx(work: Workdir, registered: Run) -> None:
    r = work.run(readme("sohoa report --period quarter:2026-Q3 --by unit"))
    assert r.code == 0 and "quarter:2026-Q3" in r.out and "UBND xã A" in r.out and "Đất đai" in r.out, r.out
    wb = openpyxl.load_workbook(work.cwd / "q3.xlsx")
    cells = [[c.value for c in row] for row in wb["Đơn vị"].iter_rows()]
    header = next(i for i, row in enumerate(cells) if row and row[0] == "Đơn vị")
    rows = {row[0]: row for row in cells[header + 1 :] if row and row[0]}
    # xã A received CODE (Đơn đề nghị scanned) and CODE_2 (Tờ khai scanned): 2/2 under rule any
    assert rows["UBND xã A"][1:3] == [2, 2], rows
    assert rows["UBND xã B"][1:3] == [1, 0], rows
    bad = work.run(["sohoa", "report", "--period", "quarter:2026-Q5"])
    assert bad.code == 2 and "bad period" in bad.out


def test_report_undigitized(work: Workdir, registered: Run) -> None:
    r = work.run(readme("sohoa report --period quarter:2026-Q3 --rule required --undigitized input"))
    assert r.code == 0 and "2 dossier(s) not digitized (input)" in r.out, r.out
    assert CODE_2 in r.out and "Giấy tờ nhân thân" in r.out and CODE_3 in r.out and CODE not in r.out


def test_report_unregistered(work: Workdir, registered: Run) -> None:
    r = work.run(readme("sohoa report --unregistered"))
    assert r.code == 0 and "1 dossier code(s)" in r.out and UNREGISTERED in r.out


def test_export_portal(work: Workdir, registered: Run) -> None:
    r = work.run(readme("sohoa export-portal portal.json"))
    assert r.code == 0 and "wrote 3 dossier(s)" in r.out
    data = {d["MaHoSo"]: d for d in json.loads((work.cwd / "portal.json").read_text(encoding="utf-8"))}
    assert set(data) == {CODE, CODE_2, CODE_3}
    assert data[CODE]["HoSoCoThanhPhanSoHoa"] == 1 and data[CODE]["KetQuaSoHoa"] == 1
    assert data[CODE_3]["HoSoCoThanhPhanSoHoa"] == 0


# -- settings --------------------------------------------------------------------------------------
def test_config_masks_secrets_and_prints_effective_folders(work: Workdir) -> None:
    r = work.run(readme("sohoa config"), SOHOA_STORAGE_URL="s3://AKID:s3cr3t-Key@127.0.0.1:9000/hoso?secure=false",
                 SOHOA_BROKER_URL="redis://:redispass@127.0.0.1:6379/0")  # fmt: skip
    assert r.code == 0, r.out
    assert "s3cr3t-Key" not in r.out and "redispass" not in r.out
    assert "SOHOA_STORAGE_URL=s3://AKID:***@127.0.0.1:9000/hoso" in r.out
    values = dict(line.split("=", 1) for line in r.out.splitlines() if line.startswith("SOHOA_"))
    assert values["SOHOA_TESSDATA_DIR"].split()[0] and "model: vie" in values["SOHOA_TESSDATA_DIR"]
    assert Path(values["SOHOA_LEXICON_DIR"].split()[0]).is_dir()
    assert values["SOHOA_INDEX_URL"] == f"sqlite://{(work.data / 'index.sqlite3').resolve()}"
    bad = work.run(readme("sohoa config"), SOHOA_MAX_PAGES="many")
    assert bad.code == 2 and "SOHOA_MAX_PAGES" in bad.out


# -- long-running commands ---------------------------------------------------------------------------
def _start(work: Workdir, tokens: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as f:
        return subprocess.Popen(argv(tokens), cwd=work.cwd, env=clean_env(work.data, **env), stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def _stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    print(log.read_text(errors="replace")[-4000:])
    return proc.returncode


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    try:
        with _opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("content-type", "")
    except OSError:
        return 0, b"", ""


def _wait_health(base: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> dict:
    def ready() -> dict | None:
        assert proc.poll() is None, "the server exited"
        status, body, _ = _get(base + "/health")
        return json.loads(body) if status == 200 else None

    return wait_for(ready, timeout, interval=0.5, what=f"{base}/health")


def test_serve_answers_health_and_offline_docs(work: Workdir, tmp_path: Path) -> None:
    port = free_port()
    proc = _start(work, readme("sohoa serve"), tmp_path / "serve.log", SOHOA_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait_health(base, proc, 120) == {"status": "ok"}  # liveness only, without credentials
        assert _get(base + "/health/details")[0] == 401
        made = work.run(["sohoa", "token", "create", "probe", "--role", "admin", "--role", "staff", "--unit", "*",
                         "--quiet"])  # fmt: skip
        token = made.out.strip().splitlines()[-1]
        assert made.code == 0 and token.startswith("sohoa_"), made.out
        auth = {"Authorization": f"Bearer {token}"}
        status, body, _ = _get(base + "/health/details", auth)
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok", body
        assert health["index"].startswith("sqlite:///") and not health["index"].startswith("sqlite:////")
        assert health["storage"].startswith("file:///")
        assert _get(base + "/docs")[0] in (303, 401)  # behind sign-in too
        status, page, _ = _get(base + "/docs", auth)
        assert status == 200
        scripts = re.findall(rb'<script src="([^"]+)"', page) + re.findall(rb'<link[^>]+href="([^"]+)"', page)
        assert scripts and all(s.startswith(b"/") for s in scripts), scripts  # served by the app, not a CDN
        for src in scripts:
            s, body, ctype = _get(base + src.decode(), auth)
            assert s == 200 and len(body) > 1000, (src, s)
    finally:
        assert _stop(proc, tmp_path / "serve.log") == 0


def test_worker_on_redis_processes_a_queued_upload(
    work: Workdir, tmp_path: Path, redis_server: object, unique: str
) -> None:
    from deploy import fresh_redis_url

    broker = fresh_redis_url(redis_server.url)  # type: ignore[attr-defined]
    data = tmp_path / "data"
    w = Workdir(work.cwd, data)
    proc = _start(w, readme("sohoa worker"), tmp_path / "worker.log", SOHOA_BROKER_URL=broker)
    try:
        scan = tmp_path / "giấy tờ.png"
        scan.write_bytes(fixtures.png_scan())
        r = w.run(["sohoa", "ingest", str(scan), "--dossier", CODE, "--kind", "input", "--no-wait"],
                  SOHOA_BROKER_URL=broker)  # fmt: skip
        assert r.code == 0 and "queued" in r.out, r.out
        doc_id = re.search(r"\b([0-9a-f]{32})\b", r.out)
        assert doc_id
        ctx = Context(Settings(data_dir=data))
        try:
            wait_for(lambda: ctx.load_manifest(doc_id[1]).status == "done", 180, what="the worker to finish")
        finally:
            ctx.close()
    finally:
        assert _stop(proc, tmp_path / "worker.log") == 0


def test_demo_script_processes_the_batch_and_serves(tmp_path: Path) -> None:
    port = free_port()
    w = Workdir(ROOT, tmp_path / "data")
    log = tmp_path / "demo.log"
    proc = _start(w, readme("bash scripts/demo.sh"), log, SOHOA_PORT=str(port))
    try:
        _wait_health(f"http://127.0.0.1:{port}", proc, 600)
        out = log.read_text(errors="replace")
        assert "dossiers with a digitized input component: 3/3; with a digitized result: 2/3" in out, out
        assert re.search(r"search «ho so dat dai»: [1-9]\d* page", out)
        assert re.search(r"search «khai sinh Đức»: [1-9]\d* page", out)
        for user in ("quantri", "vanthu", "tracuu", "lanhdao", "kiemtra"):  # one account per role, password shown
            assert re.search(rf"│ {re.escape(user)}\s.*│ \S{{12,}}", out), (user, out[-3000:])
    finally:
        _stop(proc, log)


# -- benchmarks (tiny runs: the figures are not checked, only that each script runs and prints them) -------
@pytest.mark.parametrize(
    ("script", "small"),
    [
        ("bench/ocr_quality.py", ["--sets", str(OCR_DATA), "--configs", "raw-best", "sohoa", "--limit", "1"]),
        ("bench/ocr_speed.py", ["--set", str(OCR_DATA), "--pages", "1", "--jobs", "1"]),
        ("bench/pipeline_speed.py", ["--pages", "2", "--docs", "2", "--doc-pages", "1"]),  # with Redis, as shown
        ("bench/pipeline_memory.py", ["--pages", "5", "10"]),
        ("bench/report_speed.py", ["--n", "2000", "--runs", "1"]),
        ("bench/search_speed.py", ["--pages", "2000"]),
        ("bench/pdf_archive.py", ["--sets", str(OCR_DATA), "--limit", "1", "--memory", "20"]),
        ("bench/pdf_pages.py", ["--pages", "2", "--rounds", "1"]),
        ("bench/stack_split.py", ["--pages", "20"]),
    ],
)
def test_benchmarks_run(work: Workdir, tmp_path: Path, script: str, small: list[str]) -> None:
    tokens = readme(f".venv/bin/python {script}")
    t = time.perf_counter()
    p = subprocess.run([*argv(tokens), *small], cwd=ROOT, env=clean_env(tmp_path / "data"), capture_output=True,
                       timeout=600)  # fmt: skip
    out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
    print(f"{script}: {time.perf_counter() - t:.0f} s\n{out[-3000:]}")
    assert p.returncode == 0, out
    assert re.search(r"\d+\.\d+", p.stdout.decode()), "the benchmark printed no figure"
    for line in BENCH_PRINTS.get(script, []):
        assert re.search(line, p.stdout.decode()), f"{script} did not print {line!r}"


BENCH_PRINTS = {  # goal lines a benchmark must print (besides figures)
    "bench/pipeline_speed.py": [
        r"redis: 2 workers / 1 worker = \d+\.\d+×",
        r"ceiling: (raw Tesseract on \d+ cores|not measured)",
    ],
}


# -- accounts, units, tokens, audit ------------------------------------------------------------------
def test_accounts_units_tokens_and_audit(work: Workdir) -> None:
    r = work.run(readme("sohoa unit import don-vi.csv"))
    assert r.code == 0 and "imported 3 unit(s)" in r.out, r.out
    r = work.run(readme("sohoa user add lan.nguyen"))
    assert r.code == 0 and "created user lan.nguyen: roles clerk; units 38.QX" in r.out, r.out
    first = re.search(r"password \(shown once\): (\S+)", r.out)
    assert first
    again = work.run(readme("sohoa user add lan.nguyen"))
    assert again.code == 2 and "đã có" in again.out
    weak = work.run(["sohoa", "user", "add", "yeu", "--role", "staff", "--unit", "38", "--password-stdin"])
    assert weak.code == 2, weak.out  # empty stdin: too short
    unknown_unit = work.run(["sohoa", "user", "add", "x.y", "--role", "staff", "--unit", "99", "--generate"])
    assert unknown_unit.code == 2 and "99" in unknown_unit.out
    r = work.run(readme("sohoa user list"))
    assert r.code == 0 and "lan.nguyen" in r.out and "active" in r.out and "1 user(s)" in r.out
    r = work.run(readme("sohoa user passwd lan.nguyen"))
    second = re.search(r"password \(shown once\): (\S+)", r.out)
    assert r.code == 0 and second and second[1] != first[1]
    from sohoa.auth import AuthStore
    from storage import open_store

    store = open_store(work.settings.storage_url)
    try:
        auth = AuthStore(store)
        assert auth.authenticate("lan.nguyen", second[1])[0] is not None
        assert auth.authenticate("lan.nguyen", first[1])[0] is None
        r = work.run(readme("sohoa user disable lan.nguyen"))
        assert r.code == 0 and "disabled" in r.out
        assert auth.authenticate("lan.nguyen", second[1]) == (None, "disabled")
        r = work.run(readme("sohoa token create"))
        assert r.code == 0, r.out
        secret = r.out.strip().splitlines()[-1]
        principal = auth.verify_token(secret)
        assert principal and principal.roles == {"clerk"} and principal.units == ("38.QX.QD",)
        assert "UBND xã Quảng Định" in (principal.scope or ())
        tid = secret.split("_")[1]
        r = work.run(readme("sohoa token list"))
        assert r.code == 0 and tid in r.out and secret.split("_")[2] not in r.out
        r = work.run([x.replace("TOKEN_ID", tid) for x in readme("sohoa token revoke TOKEN_ID")])
        assert r.code == 0 and "revoked" in r.out
        assert auth.verify_token(secret) is None
    finally:
        store.close()
    r = work.run(readme("sohoa audit --user lan.nguyen"))
    assert r.code == 0, r.out  # the CLI's own changes are recorded as cli:<user>, with lan.nguyen as target
    r = work.run(["sohoa", "audit", "--action", "token.revoke", "--json"])
    lines = [json.loads(x) for x in r.out.splitlines() if x.startswith("{")]
    assert r.code == 0 and len(lines) == 1 and lines[0]["target"] == tid and lines[0]["actor"].startswith("cli:")
    bad = work.run(["sohoa", "audit", "--from", "garbage"])
    assert bad.code == 2


# -- the scanning station ------------------------------------------------------------------------------
def test_scanning_station(work: Workdir, tmp_path: Path) -> None:
    import pikepdf

    from fixtures import make_stack

    r = work.run(readme("sohoa cover"))
    assert r.code == 0 and "wrote 2 cover sheet(s)" in r.out, r.out
    assert len(pikepdf.open(work.cwd / "phieu-tach.pdf").pages) == 2
    stack, expected, _ = make_stack(3, seed=11)
    (work.cwd / "chong-ho-so.pdf").write_bytes(stack)
    r = work.run(readme("sohoa ingest chong-ho-so.pdf --split"))
    assert r.code == 0 and "accepted 3 file(s), rejected 0" in r.out, r.out
    for code in expected:
        assert code in r.out
    folder = work.cwd / "may-quet"
    folder.mkdir()
    proc = _start(work, readme("sohoa watch may-quet --split"), tmp_path / "watch.log")
    try:
        stack2, expected2, _ = make_stack(2, seed=12)
        (folder / "lo-2.pdf").write_bytes(stack2)
        wait_for(lambda: (folder / "done" / "lo-2.pdf").exists(), 120, what="the stack handled")
    finally:
        _stop(proc, tmp_path / "watch.log")
    ctx = Context(work.settings)
    try:
        for code in expected2:
            assert ctx.index.list_documents(dossier_code=code), code
    finally:
        ctx.close()


def test_operator_ingest_folder_tree_sidecars_and_duplicates(work: Workdir) -> None:
    tree = work.cwd / "ca-sang"
    (tree / "chieu").mkdir(parents=True)
    (tree / "giấy ủy quyền.png").write_bytes(fixtures.png_scan(["GIẤY ỦY QUYỀN", "Người ủy quyền: Lê Thị Hoa"]))
    (tree / "chieu" / "bản sao CCCD.png").write_bytes(fixtures.png_scan(["CĂN CƯỚC CÔNG DÂN", "Số 038190001234"]))
    (tree / "Thumbs.db").write_bytes(b"\0" * 64)
    (tree / "ghi chú.txt").write_text("máy quét 2", encoding="utf-8")
    r = work.run(readme("sohoa ingest ca-sang/ --recursive"))
    assert r.code == 0, r.out
    assert re.search(r"summary: 2 file\(s\), 2 new, 0 duplicate, 0 rejected, 2 ignored; 2 page\(s\) uploaded in "
                     r"[\d.]+ s \([\d.,]+ pages/min, --jobs 4\)", r.out), r.out  # fmt: skip
    again = work.run(readme("sohoa ingest ca-sang/ --recursive"))  # the same scans again: nothing stored twice
    assert again.code == 0 and "2 file(s), 0 new, 2 duplicate" in again.out and "OCR:" not in again.out, again.out
    flat = work.run(["sohoa", "ingest", "ca-sang/", "--dossier", CODE, "--kind", "input"])  # no --recursive
    assert flat.code == 0 and "chieu" in flat.out and "--recursive" in flat.out, flat.out
    bad = work.run(["sohoa", "ingest", "ca-sang/", "--dossier", "not a code", "--kind", "input"])
    assert bad.code == 1 and "rejected 1" in bad.out, bad.out  # the file is refused (1); usage errors are 2
    usage = work.run(["sohoa", "ingest", "ca-sang/", "--kind", "sideways"])
    assert usage.code == 2, usage.out
