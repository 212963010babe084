"""Settings from environment variables, all prefixed ``SOHOA_``.

Backends are chosen by URL:

* ``SOHOA_STORAGE_URL``: ``file:///path`` (default, under ``SOHOA_DATA_DIR``) or
  ``s3://ACCESS:SECRET@host:port/bucket?secure=false&region=us-east-1`` (MinIO / S3).
* ``SOHOA_INDEX_URL``: ``sqlite:///path/index.sqlite3`` (default) or ``http(s)://host:9200`` (Elasticsearch).
* ``SOHOA_BROKER_URL``: ``memory://`` (default: in-process workers) or ``redis://…`` / ``amqp://…``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PREFIX = "SOHOA_"

SECRET_FIELDS = ("secret", "password", "token", "key")
DEFAULT_DOSSIER_CODE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.]{0,39}-\d{6}-\d{4,6}$"
# Decoded pixels allowed for ONE page (SOHOA_MAX_PAGE_PIXELS). A4 at 600 dpi is 4961×7016 = 34.8 MP and
# A3 at 400 dpi 4677×6614 = 30.9 MP; 40 MP leaves ~15 % for scanner overscan. A 12000×12000 px PNG
# (144 MP, grew a worker by ~550 MB) is refused. Measured peak growth of a worker per page: A4 300 dpi
# 80 MB, a 35 MP scan 130 MB, a PDF page rendered at 40 MP 265 MB.
DEFAULT_MAX_PAGE_PIXELS = 40_000_000


class SettingsError(ValueError):
    """A ``SOHOA_*`` variable holds a value of the wrong type."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sohoa"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    storage_url: str = ""
    index_url: str = ""
    broker_url: str = "memory://"
    es_index_prefix: str = "sohoa"
    tessdata_dir: str = ""
    lexicon_dir: str = ""
    dossier_code_pattern: str = DEFAULT_DOSSIER_CODE_PATTERN
    max_upload_mb: int = 512
    max_pages: int = 2000
    max_pixels: int = 200_000_000
    min_dpi_warning: int = 200
    render_dpi: int = 300
    worker_threads: int = 2
    job_time_limit_s: int = 4 * 3600
    redis_heartbeat_ms: int = 60_000
    redis_maintenance_chance: int = 1000
    low_confidence: float = 70.0
    digitized_min_confidence: float = 0.0
    digitized_require_signature: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = False
    max_page_pixels: int = DEFAULT_MAX_PAGE_PIXELS  # decoded pixels of one page (images refused, PDFs rendered below)
    max_batch_mb: int = 2048  # whole POST /documents request body, enforced while it streams in
    cors_origins: str = ""  # comma-separated origins allowed by CORS; empty: CORS off
    trusted_proxy: bool = False  # believe X-Forwarded-Proto (HSTS behind a TLS-terminating proxy)
    secret_key: str = ""  # signs session cookies; empty = a random key kept in object storage
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    # self-healing (issue 12): outages are waited out, leases prevent double processing, a reconciler re-queues
    outage_window_s: int = 3600  # a document waits this long for a backend outage to end before failing
    retry_min_backoff_ms: int = 2000  # first retry after a transient error; doubles each time …
    retry_max_backoff_ms: int = 30000  # … up to this
    lease_ttl_s: float = 60.0  # a processing lease expires this long after its last heartbeat (ttl/3)
    reconcile_interval_s: float = 15.0  # how often the (one active) reconciler looks for stranded documents
    batch_stale_s: int = 900  # an upload batch still staging after this long (its API process gone) is swept
    queued_stale_s: int = 600  # brokers that cannot be inspected (amqp): re-queue documents queued this long
    # throughput (issue 15): the pages of one document are OCR'd by a pool of this many processes, shared by
    # every worker thread of the process (0 = one per CPU core); 1 = in the worker thread itself
    page_workers: int = 0
    keep_blank_pages: bool = False  # false: blank pages are listed in the manifest, not indexed nor archived

    def __post_init__(self) -> None:
        data = Path(self.data_dir).expanduser()
        object.__setattr__(self, "data_dir", data)
        if not self.storage_url:
            object.__setattr__(self, "storage_url", (data / "objects").resolve().as_uri())
        if not self.index_url:
            object.__setattr__(self, "index_url", f"sqlite://{(data / 'index.sqlite3').resolve()}")

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("memory:")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The ``SOHOA_*`` variables that reproduce these settings in another process."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[PREFIX + f.name.upper()] = ("1" if v else "0") if isinstance(v, bool) else str(v)
        return out

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if env is None else env)
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
            try:
                kwargs[f.name] = _convert(kind, raw)
            except ValueError:
                raise SettingsError(f"{PREFIX}{f.name.upper()}={raw!r} is not a valid {kind}") from None
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]


def _convert(kind: str, raw: str) -> object:
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        if raw.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.strip().lower() in {"0", "false", "no", "off"}:
            return False
        raise ValueError(raw)
    if kind == "Path":
        return Path(raw)
    return raw


def documented_variables() -> list[str]:
    """Names of every supported environment variable (for the README and ``sohoa config``)."""
    return [PREFIX + f.name.upper() for f in fields(Settings)]


def mask_url(url: str) -> str:
    """``scheme://user:SECRET@host`` → ``scheme://user:***@host`` (any URL with a password)."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)([^:/@]*):([^@]*)@", lambda m: f"{m[1]}{m[2]}:***@", url)


def effective_settings(s: Settings) -> dict[str, str]:
    """Every ``SOHOA_*`` variable with the value in force: defaults resolved, secrets masked."""
    from ocr.lexicon import word_list_path
    from ocr.tesseract import OcrError, resolve_model

    out = {}
    for name, value in s.to_env().items():
        if name.endswith("_URL"):
            value = mask_url(value)
        elif any(w in name.lower() for w in SECRET_FIELDS) and value:
            value = "***"
        out[name] = value
    try:
        tessdata, desc = resolve_model(s.tessdata_dir or None)
        out[PREFIX + "TESSDATA_DIR"] = f"{tessdata}  # model: {desc}"
    except OcrError as e:
        out[PREFIX + "TESSDATA_DIR"] = f"{s.tessdata_dir or '(default)'}  # {e}"
    words = word_list_path()
    out[PREFIX + "LEXICON_DIR"] = (
        f"{words.parent}  # {words.name}" if words else "(none)  # no word list: run scripts/setup.sh"
    )
    return out
