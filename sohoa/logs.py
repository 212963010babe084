"""Structured logging: ``key=value`` lines (or JSON with ``SOHOA_LOG_JSON=1``) that name the dossier."""

from __future__ import annotations

import json
import logging
import sys

_STD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    def __init__(self, as_json: bool = False) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update({k: v for k, v in vars(record).items() if k not in _STD and not k.startswith("_")})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if self.as_json:
            return json.dumps(fields, ensure_ascii=False, default=str)
        return " ".join(
            f"{k}={json.dumps(v, ensure_ascii=False, default=str) if k in ('msg', 'exc') or ' ' in str(v) else v}"
            for k, v in fields.items()
        )


def setup_logging(level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter(as_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("elastic_transport", "urllib3", "pika", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
