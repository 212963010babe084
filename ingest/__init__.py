"""Accepting uploads: validation of every external input, durable storage, queueing."""

from ingest.service import UploadItem, accept_batch
from ingest.validate import FileInfo, InputError, validate_file, validate_metadata

__all__ = ["FileInfo", "InputError", "UploadItem", "accept_batch", "validate_file", "validate_metadata"]
