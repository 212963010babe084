"""Same content uploaded again: a per-page perceptual hash, compared within a dossier.

The same file is caught by its sha256 (:mod:`ingest.service`). The same scan saved again (re-encoded PDF,
JPEG at another quality, another render resolution) or turned by 90/180/270° has other bytes but the same
pages: each page is read small (a PDF page that is one scanned image thumbnailed from it, any other PDF
page rendered at 36 dpi, image files thumbnailed; grey), normalised to 64×64 and hashed by its low DCT
frequencies (16×16 block minus the DC term: 255 bits, set where above the median) — a pHash finer than
the usual 8×8 one so that two pages of the same form (same layout, other text) stay apart. A page matches
when one of the four right-angle turns of its hash is within :data:`MATCH_BITS` of a stored hash, and a
close look confirms it: both pages at 100 dpi, binarised, must differ by less than :data:`SAME_MISS` ink
pixels (±1 px) — a hash alone cannot tell two filled-in copies of one form apart (measured: 12 bits),
while one other digit in a line is 36 pixels and a re-encoded or turned copy 0–2 (tests/test_duplicates.py).

Where the lookup lives: in the manifests (``page_hashes``), read for the documents of the same dossier
only (the index lists them by dossier code on SQLite and on Elasticsearch alike), so it costs one listing
and a few manifest reads per upload whatever the size of the archive, and needs no new table.

Check then store, one upload of a dossier at a time (:func:`dossier_locks`): two uploads of the same file at
the same moment (``sohoa ingest --jobs 2``, two API calls, two API servers) would otherwise both find nothing
and both be stored. The lock of a dossier is a lease (:mod:`sohoa.leases`) named ``dossier:{code}`` in the
lease store beside the index — a SQLite table in the data dir on the embedded default (taken in one
transaction: threads and processes of one PC), an Elasticsearch document written with a compare-and-set
when scaled out — held from the duplicate check until the new documents are in the index. The slow part
(hashing the pages, comparing them with the dossier's documents stored so far) is done before taking it;
under the lock only the documents stored since then are compared.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from sohoa.errors import LeaseLost, TransientError
from sohoa.leases import Lease, LeaseKeeper, LeaseStore, holder_dead, process_owner

if TYPE_CHECKING:
    from sohoa.context import Context

log = logging.getLogger("sohoa.dedupe")

RENDER_DPI = 36
SIDE = 64
BLOCK = 16
MATCH_BITS = 40  # of 255; measured: re-encodings and turns ≤ 4, another filled-in copy of one form 12


def _small(image: Image.Image) -> np.ndarray:
    g = np.asarray(image.convert("L"), dtype=np.float32)
    return cv2.resize(g, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def _bits(small: np.ndarray) -> int:
    d = cv2.dct(small)[:BLOCK, :BLOCK].flatten()[1:]
    v = 0
    for b in d > np.median(d):
        v = (v << 1) | int(b)
    return v


def image_hashes(image: Image.Image) -> list[str]:
    """The page's hash as stored (index 0) and its hashes turned by 90, 180, 270° (hex)."""
    s = _small(image)
    return [f"{_bits(np.ascontiguousarray(np.rot90(s, k))):064x}" for k in range(4)]


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _pages(path: Path, media_type: str) -> Iterator[Image.Image]:
    if media_type == "application/pdf":
        from sohoa import formats
        from sohoa.settings import DEFAULT_MAX_PAGE_PIXELS

        # as the worker reads them (sohoa.formats): a page that is one scanned image is that image — a JPEG
        # thumbnailed straight from its DCT (Pillow's draft: decoded at 1/2–1/8 scale), several times less
        # work than rendering it with pdftoppm (45 ms a page of CPU at upload) — any other page rendered at
        # RENDER_DPI
        for page in formats.iter_pages(path, media_type, RENDER_DPI, DEFAULT_MAX_PAGE_PIXELS):
            frame = page.image
            frame.thumbnail((400, 400))
            yield frame if frame.mode == "L" else frame.convert("L")
        return
    with Image.open(path) as im:
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            frame = im.convert("L")
            frame.thumbnail((400, 400))
            yield frame


def page_hashes(path: Path, media_type: str) -> list[list[str]]:
    """Per page: [stored hash, turned 90°, 180°, 270°]; empty when the pages cannot be rendered (the check
    is then skipped: a hash is an aid, never a reason to refuse an upload)."""
    try:
        return [image_hashes(p) for p in _pages(path, media_type)]
    except Exception as e:  # noqa: BLE001 - see the docstring
        log.warning("page hashes not computed (%s): duplicate check by content skipped", e)
        return []


def same_document(new: list[list[str]], old: list[str]) -> bool:
    """Every page of the upload matches the stored document's page at the same place, in one same turn."""
    if not new or len(new) != len(old):
        return False
    return any(all(distance(p[k], o) <= MATCH_BITS for p, o in zip(new, old, strict=True)) for k in range(4))


def near_pages(new: list[list[str]], old: list[str]) -> list[tuple[int, int, int]]:
    """(page of the upload, page of the stored document, distance) for pages that look alike (1-based)."""
    out = []
    for i, p in enumerate(new, 1):
        for j, o in enumerate(old, 1):
            d = min(distance(t, o) for t in p)
            if d <= MATCH_BITS:
                out.append((i, j, d))
                break
    return out


# -- the close look: a hash match between pages of one form is confirmed on the pages themselves ---------
LOOK_DPI = 100
MAX_SHIFT = 6  # pixels at LOOK_DPI (1.5 mm)
SAME_MISS = 12  # ink pixels (at LOOK_DPI, ≈ 0.8 mm²: part of one letter) found in one page only: pages differ


def page_image(path: Path, media_type: str, index: int) -> np.ndarray:
    """Page *index* (0-based) in grey at :data:`LOOK_DPI`, for :func:`ink_difference`."""
    if media_type == "application/pdf":
        from pdf2image import convert_from_path

        n = index + 1
        return np.asarray(convert_from_path(str(path), dpi=LOOK_DPI, grayscale=True, first_page=n, last_page=n)[0])
    with Image.open(path) as im:
        dpi = float(im.info.get("dpi", (300, 300))[0]) or 300.0
        im.seek(index)
        frame = im.convert("L")
        size = (max(1, round(frame.width * LOOK_DPI / dpi)), max(1, round(frame.height * LOOK_DPI / dpi)))
        return np.asarray(frame.resize(size, Image.Resampling.LANCZOS))


def ink_difference(new: np.ndarray, old: np.ndarray, turn: int) -> int:
    """Ink pixels present in one page and absent (±1 px) from the other, *new* turned by *turn* × 90° and
    shifted onto *old* (phase correlation: renders of a turned page land a pixel or two apart). A count,
    not a share, so that one other name or digit on a form with the same printed text counts."""
    a = np.ascontiguousarray(np.rot90(new, turn))
    a = cv2.resize(a, (old.shape[1], old.shape[0]), interpolation=cv2.INTER_AREA)
    ia = np.asarray(cv2.threshold(a, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1], np.uint8)
    ib = np.asarray(cv2.threshold(old, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1], np.uint8)
    (dx, dy), _ = cv2.phaseCorrelate(ia.astype(np.float64), ib.astype(np.float64))
    k = np.ones((3, 3), np.uint8)
    db = np.asarray(cv2.dilate(ib, k), np.uint8)
    best = int(ia.sum() + ib.sum())
    for sx, sy in {(0.0, 0.0), (round(dx), round(dy)), (-round(dx), -round(dy))}:
        if abs(sx) > MAX_SHIFT or abs(sy) > MAX_SHIFT:
            continue
        m = np.array([[1, 0, sx], [0, 1, sy]], np.float32)
        sa = np.asarray(cv2.warpAffine(ia, m, (ia.shape[1], ia.shape[0]), flags=cv2.INTER_NEAREST), np.uint8)
        da = np.asarray(cv2.dilate(sa, k), np.uint8)
        best = min(best, int((sa & (1 - db)).sum()) + int((ib & (1 - da)).sum()))
    return best


# -- one upload of a dossier at a time: check, then store ------------------------------------------------
LOCK_WAIT_S = 300.0  # an upload waits this long for another upload of its dossier, then answers "retry later"


def dossier_lock_name(code: str) -> str:
    return f"dossier:{code}"


def _take(store: LeaseStore, code: str, owner: str, ttl_s: float, wait_s: float) -> Lease:
    """The lock of dossier *code*, waiting while another upload holds it (a dead holder's is taken at once)."""
    deadline = time.monotonic() + wait_s
    delay = 0.01
    while True:
        lease = store.acquire(dossier_lock_name(code), owner, ttl_s, dead=holder_dead)
        if lease is not None:
            return lease
        if time.monotonic() >= deadline:
            holder = store.get(dossier_lock_name(code))
            raise TransientError(
                f"hồ sơ {code} đang được một lượt tải lên khác kiểm tra và lưu ({holder.owner if holder else '?'}); "
                f"thử lại sau (another upload of this dossier has held it for over {wait_s:.0f} s)",
                backend="index",
                retry_after_s=10,
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)


@contextmanager
def dossier_locks(ctx: Context, codes: Iterable[str], wait_s: float = LOCK_WAIT_S) -> Iterator[Callable[[], None]]:
    """Hold the locks of the dossiers *codes* (see the module docstring) in sorted order (two batches of
    several dossiers cannot wait for each other), renewed by a heartbeat (``SOHOA_LEASE_TTL_S``; a killed
    process's lock is taken by the next upload on this host at once, on another host once it expired).
    Yields ``check()``, which raises :class:`TransientError` once a lock was lost: nothing may be stored then.
    Each call is its own owner (not reentrant)."""
    owner = f"{process_owner()}:upload-{uuid.uuid4().hex[:8]}"
    ttl = ctx.settings.lease_ttl_s
    keepers: list[LeaseKeeper] = []

    def check() -> None:
        for k in keepers:
            try:
                k.check()
            except LeaseLost as e:
                raise TransientError(f"dossier lock lost during the upload ({e}): retry", backend="index") from e

    try:
        for code in sorted(set(codes)):
            keepers.append(LeaseKeeper(ctx.leases, _take(ctx.leases, code, owner, ttl, wait_s), ttl))
        yield check
    finally:
        for k in reversed(keepers):
            k.release()
