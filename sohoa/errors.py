"""One error tree for the whole system.

Every backend adapter (``storage/``, ``index/``, ``workers/queue.py``) maps the exceptions of its client
library onto this tree at its boundary, so that callers decide by *kind*, never by library:

* :class:`TransientError` — the operation may succeed if repeated later, with nothing changed: a backend
  is unreachable, timed out, overloaded (S3 503, Elasticsearch 429/5xx, Redis connection refused, SQLite
  busy). The worker retries these with exponential backoff for ``SOHOA_OUTAGE_WINDOW_S`` and never counts
  them as an attempt against the file; the API answers 503 with ``Retry-After``.
* :class:`PermanentError` — repeating cannot help: the input is unusable (a corrupt scan), an object is
  missing, a request is malformed. A document fails only for one of these, with its true reason.
* :class:`ConfigError` — a permanent error of the installation, not of a document (tesseract missing, an
  unsupported URL): reported at start-up; a document that meets one is not failed, it waits.

Anything else (a bug, an OCR engine crash) is *unknown*: the worker counts it as an attempt and retries a
few times before failing the document with that error as the reason.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["transient", "permanent", "config", "unknown"]


class SohoaError(RuntimeError):
    """Base of every error sohoa raises on purpose. ``str(e)`` is a message for people."""


class TransientError(SohoaError):
    """Retry later: a backend is unavailable. *backend*: ``storage``, ``index``, ``broker`` or ``ocr``."""

    backend: str = ""
    retry_after_s: int = 30

    def __init__(self, message: str, *, backend: str = "", retry_after_s: int | None = None) -> None:
        super().__init__(message)
        if backend:
            self.backend = backend
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class PermanentError(SohoaError):
    """Repeating cannot help (bad input, missing object, malformed request)."""


class ConfigError(PermanentError):
    """The installation is wrong (a program or model missing, an unsupported URL); not a document's fault."""


class LeaseLost(SohoaError):
    """Another process now holds the lease this one was working under: stop without writing anything."""


def kind_of(exc: BaseException) -> Kind:
    """How the worker treats *exc*."""
    if isinstance(exc, ConfigError):
        return "config"
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, PermanentError):
        return "permanent"
    return "unknown"


BACKEND_NAMES_VI = {"storage": "kho lưu trữ", "index": "chỉ mục tìm kiếm", "broker": "hàng đợi", "ocr": "OCR"}


def unavailable_message(exc: TransientError) -> str:
    """The Vietnamese-first message an API caller sees for a transient error (English in parentheses)."""
    what = BACKEND_NAMES_VI.get(exc.backend, "dịch vụ")
    return (
        f"{what} tạm thời không truy cập được, vui lòng thử lại sau {exc.retry_after_s} giây; "
        f"không có gì bị mất (temporarily unavailable: {exc})"
    )
