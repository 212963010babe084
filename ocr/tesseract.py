"""The one place where the external ``tesseract`` program is run, through pytesseract.

``pytesseract.pytesseract.run_tesseract`` runs the program ONCE per page and that one run writes the text,
the hOCR and the PDF together (``-c tessedit_create_txt=1 -c tessedit_create_hocr=1 -c
tessedit_create_pdf=1``; the bare config names ``txt hocr pdf`` would need a ``configs/`` folder beside
the model, which the tessdata_best folder lacks). Its errors become :class:`ocr.OcrError`.
pytesseract starts the program with this process's environment: ``OMP_THREAD_LIMIT=1`` is set in it
(one Tesseract thread per page; pages run in parallel instead).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pytesseract import pytesseract as pt

from ocr.errors import OcrError

log = logging.getLogger("sohoa.ocr")

SYSTEM_TESSDATA = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata")


def default_tessdata_dir() -> Path:
    env = os.environ.get("SOHOA_TESSDATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sohoa" / "tessdata"


def _link_support_files(folder: Path) -> None:
    """The PDF renderer needs ``pdf.ttf`` beside the model: link Debian's when it is missing."""
    if (folder / "pdf.ttf").exists():
        return
    for d in SYSTEM_TESSDATA:
        if (Path(d) / "pdf.ttf").is_file():
            try:
                (folder / "pdf.ttf").symlink_to(Path(d) / "pdf.ttf")
            except OSError:
                log.warning("cannot link pdf.ttf into %s: searchable PDFs may fail", folder)
            return


def resolve_model(settings: Any = None, lang: str | None = None) -> tuple[str, str]:
    """Return (tessdata dir, description) for the model to run, preferring tessdata_best; logs it once.

    *settings* is an :class:`ocr.OcrSettings` (its ``tessdata_dir`` and ``lang`` are used), a tessdata
    folder, or None (env ``SOHOA_TESSDATA_DIR`` or ``~/.local/share/sohoa/tessdata``, else Debian's).
    """
    if settings is None or isinstance(settings, str | os.PathLike):
        folder, lang = (str(settings) if settings is not None else None), lang or "vie"
    else:
        folder, lang = settings.tessdata_dir, lang or settings.lang
    return _resolve(str(Path(folder) if folder else default_tessdata_dir()), lang)


@lru_cache(maxsize=8)
def _resolve(tessdata_dir: str, lang: str) -> tuple[str, str]:
    if shutil.which("tesseract") is None:
        raise OcrError("tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-vie)")
    best = Path(tessdata_dir)
    if (best / f"{lang}.traineddata").is_file():
        _link_support_files(best)
        desc = f"{lang} (tessdata_best int, {best})"
        log.info("OCR model: %s", desc)
        return str(best), desc
    for d in SYSTEM_TESSDATA:
        if (Path(d) / f"{lang}.traineddata").is_file():
            desc = f"{lang} (Debian tessdata, {d})"
            log.warning("best model not found in %s; falling back to %s (run scripts/setup.sh)", best, desc)
            return d, desc
    raise OcrError(f"no Tesseract model for {lang!r}: install tesseract-ocr-{lang} or run scripts/setup.sh")


@dataclass
class TesseractOutput:
    text: str
    hocr: str
    pdf: bytes


def _run(src: Path, base: Path, args: list[str], timeout_s: float) -> None:
    """``tesseract SRC BASE ARGS…`` through pytesseract, errors as :class:`OcrError`."""
    os.environ["OMP_THREAD_LIMIT"] = "1"  # read by the child; pytesseract passes os.environ
    try:
        pt.run_tesseract(str(src), str(base), extension="", lang=None, config=shlex.join(args),
                         timeout=timeout_s)  # fmt: skip
    except pt.TesseractNotFoundError as e:
        raise OcrError("tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-vie)") from e
    except pt.TesseractError as e:
        raise OcrError(f"tesseract failed ({e.status}): {str(e.message)[-500:]}") from e
    except RuntimeError as e:  # pytesseract's time-out
        if "timeout" in str(e).lower():
            raise OcrError(f"tesseract timed out after {timeout_s:.0f}s") from e
        raise OcrError(f"tesseract failed: {e}") from e


def run_tesseract(
    image: np.ndarray,
    dpi: int,
    tessdata: str,
    lang: str = "vie",
    psm: int = 3,
    oem: int = 1,
    timeout_s: float = 300,
    configs: tuple[str, ...] = ("txt", "hocr", "pdf"),
    extra: tuple[str, ...] = ("-c", "preserve_interword_spaces=1"),
    text_only_pdf: bool = False,
) -> TesseractOutput:
    """OCR *image* once, producing text, hOCR and a one-page searchable PDF together.

    With *text_only_pdf* the PDF holds only the invisible text layer (the caller adds the image).
    """
    with tempfile.TemporaryDirectory(prefix=f"sohoa-tess-{os.getpid()}-") as tmp:
        src = Path(tmp) / "page.pgm"  # uncompressed: 4× faster to write than PNG
        if not cv2.imwrite(str(src), image):
            raise OcrError("cannot write the page image for tesseract")
        base = Path(tmp) / "out"
        # -c flags instead of config-file names: the tessdata_best folder has no configs/ folder
        create = [f"tessedit_create_{c}=1" for c in configs]
        args = [
            "--tessdata-dir", tessdata, "-l", lang, "--psm", str(psm), "--oem", str(oem), "--dpi", str(dpi), *extra,
            *(("-c", "textonly_pdf=1") if text_only_pdf and "pdf" in configs else ()),
            *[arg for c in create for arg in ("-c", c)],
        ]  # fmt: skip
        _run(src, base, args, timeout_s)

        def read(ext: str) -> bytes:
            p = base.with_suffix("." + ext)
            return p.read_bytes() if p.exists() else b""

        return TesseractOutput(
            text=read("txt").decode("utf-8", errors="replace"),
            hocr=read("hocr").decode("utf-8", errors="replace"),
            pdf=read("pdf"),
        )


def _osd_dir(tessdata: str) -> str:
    if (Path(tessdata) / "osd.traineddata").is_file():
        return tessdata
    for d in SYSTEM_TESSDATA:
        if (Path(d) / "osd.traineddata").is_file():
            return d
    raise OcrError("no osd.traineddata: install tesseract-ocr-osd or run scripts/setup.sh")


def run_osd(image: np.ndarray, tessdata: str, dpi: int = 150, timeout_s: float = 60) -> tuple[int, float]:
    """Tesseract orientation detection (``--psm 0``): (degrees to rotate clockwise, confidence); (0, 0.0) if unknown."""
    with tempfile.TemporaryDirectory(prefix=f"sohoa-osd-{os.getpid()}-") as tmp:
        src = Path(tmp) / "page.pgm"
        cv2.imwrite(str(src), image)
        base = Path(tmp) / "out"
        try:
            _run(src, base, ["--tessdata-dir", _osd_dir(tessdata), "--psm", "0", "--dpi", str(dpi)], timeout_s)
        except OcrError:
            return 0, 0.0
        osd = base.with_suffix(".osd")
        report = osd.read_text(errors="replace") if osd.exists() else ""
    rotate, conf = 0, 0.0
    for line in report.splitlines():
        if line.startswith("Rotate:"):
            rotate = int(line.split(":")[1])
        elif line.startswith("Orientation confidence:"):
            conf = float(line.split(":")[1])
    return rotate, conf
