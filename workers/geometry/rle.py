"""COCO run-length encoding (via ``pycocotools.mask``), with input validation.

RLE layout is COCO's: column-major runs starting with background, ``size = [height, width]``.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask

from .contours import validate_mask

__all__ = ["mask_to_rle", "rle_to_mask", "rle_area"]


def mask_to_rle(mask: np.ndarray) -> dict:
    """Encode a 2-D binary mask as compressed COCO RLE.

    Input: mask as accepted by :func:`workers.geometry.contours.validate_mask`.
    Output: ``{"size": [height, width], "counts": str}`` (compressed counts, utf-8 str).
    """
    m = validate_mask(mask)
    enc = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": enc["counts"].decode("utf-8")}


def _decode_counts_str(s: str) -> list[int]:
    """Decode COCO's compressed counts string (LEB128-like, 6 bits per char) with checks."""
    counts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError("RLE counts string is truncated")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"RLE counts string has an invalid character {s[p]!r}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _normalize(rle: object) -> tuple[dict, int, int, list[int]]:
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError("rle must be a dict with 'size' and 'counts'")
    size = rle["size"]
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
        or min(size) < 0
    ):
        raise ValueError(f"rle 'size' must be [height, width] non-negative integers, got {size!r}")
    h, w = int(size[0]), int(size[1])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        try:
            counts = counts.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ValueError("rle 'counts' bytes are not ASCII") from exc
    if isinstance(counts, str):
        runs = _decode_counts_str(counts)
        compressed = counts.encode("ascii")
    elif isinstance(counts, (list, tuple)):
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in counts):
            raise ValueError("uncompressed rle 'counts' must be a list of integers")
        runs = [int(v) for v in counts]
        compressed = None
    else:
        raise ValueError(f"rle 'counts' must be a str or a list of ints, got {type(counts).__name__}")
    if any(v < 0 for v in runs):
        raise ValueError("rle 'counts' contains a negative run length")
    total = sum(runs)
    if total != h * w:
        raise ValueError(f"rle size mismatch: runs sum to {total} pixels but size {h}x{w} has {h * w}")
    if compressed is None:
        compressed = coco_mask.frPyObjects({"size": [h, w], "counts": runs}, h, w)["counts"]
    return {"size": [h, w], "counts": compressed}, h, w, runs


def rle_to_mask(rle: dict) -> np.ndarray:
    """Decode COCO RLE (compressed str/bytes counts or uncompressed list counts) to a
    ``(height, width)`` bool mask. Raises ``ValueError`` on malformed input or size mismatch."""
    coco, h, w, _ = _normalize(rle)
    if h == 0 or w == 0:
        return np.zeros((h, w), dtype=bool)
    return coco_mask.decode(coco).astype(bool)


def rle_area(rle: dict) -> int:
    """Number of foreground pixels of a COCO RLE (validated like :func:`rle_to_mask`)."""
    _, _, _, runs = _normalize(rle)
    return int(sum(runs[1::2]))
