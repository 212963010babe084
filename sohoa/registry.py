"""The dossier registry (the QĐ 766 denominator) and the digitization-rate reports: a narrow interface of its
own, apart from search (:class:`index.base.SearchIndex`), so the two evolve apart.

Both index backends implement it over the data they already hold (SQLite tables with triggers kept counts;
Elasticsearch aggregations): a dossier's digitization comes from its documents, which live there. One
contract suite (``tests/test_registry_contract.py``) runs every method on both.

Durability: the index is a cache; the object store is the system of record. :class:`RegistryJournal` writes
every import as an immutable object ``registry/imports/{UTC time}-{id}.jsonl.gz`` *before* it is applied,
and after it the rows' current state ``registry/current.jsonl.gz``; ``sohoa reindex`` rebuilds the registry
from them (:meth:`RegistryJournal.replay`), so deleting the index loses nothing.

Digitization rules are report parameters (``min_confidence``, ``require_signature``; ``None`` = the
defaults in :attr:`Registry.rules`, from settings) evaluated when the report is made: see
:mod:`sohoa.domain`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sohoa.domain import DigitizedRules, DossierRecord, Flags, ImportResult, Period, Report, dedupe_records

if TYPE_CHECKING:
    from storage import ObjectStore

log = logging.getLogger("sohoa.registry")

IMPORTS = "registry/imports/"
CURRENT = "registry/current.jsonl.gz"
REPLAY_MARGIN = timedelta(hours=1)  # imports this much older than the snapshot are replayed too (see replay)
CHUNK = 5000


class Registry(ABC):
    """Registry rows by dossier code, their digitization and the rate reports."""

    url: str
    rules: DigitizedRules = DigitizedRules()  # default report parameters (settings)
    journal: RegistryJournal | None = None  # set by the wiring: every import is stored before it is applied

    # the defaults, under their settings' names
    @property
    def digitized_min_confidence(self) -> float:
        return self.rules.min_confidence

    @digitized_min_confidence.setter
    def digitized_min_confidence(self, value: float) -> None:
        self.rules = self.rules.with_(min_confidence=value)

    @property
    def digitized_require_signature(self) -> bool:
        return self.rules.require_signature

    @digitized_require_signature.setter
    def digitized_require_signature(self, value: bool) -> None:
        self.rules = self.rules.with_(require_signature=value)

    def report_rules(
        self, min_confidence: float | None = None, require_signature: bool | None = None
    ) -> DigitizedRules:
        return self.rules.with_(min_confidence, require_signature)

    # -- writing -----------------------------------------------------------------------------------
    def upsert_dossiers(self, records: Iterable[DossierRecord], *, source: str = "") -> ImportResult:
        """Insert or update rows by code (one per code: later repeats are returned as errors); links scans
        already stored for those codes. With a journal, the import is stored first and then applied."""
        recs, dup_errors = dedupe_records(records)
        key = self.journal.record(recs, source) if self.journal is not None else None
        try:
            res = self.apply_dossiers(recs)
        except BaseException:
            if key is not None and self.journal is not None:
                self.journal.discard(key)  # the caller sees the failure and will send it again
            raise
        res.errors = dup_errors + res.errors
        if self.journal is not None and key is not None:
            self.journal.snapshot(self, key)
        return res

    @abstractmethod
    def apply_dossiers(self, records: list[DossierRecord]) -> ImportResult:
        """Write rows (unique codes) to the backend only; used by :meth:`upsert_dossiers` and replays."""

    @abstractmethod
    def rebuild_flags(self) -> int:
        """Recompute every row's digitization from its documents, and the counters; returns the rows."""

    @abstractmethod
    def clear_registry(self) -> None:
        """Remove every row and counter (``sohoa reindex`` replays them from the object store)."""

    # -- reading -----------------------------------------------------------------------------------
    @abstractmethod
    def dossier_record(
        self, code: str, *, min_confidence: float | None = None, require_signature: bool | None = None
    ) -> tuple[DossierRecord, Flags] | None: ...

    @abstractmethod
    def registry(
        self,
        *,
        units: tuple[str, ...] | None = None,
        min_confidence: float | None = None,
        require_signature: bool | None = None,
    ) -> Iterator[tuple[DossierRecord, Flags]]:
        """Rows by code; *units*: only rows of those units (see :mod:`index.base` for the scope rule)."""

    @abstractmethod
    def unregistered(self, *, units: tuple[str, ...] | None = None) -> list[str]:
        """Dossier codes that have scans but no registry row (yet); *units*: scans of those units."""

    @abstractmethod
    def rate_report(
        self,
        period: Period,
        rule: str = "any",
        *,
        units: tuple[str, ...] | None = None,
        min_confidence: float | None = None,
        require_signature: bool | None = None,
    ) -> Report:
        """Counts of the period under *rule* and the digitization parameters (stated in the report)."""

    @abstractmethod
    def undigitized(
        self,
        period: Period,
        rule: str = "any",
        side: str = "input",
        limit: int = 1000,
        *,
        units: tuple[str, ...] | None = None,
        min_confidence: float | None = None,
        require_signature: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Dossiers of the period that are not digitized (what the clerk must scan next)."""


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _stamp_time(key: str) -> datetime | None:
    name = key.rsplit("/", 1)[-1].split("-", 1)[0]
    try:
        return datetime.strptime(name, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _jsonl_gz(header: dict[str, Any], rows: Iterable[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(json.dumps(header, ensure_ascii=False).encode() + b"\n")
        for r in rows:
            gz.write(json.dumps(r, ensure_ascii=False).encode() + b"\n")
    return buf.getvalue()


def _read_jsonl_gz(data: bytes) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    lines = gzip.decompress(data).splitlines()
    header = json.loads(lines[0]) if lines else {}
    return header, (json.loads(x) for x in lines[1:] if x.strip())


class RegistryJournal:
    """Registry imports and the rows' current state in the object store (see the module docstring)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._lock = threading.Lock()

    def record(self, records: list[DossierRecord], source: str = "") -> str:
        now = datetime.now(UTC)
        key = f"{IMPORTS}{_stamp(now)}-{uuid.uuid4().hex[:8]}.jsonl.gz"
        header = {"source": source, "at": now.isoformat(), "count": len(records)}
        self.store.put_bytes(key, _jsonl_gz(header, (r.to_json() for r in records)), "application/gzip")
        return key

    def discard(self, key: str) -> None:
        with contextlib.suppress(Exception):
            self.store.delete(key)

    def has_any(self) -> bool:
        return any(True for _ in self.store.list("registry/"))

    def snapshot(self, registry: Registry, through: str = "") -> None:
        """Write the rows' current state (best effort: the imports alone are enough to rebuild)."""
        try:
            with self._lock:
                rows = [rec.to_json() for rec, _ in registry.registry()]
                header = {"at": datetime.now(UTC).isoformat(), "through": through, "count": len(rows)}
                self.store.put_bytes(CURRENT, _jsonl_gz(header, rows), "application/gzip")
        except Exception as e:  # noqa: BLE001 - the import itself is stored already
            log.warning("registry snapshot not written (%s); the imports are kept and suffice to rebuild", e)

    def replay(self, registry: Registry, progress: Callable[[int], None] | None = None) -> int:
        """Apply the stored registry to *registry*: the current state, then every import from a margin
        before it, in order (re-applying an import is idempotent and later imports win, so an import that
        raced with the snapshot is never lost). Returns the number of rows applied."""
        keys = sorted(k for k in self.store.list(IMPORTS) if k.endswith(".jsonl.gz"))
        applied = 0
        cutoff: datetime | None = None
        if self.store.exists(CURRENT):
            header, rows = _read_jsonl_gz(self.store.get_bytes(CURRENT))
            applied += self._apply(registry, rows, progress, applied)
            with contextlib.suppress(KeyError, ValueError):
                cutoff = datetime.fromisoformat(header["at"]) - REPLAY_MARGIN
        for key in keys:
            t = _stamp_time(key)
            if cutoff is not None and t is not None and t < cutoff:
                continue
            _, rows = _read_jsonl_gz(self.store.get_bytes(key))
            applied += self._apply(registry, rows, progress, applied)
        return applied

    @staticmethod
    def _apply(
        registry: Registry, rows: Iterator[dict[str, Any]], progress: Callable[[int], None] | None, done: int
    ) -> int:
        n = 0
        chunk: list[DossierRecord] = []
        for r in rows:
            chunk.append(DossierRecord.from_json(r))
            if len(chunk) >= CHUNK:
                registry.apply_dossiers(dedupe_records(chunk)[0])
                n += len(chunk)
                chunk = []
                if progress:
                    progress(done + n)
        if chunk:
            registry.apply_dossiers(dedupe_records(chunk)[0])
            n += len(chunk)
        if progress:
            progress(done + n)
        return n
