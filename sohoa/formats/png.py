"""PNG scans (one page)."""

from __future__ import annotations

from PIL import PngImagePlugin

from sohoa.formats.raster import RasterFormat


class Png(RasterFormat):
    name, label, media_type, extension = "png", "PNG", "image/png", ".png"
    extensions = (".png",)
    opener = PngImagePlugin.PngImageFile

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"\x89PNG\r\n\x1a\n")


FORMAT = Png()
