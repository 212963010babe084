"""Validation of uploads and their metadata. Nothing is stored until this passes.

What a file is and whether its pages are acceptable is asked of the format registry
(:mod:`sohoa.formats`, one module per media type); this module adds the size limits, the file-name
check and the metadata checks.
"""

from __future__ import annotations

import re
from pathlib import Path

from sohoa import formats
from sohoa.formats.base import FileInfo, InputError, describe
from sohoa.models import Kind
from sohoa.settings import Settings
from sohoa.text import nfc

__all__ = ["MEDIA", "FileInfo", "InputError", "sniff", "validate_file", "validate_metadata"]

# format name → (media type, stored extension), and file-name ending → format name (from the registry)
MEDIA = {f.name: (f.media_type, f.extension) for f in formats.BY_NAME.values()}
_EXT = {ext: f.name for ext, f in formats.BY_EXTENSION.items()}


def sniff(head: bytes) -> str | None:
    """The format name (``pdf``, ``tiff``, ``jpeg``, ``png``) whose magic bytes start ``head``."""
    fmt = formats.sniff(head)
    return fmt.name if fmt else None


def validate_metadata(
    settings: Settings, dossier_code: str, kind: str, component: str = "", unit: str = ""
) -> tuple[str, str, str, str]:
    """Return NFC-normalised (dossier_code, kind, component, unit) or raise :class:`InputError`."""
    code = nfc((dossier_code or "").strip())
    if not code:
        raise InputError("dossier code (mã hồ sơ) is required")
    if not re.fullmatch(settings.dossier_code_pattern, code, re.ASCII):
        raise InputError(
            f"malformed dossier code {code!r}: expected a code like 000.00.06.H56-231027-0361 "
            f"(pattern {settings.dossier_code_pattern}, set SOHOA_DOSSIER_CODE_PATTERN to change it)"
        )
    k = (kind or "").strip().lower()
    if k not in {x.value for x in Kind}:
        raise InputError(f"unknown document kind {kind!r}: use 'input' (thành phần hồ sơ) or 'output' (kết quả)")
    comp = nfc((component or "").strip())
    un = nfc((unit or "").strip())
    if len(comp) > 300 or len(un) > 300:
        raise InputError("component name and unit must be at most 300 characters")
    return code, k, comp, un


def validate_file(settings: Settings, path: Path, filename: str) -> FileInfo:
    """Check an uploaded file on disk; return what it is or raise :class:`InputError`."""
    filename = nfc(filename)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(f"cannot read file: {e}", filename=filename) from e
    try:
        if size == 0:
            raise InputError("empty file (0 bytes)")
        if size > settings.max_upload_mb * 1024 * 1024:
            raise InputError(
                f"file is {size / 1048576:,.0f} MB, above the limit of {settings.max_upload_mb} MB "
                "(SOHOA_MAX_UPLOAD_MB)",
                413,
            )
        with open(path, "rb") as f:
            head = f.read(2048)
        fmt = formats.sniff(head)
        ext = Path(filename).suffix.lower()
        if fmt is None:
            claimed = formats.BY_EXTENSION.get(ext)
            labels = [f.label for f in formats.BY_NAME.values()]
            what = f"a {claimed.label} file" if claimed else f"a {', '.join(labels[:-1])} or {labels[-1]} file"
            raise InputError(f"not {what}: {describe(head)} (accepted: {formats.accepted_labels()})", 415)
        info = FileInfo(format=fmt.name, media_type=fmt.media_type, extension=fmt.extension, pages=0, size=size)
        said = formats.BY_EXTENSION.get(ext)
        if said is not None and said is not fmt:
            info.warnings.append(f"file name says {ext} but the content is {fmt.label}; stored as {fmt.label}")
        fmt.validate(settings, path, info)
        return info
    except InputError as e:
        e.filename = filename
        raise
