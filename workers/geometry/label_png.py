"""Fast PNG encoding of 8-bit label images (class / instance index maps).

A label image is mostly long runs of a few values. The IDAT stream is deflated by ISA-L
(``isal.isal_zlib`` level 1, a zlib-format stream any inflater reads): on a 640x480 panoptic id image
about 6x faster than zlib's run-length strategy (``Z_RLE``, level 1), itself several times faster
than PIL's default path, for output about 1.3x larger. Without ``isal`` installed, zlib ``Z_RLE``
is used (same pixels, smaller and slower). Rows use PNG filter 0 (None). Grayscale (``L``) or, with a palette, palette
(``P``) colour type, 8 bits per pixel; any PNG reader decodes the exact indices back.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

try:
    from isal import isal_zlib
except ImportError:  # pragma: no cover - isal is in requirements.txt
    isal_zlib = None  # type: ignore[assignment]

__all__ = ["encode_id_png", "encode_label_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def deflate_zlib_rle(data) -> bytes:
    """zlib stream of ``data`` by zlib's run-length strategy, level 1."""
    z = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    return z.compress(data) + z.flush()


def deflate_isal(data) -> bytes:
    """zlib stream of ``data`` by ISA-L at level 1."""
    return isal_zlib.compress(data, 1)


_deflate = deflate_isal if isal_zlib is not None else deflate_zlib_rle


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def encode_label_png(array: np.ndarray, palette: Sequence[int] | bytes | None = None) -> bytes:
    """PNG bytes of a 2-D ``uint8`` array: grayscale, or palette mode with ``palette`` (flat
    ``[r, g, b, ...]``, at most 256 entries; the indices are the array's values)."""
    a = np.asarray(array)
    if a.ndim != 2 or a.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 array, got {a.dtype} of shape {a.shape}")
    h, w = a.shape
    if h == 0 or w == 0:
        raise ValueError("a PNG needs at least one pixel")
    raw = np.empty((h, w + 1), dtype=np.uint8)
    raw[:, 0] = 0  # filter type 0 (None) before each row
    raw[:, 1:] = a
    idat = _deflate(raw.data)
    colour_type = 0
    plte = b""
    if palette is not None:
        pal = bytes(palette)
        if len(pal) % 3 or not 3 <= len(pal) <= 768:
            raise ValueError("palette must hold 1 to 256 RGB triples")
        colour_type = 3
        plte = _chunk(b"PLTE", pal)
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
    return _SIGNATURE + ihdr + plte + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encode_id_png(ids: np.ndarray) -> bytes:
    """PNG bytes of a 2-D segment-id image as COCO panoptic writes it: RGB with id = R + 256 G +
    256^2 B (ids below 2^24; a ``uint8`` array fills R only). Rows use PNG filter 1 (Sub: each byte
    minus the one a pixel to its left), which turns flat runs into zeros for the same run-length
    deflate as :func:`encode_label_png`; the Sub bytes are computed per channel from the ids."""
    a = np.asarray(ids)
    if a.ndim != 2 or a.dtype.kind not in "ui":
        raise ValueError(f"expected a 2-D integer array, got {a.dtype} of shape {a.shape}")
    h, w = a.shape
    if h == 0 or w == 0:
        raise ValueError("a PNG needs at least one pixel")
    raw = np.zeros((h, w * 3 + 1), dtype=np.uint8)
    raw[:, 0] = 1  # filter type 1 (Sub)
    channels = [a] if a.dtype == np.uint8 else [(a >> s & 255).astype(np.uint8) for s in (0, 8, 16)]
    for c, channel in enumerate(channels):
        raw[:, 1 + c] = channel[:, 0]
        np.subtract(channel[:, 1:], channel[:, :-1], out=raw[:, 4 + c :: 3])  # wraps, as PNG's does
    idat = _deflate(raw.data)
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    return _SIGNATURE + ihdr + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
