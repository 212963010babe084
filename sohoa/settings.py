"""Settings from environment variables, all prefixed ``SOHOA_``.

Backends are chosen by URL:

* ``SOHOA_STORAGE_URL``: ``file:///path`` (default, under ``SOHOA_DATA_DIR``) or
  ``s3://ACCESS:SECRET@host:port/bucket?secure=false&region=us-east-1`` (MinIO / S3).
* ``SOHOA_INDEX_URL``: ``sqlite:///path/index.sqlite3`` (default) or ``http(s)://host:9200`` (Elasticsearch).
* ``SOHOA_BROKER_URL``: ``memory://`` (default: in-process workers) or ``redis://…`` / ``amqp://…``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PREFIX = "SOHOA_"

DEFAULT_DOSSIER_CODE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.]{0,39}-\d{6}-\d{4,6}$"


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

    def __post_init__(self) -> None:
        data = Path(self.data_dir).expanduser()
        object.__setattr__(self, "data_dir", data)
        if not self.storage_url:
            object.__setattr__(self, "storage_url", (data / "objects").resolve().as_uri())
        if not self.index_url:
            object.__setattr__(self, "index_url", f"sqlite:///{(data / 'index.sqlite3').resolve()}")

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
            value: object
            if kind == "int":
                value = int(raw)
            elif kind == "float":
                value = float(raw)
            elif kind == "bool":
                value = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif kind == "Path":
                value = Path(raw)
            else:
                value = raw
            kwargs[f.name] = value
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]


def documented_variables() -> list[str]:
    """Names of every supported environment variable (for the README and ``sohoa config``)."""
    return [PREFIX + f.name.upper() for f in fields(Settings)]
