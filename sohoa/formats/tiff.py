"""TIFF scans (one page per frame; CCITT G4, LZW, Deflate, JPEG inside)."""

from __future__ import annotations

from PIL import TiffImagePlugin

from sohoa.formats.raster import RasterFormat


class Tiff(RasterFormat):
    name, label, media_type, extension = "tiff", "TIFF", "image/tiff", ".tif"
    extensions = (".tif", ".tiff")
    opener = TiffImagePlugin.TiffImageFile

    def sniff(self, head: bytes) -> bool:
        return head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"))


FORMAT = Tiff()
