"""JPEG scans (one page). The file's bytes are handed on as ``SourcePage.encoded`` (DCTDecode)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, JpegImagePlugin

from sohoa.formats.raster import RasterFormat

_COLOURSPACE = {"L": "DeviceGray", "RGB": "DeviceRGB"}  # CMYK JPEGs are often Adobe-inverted: not passed on


class Jpeg(RasterFormat):
    name, label, media_type, extension = "jpeg", "JPEG", "image/jpeg", ".jpg"
    extensions = (".jpg", ".jpeg")
    opener = JpegImagePlugin.jpeg_factory

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"\xff\xd8\xff")

    def encoded(self, path: Path, im: Image.Image) -> dict[str, Any]:
        cs = _COLOURSPACE.get(im.mode)
        if cs is None:
            return {}
        return {"encoded": path.read_bytes(), "encoded_filter": "DCTDecode", "encoded_colorspace": cs,
                "encoded_bpc": 8}  # fmt: skip


FORMAT = Jpeg()
