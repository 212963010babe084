"""OCR the pages of a document concurrently, in a process pool shared by every worker thread of the process.

* One pool per process (``SOHOA_PAGE_WORKERS`` processes, 0 = one per CPU core available to the process):
  two documents processed at once by two worker threads share it, so the cores are never oversubscribed.
  Tesseract is single-threaded in the pool (``OMP_THREAD_LIMIT=1``, OpenCV one thread): the parallelism is
  the pages'.
* Pages are fed lazily: at most ``2 × workers`` pages of one document are decoded and waiting or being
  OCR'd, so memory stays flat in the page count. Results come back in page order (a page finished early waits,
  small, until the pages before it are done), so the document's result is the one sequential processing gives.
* A child does all the page's CPU work (cleanup, OCR, post-correction, the blank-page check, the screen
  preview, the archival image's encoding, the text layer's words) and sends back only what is stored: text,
  hOCR, preview JPEG, the encoded page image and words, the page's facts.
* A scan's JPEG page (``SourcePage.lazy``) crosses as its JPEG bytes and is decoded in the child; other pages
  cross pickled. A child runs Tesseract through libtesseract (:func:`ocr.tesseract.use_library`: the model
  loaded once per process, not once per page; ``SOHOA_TESSERACT_LIBRARY=0`` runs the program) and warms its
  OCR up when it starts (:func:`warm_up`; ``SOHOA_PAGE_WARMUP=0`` skips it).
* Errors raised in a child come back as they are (an :class:`ocr.OcrError`, ``FileNotFoundError`` for a
  missing program). A child that dies (killed, out of memory) breaks the pool: the pool is replaced and the
  run fails with :class:`PagePoolBroken` (an unknown error: counted as an attempt, retried).
* ``SOHOA_PAGE_WORKERS=1`` — or ``ocr.process_page`` replaced at run time (tests) — runs the pages in the
  worker thread itself, one at a time.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ocr
from ocr import pipeline as _pipeline
from ocr.textlayer import Word, corrected_words
from sohoa.pdfa import EncodeSettings, PageImage, encode_page

if TYPE_CHECKING:
    from PIL import Image

    from workers.pages import SourcePage

PREVIEW_QUALITY = 75
# JPEG 2000 (OpenJPEG) costs 2–8 s a page, more than the page's OCR: over budget the worker lowers the JPEG
# quality instead
WORKER_ENCODING = EncodeSettings(jpx_fallback=False)
# ocr.blank.classify_blank takes ~1.6 s on a full A4 text page (30 % of its OCR): a page read as this many
# words at this mean confidence has content and is not looked at (bleed-through reads as few, doubtful words)
BLANK_CHECK_WORDS = 20
BLANK_CHECK_CONFIDENCE = 60.0
_ORIGINAL_PROCESS_PAGE = _pipeline.process_page


class PagePoolBroken(RuntimeError):
    """A page process died (killed, out of memory): the run is counted as an attempt and retried."""


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def page_workers(setting: int) -> int:
    """Processes of the page pool for ``SOHOA_PAGE_WORKERS`` (0 = cores)."""
    return setting if setting > 0 else available_cores()


# -- what crosses to a child and back -----------------------------------------------------------------------
@dataclass
class PageTask:
    source: int  # page number in the original file
    image: bytes  # the page, pickled (a PIL image: mode, size, palette, pixels)
    dpi: int | None  # given to ocr.process_page
    scan_dpi: int | None  # the page's own dpi (low-dpi flag)
    colour_mode: str
    settings: ocr.OcrSettings
    min_dpi_warning: int
    check_blank: bool
    budget: int | None = None  # bytes the page's image in the archival PDF should not exceed (None: no limit)
    jpeg: bool = False  # `image` is the page's JPEG file (decoded in the page process), not a pickled image

    @classmethod
    def make(
        cls,
        src: SourcePage,
        dpi: int | None,
        settings: ocr.OcrSettings,
        min_dpi_warning: int,
        check_blank: bool,
        budget: int | None = None,
    ) -> PageTask:
        """Take the page's image out of *src* (pickled once, then closed: the task holds the only copy). A page
        not decoded yet (``src.lazy``: a scan's JPEG) goes as its JPEG bytes: the page process decodes it, and
        the main process neither decodes nor pickles 9-25 MB of pixels per page."""
        jpeg = src.lazy and src.encoded is not None and src.encoded_filter == "DCTDecode"
        data = src.encoded if jpeg and src.encoded is not None else pickle.dumps(src.image, pickle.HIGHEST_PROTOCOL)
        src.image.close()
        return cls(src.number, data, dpi, src.dpi, src.colour_mode, settings, min_dpi_warning, check_blank, budget,
                   jpeg)  # fmt: skip

    def load_image(self) -> Image.Image:
        if not self.jpeg:
            image: Image.Image = pickle.loads(self.image)
            return image
        from PIL import Image

        from workers.pages import PageSourceError

        im = Image.open(io.BytesIO(self.image), formats=["JPEG"])
        try:
            im.load()
        except (OSError, SyntaxError, ValueError) as e:
            im.close()
            raise PageSourceError(f"page {self.source}: its JPEG image cannot be decoded: {e}") from e
        return im


@dataclass
class PageOutput:
    source: int
    text: str = ""
    raw_text: str = ""
    hocr: str = ""
    preview: bytes = b""
    # the page of the archival PDF: its image encoded (sohoa.pdfa.encode_page), the corrected words on the
    # hOCR boxes, the hOCR frame (pixels) and the page size (points)
    image: PageImage | None = None
    words: list[Word] = field(default_factory=list)
    frame: tuple[int, int] = (0, 0)
    size_pt: tuple[float, float] = (0.0, 0.0)
    model: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # PageInfo's fields but number and source_page
    blank: bool = False
    blank_reason: str = ""


def preview_jpeg(image: Any, long_side: int | None = None, quality: int = PREVIEW_QUALITY) -> bytes:
    """The cleaned page (a numpy array, grey or BGR) at screen resolution, as JPEG."""
    import cv2

    from ocr.stages import downscale
    from sohoa.context import PREVIEW_LONG_SIDE

    image, _ = downscale(image, long_side or PREVIEW_LONG_SIDE)
    ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
    return jpg.tobytes() if ok else b""


def _blank(image: Any, dpi: int) -> tuple[bool, str]:
    import cv2

    from ocr.blank import classify_blank

    v = classify_blank(image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dpi)
    return v.blank, v.reason


def library_wanted() -> bool:
    """Whether page processes run Tesseract through libtesseract (``SOHOA_TESSERACT_LIBRARY``, default on)."""
    return os.environ.get("SOHOA_TESSERACT_LIBRARY", "1").strip().lower() not in ("0", "false", "no", "off")


def _use_library() -> None:
    """Tesseract through libtesseract in this process (the model loaded once, not per page: ~0.13 s a page);
    ``SOHOA_TESSERACT_LIBRARY=0`` keeps running the program for every page."""
    global _library_checked
    if not _library_checked:
        _library_checked = True
        if library_wanted():
            from ocr import tesseract

            tesseract.use_library(True)


_library_checked = False


def ocr_page(task: PageTask) -> PageOutput:
    """All the CPU work of one page (in a child of the pool, or in the worker thread)."""
    _use_library()
    t = time.perf_counter()
    image = task.load_image()
    try:
        res = ocr.process_page(image, task.dpi, task.settings)
    finally:
        image.close()
    if task.check_blank and (res.word_count < BLANK_CHECK_WORDS or res.mean_confidence < BLANK_CHECK_CONFIDENCE):
        blank, reason = _blank(res.image, res.dpi)
        if blank:
            return PageOutput(task.source, blank=True, blank_reason=reason)
    info = {
        "dpi": res.dpi,
        "colour_mode": task.colour_mode,
        "width": res.width,
        "height": res.height,
        "mean_confidence": round(res.mean_confidence, 2),
        "low_confidence": res.low_confidence,
        "word_count": res.word_count,
        "rotation": res.rotation,
        "skew": round(res.skew, 2),
        "low_dpi": (task.scan_dpi or res.dpi) < task.min_dpi_warning,  # res.dpi: after upscaling
        "text_coverage": res.text_coverage,
        "has_seal": res.has_seal,
        "has_signature": res.has_signature,
        "ink_regions": res.ink_regions,
        "checkboxes": res.checkboxes,
        "tables": res.tables,
    }
    preview = preview_jpeg(res.image)
    encoded = encode_page(res.image, None, task.budget, WORKER_ENCODING)
    h, w = res.image.shape[:2]
    dpi = res.dpi or 300
    words = corrected_words(res.hocr, res.text)
    info["seconds"] = round(time.perf_counter() - t, 3)
    return PageOutput(task.source, res.text, res.raw_text, res.hocr, preview, encoded, words, (w, h),
                      (w * 72 / dpi, h * 72 / dpi), res.model, dict(res.timings), info)  # fmt: skip


def warm_up(settings: ocr.OcrSettings | None = None) -> float:
    """OCR a small made-up page in this process, so that the first real page does not pay for the imports,
    the lexicon and Tesseract's model (~2 s, 5 s on a busy machine). Never raises; returns the seconds."""
    t = time.perf_counter()
    try:
        from PIL import Image, ImageDraw

        from sohoa.demo import TEXTS, font

        img = Image.new("L", (1500, 420), 255)
        draw, f = ImageDraw.Draw(img), font(54)
        for k, line in enumerate(next(iter(TEXTS.values()))[:3]):
            draw.text((60, 50 + 120 * k), line, font=f, fill=20)
        ocr_page(PageTask(0, pickle.dumps(img), 300, 300, "L", settings or ocr.OcrSettings(), 0, False))
    except Exception as e:  # noqa: BLE001 - a warm-up only: the first page will report any real problem
        import logging

        logging.getLogger("sohoa.worker").warning("OCR warm-up failed (%s: %s)", type(e).__name__, e)
    return time.perf_counter() - t


# -- the pool ----------------------------------------------------------------------------------------------
_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def _child_init() -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"  # Tesseract: one thread per page, the pages are the parallelism
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a dependency
        pass
    if os.environ.get("SOHOA_PAGE_WARMUP", "1") != "0":
        warm_up()


def _nap(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def start_pool(workers: int) -> float:
    """Start the page processes now (each warms up, :func:`warm_up`) rather than at the first document;
    returns the seconds it took."""
    t = time.perf_counter()
    pool = shared_pool(workers)
    list(pool.map(_nap, [0.3] * workers))  # each process takes one once it is up
    return time.perf_counter() - t


def shared_pool(workers: int) -> ProcessPoolExecutor:
    """The process's page pool with *workers* processes (made on first use, remade if broken or resized)."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != workers or getattr(_pool, "_broken", False):
            old = _pool
            mp = multiprocessing.get_context("forkserver")  # not fork: the worker process has threads
            mp.set_forkserver_preload(["workers.pagepool"])
            _pool = ProcessPoolExecutor(workers, mp_context=mp, initializer=_child_init)
            _pool_size = workers
            if old is not None:
                old.shutdown(wait=False, cancel_futures=True)
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the page processes (tests, benches; a worker process leaves it to exit)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def pool_pids() -> list[int]:
    """Process ids of the page pool's children (memory measurements)."""
    with _lock:
        procs = getattr(_pool, "_processes", None) or {}
        return list(procs)


class PageRunner:
    """Runs a document's pages on the shared pool (or inline), yielding results in page order."""

    def __init__(self, workers: int, window: int | None = None) -> None:
        self.workers = max(1, workers)
        self.window = window or 2 * self.workers
        self.inline = self.workers == 1 or ocr.process_page is not _ORIGINAL_PROCESS_PAGE

    def run(self, tasks: Iterable[PageTask], check: Callable[[], None], poll_s: float = 1.0) -> Iterator[PageOutput]:
        """OCR *tasks* (consumed lazily); *check* is called while waiting (the lease) and may raise to stop."""
        if self.inline:
            for task in tasks:
                yield ocr_page(task)
            return
        pool = shared_pool(self.workers)
        inflight: deque[tuple[int, Future[PageOutput]]] = deque()
        it = iter(tasks)
        more = True
        try:
            while True:
                while more and len(inflight) < self.window:
                    nxt = next(it, None)
                    if nxt is None:
                        more = False
                        break
                    try:
                        inflight.append((nxt.source, pool.submit(ocr_page, nxt)))
                    except BrokenProcessPool as e:  # RuntimeError when shut down
                        _discard(pool)
                        raise PagePoolBroken(f"the page processes stopped: {e}") from e
                if not inflight:
                    return
                source, head = inflight[0]
                while True:
                    try:
                        out = head.result(timeout=poll_s)
                        break
                    except FutureTimeout:
                        check()
                    except BrokenProcessPool as e:
                        _discard(pool)
                        raise PagePoolBroken(
                            f"a page process died (killed or out of memory) while OCR-ing page {source}: {e}"
                        ) from e
                inflight.popleft()
                yield out
        finally:
            for _, f in inflight:
                f.cancel()
