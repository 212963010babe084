"""The hot folder: a scanner drops files into a folder; each is ingested once it is complete (its size and
time unchanged over two looks), then moved to ``done/`` or to ``failed/`` with a ``.reason.txt`` beside it.

Polling, so it works on network shares where inotify sees nothing. A restart cannot ingest a file twice:
a file still in the folder after a crash is submitted again, and the store recognises it by its sha256
(the answer is the existing document, not a second copy)."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sohoa.hotfolder")

SCANS = {".pdf", ".tif", ".tiff", ".jpg", ".jpeg", ".png"}
SIDECARS = {".txt", ".md", ".db", ".ini", ".xml", ".json"}


@dataclass
class Outcome:
    ok: bool
    message: str  # the reason when not ok; document ids when ok


Submit = Callable[[Path], Outcome]


class HotFolder:
    def __init__(self, folder: Path, submit: Submit, settle_s: float = 1.0) -> None:
        self.folder = folder
        self.done = folder / "done"
        self.failed = folder / "failed"
        for d in (self.done, self.failed):
            d.mkdir(parents=True, exist_ok=True)
        self.submit = submit
        self.settle_s = settle_s
        self._seen: dict[Path, tuple[int, float, float]] = {}  # path → (size, mtime, since)
        self.counts = {"done": 0, "failed": 0, "ignored": 0}

    def _ready(self) -> list[Path]:
        now = time.monotonic()
        ready = []
        for p in sorted(self.folder.iterdir()):
            if not p.is_file() or p.name.startswith((".", "~")) or p.suffix.lower() in (".part", ".tmp"):
                continue
            if p.suffix.lower() not in SCANS:
                if p.suffix.lower() in SIDECARS or p.name.lower() == "thumbs.db":
                    continue  # a scanner's sidecar: left where it is, not counted as a failure
                self._move(p, self.failed, f"không phải bản quét (PDF, TIFF, JPEG, PNG): {p.name}")
                continue
            st = p.stat()
            key = (st.st_size, st.st_mtime, now)
            old = self._seen.get(p)
            if old is None or old[:2] != key[:2] or st.st_size == 0:
                self._seen[p] = key
                continue
            if now - old[2] >= self.settle_s:
                ready.append(p)
        return ready

    def _move(self, p: Path, to: Path, reason: str = "", said: str = "") -> None:
        target = to / p.name
        i = 1
        while target.exists():
            target = to / f"{p.stem} ({i}){p.suffix}"
            i += 1
        shutil.move(str(p), target)
        self._seen.pop(p, None)
        if reason:
            target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
            self.counts["failed"] += 1
            log.warning("hot folder: %s → failed/ (%s)", p.name, reason)
        else:
            self.counts["done"] += 1
            log.info("hot folder: %s → done/%s", p.name, f" ({said})" if said else "")

    def scan_once(self) -> int:
        """Submit every complete file once; returns how many were handled."""
        handled = 0
        for p in self._ready():
            try:
                outcome = self.submit(p)
            except Exception as e:  # noqa: BLE001 - a transient failure: the file stays for the next look
                log.warning("hot folder: %s not submitted (%s); will retry", p.name, e)
                self._seen.pop(p, None)
                continue
            if outcome.ok:
                self._move(p, self.done, said=outcome.message)
            else:
                self._move(p, self.failed, outcome.message)
            handled += 1
        return handled

    def run(self, stop: Callable[[], bool], interval_s: float = 1.0) -> None:
        while not stop():
            self.scan_once()
            time.sleep(interval_s)
