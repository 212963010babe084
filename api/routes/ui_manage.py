"""HTML pages (see api/ui.py for the layout and formats)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
