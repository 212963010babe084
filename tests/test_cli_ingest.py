"""``sohoa ingest`` as a scanner operator uses it: exit codes (0 all accepted, 1 some rejected, 2 usage or
configuration), ``--jobs``, the summary line with pages and pages/min, sidecar files skipped with a count,
sub-folders walked only with ``--recursive``, duplicates said so, log lines printed through the progress
bar's console."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fixtures
from deploy import ROOT

CODE = "000.00.06.H56-260715-0361"
SIDECARS = ("notes.txt", "README.md", "Thumbs.db", ".DS_Store", "desktop.ini")


def _run(args: list[str], data: Path, **env: str) -> tuple[int, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_")}
    e.update(SOHOA_DATA_DIR=str(data), COLUMNS="250", **env)
    p = subprocess.run([sys.executable, "-m", "sohoa.cli", "ingest", *args], cwd=ROOT, env=e, capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    return p.returncode, p.stdout + p.stderr


def _scan(folder: Path, name: str, n: int) -> Path:
    p = folder / name
    p.write_bytes(fixtures.png_scan([f"Tờ khai số {n}", "Hồ sơ đất đai", f"Trang {n}"]))
    return p


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    folder = tmp_path / "scans"
    (folder / "lô 2").mkdir(parents=True)
    for i in range(4):
        _scan(folder, f"tờ khai {i}.png", i)
    _scan(folder / "lô 2", "tờ khai lô 2.png", 99)
    for name in SIDECARS:
        (folder / name).write_bytes(b"scanner sidecar")
    return folder


def test_folder_sidecars_summary_and_recursive(scans: Path, tmp_path: Path) -> None:
    common = ["--dossier", CODE, "--kind", "input", "--no-wait"]
    code, out = _run([str(scans), *common, "--jobs", "3"], tmp_path / "data")
    assert code == 0, out
    assert "accepted 4 file(s), rejected 0" in out
    assert "ignored 5 sidecar file(s)" in out
    assert "not walked" in out and "lô 2" in out and "--recursive" in out
    summary = next(line for line in out.splitlines() if line.startswith("summary:"))
    assert "4 file(s), 4 new, 0 duplicate, 0 rejected, 5 ignored; 4 page(s) uploaded in" in summary
    assert "pages/min, --jobs 3)" in summary, summary
    code, out = _run([str(scans), *common, "--recursive"], tmp_path / "data")
    assert code == 0, out
    assert "accepted 5 file(s), rejected 0" in out and "not walked" not in out
    assert "1 new, 4 duplicate" in out and out.count("already stored as document") == 4


def test_exit_1_when_some_files_are_rejected(scans: Path, tmp_path: Path) -> None:
    (scans / "hỏng.pdf").write_bytes(fixtures.corrupt_pdf())
    code, out = _run([str(scans), "--dossier", CODE, "--kind", "input", "--no-wait"], tmp_path / "data")
    assert code == 1, out
    assert "accepted 4 file(s), rejected 1" in out and "rejected" in out and "hỏng.pdf" in out


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        ([], {}, "no files given"),
        (["--jobs", "0", "X"], {}, "--jobs"),
        (["--no-such-flag"], {}, "unrecognized arguments"),
        (["only-sidecars"], {}, "no files given"),
        (["scans"], {"SOHOA_WORKER_THREADS": "many"}, "bad setting"),
        (["scans"], {"SOHOA_STORAGE_URL": "ftp://nowhere/x"}, "ftp"),
    ],
)
def test_exit_2_for_usage_and_configuration(
    args: list[str], env: dict[str, str], says: str, scans: Path, tmp_path: Path
) -> None:
    (tmp_path / "only-sidecars").mkdir()
    (tmp_path / "only-sidecars" / "Thumbs.db").write_bytes(b"x")
    args = [str(tmp_path / a) if a in ("scans", "only-sidecars") else a for a in args]
    if args and args[-1] == "X":
        args[-1] = str(scans)
    code, out = _run([*args, "--dossier", CODE, "--kind", "input", "--no-wait"], tmp_path / "data", **env)
    assert code == 2, out
    assert says in out, out


def test_log_lines_go_through_the_progress_console() -> None:
    from sohoa.cli import common

    root = logging.getLogger()
    before = list(root.handlers)
    with common.console.capture() as cap, common.logs_on_console():
        logging.getLogger("sohoa.ingest").warning("trang %d mờ", 3)
    assert "trang 3 mờ" in cap.get()  # printed by the console that draws the bar, above it
    assert root.handlers == before  # the usual handlers are back


def _watch_once(folder: Path, data: Path, *args: str) -> str:
    e = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_")}
    e.update(SOHOA_DATA_DIR=str(data), SOHOA_WORKER_THREADS="1", SOHOA_LOG_LEVEL="INFO", COLUMNS="250")
    p = subprocess.run([sys.executable, "-m", "sohoa.cli", "watch", str(folder), "--once", "--settle", "0.3",
                        "--dossier", CODE, "--kind", "input", *args], cwd=ROOT, env=e, capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout + p.stderr


def test_watch_keeps_a_duplicate_only_with_keep_duplicate(tmp_path: Path) -> None:
    from sohoa.context import Context
    from sohoa.settings import Settings

    folder, data = tmp_path / "may-quet", tmp_path / "data"
    folder.mkdir()
    blob = _scan(tmp_path, "tờ khai.png", 7).read_bytes()
    (folder / "tờ khai.png").write_bytes(blob)
    out = _watch_once(folder, data)
    assert "done 1, failed 0" in out, out
    (folder / "tờ khai lần 2.png").write_bytes(blob)  # the same scan dropped again
    out = _watch_once(folder, data)
    assert "done 1, failed 0" in out and "duplicate: already stored" in out, out
    (folder / "tờ khai lần 3.png").write_bytes(blob)
    out = _watch_once(folder, data, "--keep-duplicate")
    assert "done 1, failed 0" in out and "kept as a new version of" in out, out
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["tờ khai lần 2.png", "tờ khai lần 3.png",
                                                                   "tờ khai.png"]  # fmt: skip
    ctx = Context(Settings(data_dir=data))
    try:
        docs = [ctx.load_manifest(i) for i in ctx.manifest_ids()]
    finally:
        ctx.close()
    assert len(docs) == 2, docs  # the first, and the copy kept on purpose; the plain re-drop is not stored
    [first] = [m for m in docs if not m.duplicate_of]
    assert [m.duplicate_of for m in docs if m.duplicate_of] == [first.id]
