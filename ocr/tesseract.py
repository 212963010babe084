"""The one place where the external ``tesseract`` program is run, through pytesseract.

``pytesseract.pytesseract.run_tesseract`` runs the program ONCE per page and that one run writes the text,
the hOCR and the PDF together (``-c tessedit_create_txt=1 -c tessedit_create_hocr=1 -c
tessedit_create_pdf=1``; the bare config names ``txt hocr pdf`` would need a ``configs/`` folder beside
the model, which the tessdata_best folder lacks). Its errors become :class:`ocr.OcrError`.
pytesseract starts the program with this process's environment: ``OMP_THREAD_LIMIT=1`` is set in it
(one Tesseract thread per page; pages run in parallel instead).

A page process of the worker's pool (:mod:`workers.pagepool`) calls :func:`use_library` instead: the
same run goes through ``libtesseract``'s C API in the process itself (``TessBaseAPIProcessPages`` with
the text, hOCR and PDF renderers, as the ``tesseract`` program does), so the model is loaded once per
process and configuration instead of once per page (~0.13 s of a ~1 s page). The outputs are the
program's, byte for byte (tests/test_pipeline_parallel.py compares them). OSD keeps the program.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging
import os
import shlex
import shutil
import tempfile
import threading
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


# -- libtesseract in this process (page pool children) -------------------------------------------------------
_library = False  # set by use_library(): run_tesseract goes through the C API
_local = threading.local()  # per thread: {(tessdata, lang, oem, vars): _Api}
_API_CACHE = 4  # configurations kept loaded per thread (the page's reading, the strip checks)
_all: list[_Api] = []  # every open one, ended at exit (the library warns of leaks otherwise)
_all_lock = threading.Lock()


def use_library(on: bool = True) -> bool:
    """Run Tesseract through libtesseract in this process from now on (False: the program again).
    Returns whether the library is usable (when it is not, the program is kept)."""
    global _library
    _library = bool(on) and _lib() is not None
    return _library


def _one_thread() -> None:
    """One OpenMP thread for Tesseract, program or library: the pages are the parallelism. Without it every
    reading spreads over all cores, and pages read in parallel oversubscribe them (measured: a decision page
    2.4 → 6.7 s with two pages at once on 2 cores)."""
    os.environ["OMP_THREAD_LIMIT"] = "1"


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("tesseract") or "libtesseract.so.5"
    _one_thread()  # read once, when libgomp loads with the library
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        log.info("libtesseract not found: the tesseract program is run for every page")
        return None
    p, s, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "TessBaseAPICreate": (p, []),
        "TessBaseAPIDelete": (None, [p]),
        "TessBaseAPIEnd": (None, [p]),
        "TessBaseAPIInit4": (i, [p, s, s, i, p, i, ctypes.POINTER(s), ctypes.POINTER(s), ctypes.c_size_t, i]),
        "TessBaseAPISetVariable": (i, [p, s, s]),
        "TessBaseAPISetPageSegMode": (None, [p, i]),
        "TessBaseAPISetOutputName": (None, [p, s]),
        "TessBaseAPIGetDatapath": (s, [p]),
        "TessBaseAPIProcessPages": (i, [p, s, s, i, p]),
        "TessTextRendererCreate": (p, [s]),
        "TessHOcrRendererCreate": (p, [s]),
        "TessPDFRendererCreate": (p, [s, s, i]),
        "TessResultRendererInsert": (None, [p, p]),
        "TessDeleteResultRenderer": (None, [p]),
    }
    try:
        for fn, (res, args) in sigs.items():
            f = getattr(lib, fn)
            f.restype, f.argtypes = res, args
    except AttributeError as e:
        log.info("libtesseract lacks %s: the tesseract program is run for every page", e)
        return None
    return lib


class _Api:
    """One ``TessBaseAPI`` initialised as ``tesseract … --tessdata-dir D -l L --oem O -c k=v …`` would be."""

    def __init__(self, tessdata: str, lang: str, oem: int, variables: tuple[tuple[str, str], ...]) -> None:
        lib = _lib()
        assert lib is not None
        self.lib = lib
        self.handle = lib.TessBaseAPICreate()
        n = len(variables)
        names = (ctypes.c_char_p * max(1, n))(*[k.encode() for k, _ in variables])
        values = (ctypes.c_char_p * max(1, n))(*[v.encode() for _, v in variables])
        if lib.TessBaseAPIInit4(self.handle, tessdata.encode(), lang.encode(), oem, None, 0, names, values, n, 0):
            lib.TessBaseAPIDelete(self.handle)
            self.handle = None
            raise OcrError(f"tesseract failed: libtesseract cannot load the model {lang!r} from {tessdata}")
        for k, v in variables:  # as the program does after Init (SetVariablesFromCLArgs)
            lib.TessBaseAPISetVariable(self.handle, k.encode(), v.encode())
        # its notes ("Detected 12 diacritics", "Estimating resolution") are dropped, as pytesseract drops
        # the program's stderr when it succeeds
        lib.TessBaseAPISetVariable(self.handle, b"debug_file", os.devnull.encode())
        with _all_lock:
            _all.append(self)
        self.datapath = lib.TessBaseAPIGetDatapath(self.handle) or tessdata.encode()

    def process(self, src: Path, base: Path, psm: int, dpi: int, configs: tuple[str, ...], textonly: bool,
                timeout_s: float) -> None:  # fmt: skip
        lib, h = self.lib, self.handle
        lib.TessBaseAPISetPageSegMode(h, psm)
        lib.TessBaseAPISetVariable(h, b"user_defined_dpi", str(dpi).encode())
        lib.TessBaseAPISetVariable(h, b"textonly_pdf", b"1" if textonly else b"0")
        out = str(base).encode()
        lib.TessBaseAPISetOutputName(h, out)
        # the program's order of renderers (PreloadRenderers): hOCR, PDF, text
        made = [
            r
            for c, r in (
                ("hocr", lambda: lib.TessHOcrRendererCreate(out)),
                ("pdf", lambda: lib.TessPDFRendererCreate(out, self.datapath, int(textonly))),
                ("txt", lambda: lib.TessTextRendererCreate(out)),
            )
            if c in configs
            for r in [r()]
        ]
        if not made or not all(made):
            for r in made:
                if r:
                    lib.TessDeleteResultRenderer(r)
            raise OcrError("libtesseract cannot create its output renderers")
        for r in made[1:]:
            lib.TessResultRendererInsert(made[0], r)  # the first renderer owns (and deletes) the others
        try:
            ok = lib.TessBaseAPIProcessPages(h, str(src).encode(), None, int(timeout_s * 1000), made[0])
        finally:
            lib.TessDeleteResultRenderer(made[0])
        if not ok:
            raise OcrError(f"tesseract (library) failed or timed out after {timeout_s:.0f}s on {src.name}")

    def close(self) -> None:
        with _all_lock:
            if self in _all:
                _all.remove(self)
        if self.handle:
            self.lib.TessBaseAPIEnd(self.handle)
            self.lib.TessBaseAPIDelete(self.handle)
            self.handle = None


@atexit.register
def _close_all() -> None:
    with _all_lock:
        apis = list(_all)
    for api in apis:
        api.close()


def _api(tessdata: str, lang: str, oem: int, variables: tuple[tuple[str, str], ...]) -> _Api:
    cache: dict[tuple[Any, ...], _Api] = getattr(_local, "apis", None) or {}
    _local.apis = cache
    key = (tessdata, lang, oem, variables)
    api = cache.pop(key, None)
    if api is None:
        while len(cache) >= _API_CACHE:
            cache.pop(next(iter(cache))).close()
        api = _Api(tessdata, lang, oem, variables)
    cache[key] = api  # most recently used last
    return api


def _variables(extra: tuple[str, ...]) -> tuple[tuple[str, str], ...] | None:
    """The ``-c name=value`` pairs of *extra*; None when it holds anything else (the program is run)."""
    out: list[tuple[str, str]] = []
    it = iter(extra)
    for flag in it:
        value = next(it, None)
        if flag != "-c" or value is None or "=" not in value:
            return None
        k, v = value.split("=", 1)
        out.append((k, v))
    return tuple(out)


def _run(src: Path, base: Path, args: list[str], timeout_s: float) -> None:
    """``tesseract SRC BASE ARGS…`` through pytesseract, errors as :class:`OcrError`."""
    _one_thread()  # read by the child: pytesseract passes os.environ
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
        variables = _variables(extra) if _library else None
        if variables is not None:
            textonly = text_only_pdf and "pdf" in configs
            _api(tessdata, lang, oem, variables).process(src, base, psm, dpi, configs, textonly, timeout_s)
        else:
            _run_program(src, base, tessdata, lang, psm, oem, dpi, extra, configs, text_only_pdf, timeout_s)

        def read(ext: str) -> bytes:
            p = base.with_suffix("." + ext)
            return p.read_bytes() if p.exists() else b""

        return TesseractOutput(
            text=read("txt").decode("utf-8", errors="replace"),
            hocr=read("hocr").decode("utf-8", errors="replace"),
            pdf=read("pdf"),
        )


def _run_program(
    src: Path,
    base: Path,
    tessdata: str,
    lang: str,
    psm: int,
    oem: int,
    dpi: int,
    extra: tuple[str, ...],
    configs: tuple[str, ...],
    text_only_pdf: bool,
    timeout_s: float,
) -> None:
    """The ``tesseract`` program on *src*, writing *base*.txt/.hocr/.pdf as *configs* say."""
    # -c flags instead of config-file names: the tessdata_best folder has no configs/ folder
    create = [f"tessedit_create_{c}=1" for c in configs]
    args = [
        "--tessdata-dir", tessdata, "-l", lang, "--psm", str(psm), "--oem", str(oem), "--dpi", str(dpi), *extra,
        *(("-c", "textonly_pdf=1") if text_only_pdf and "pdf" in configs else ()),
        *[arg for c in create for arg in ("-c", c)],
    ]  # fmt: skip
    _run(src, base, args, timeout_s)


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
