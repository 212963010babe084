"""HTTP API (FastAPI) and the staff search page."""

from api.app import create_app

__all__ = ["create_app"]
