"""Polygon rasterization consistent with :mod:`workers.geometry.contours`.

A pixel ``(r, c)`` is inside iff its centre ``(c + 0.5, r + 0.5)`` is inside the region. Rings
are re-oriented (exteriors positive, holes negative) and combined with the non-zero winding
rule, so several polygons give their union and holes cut only their own polygon.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "crossings_flat",
    "parse_polygons",
    "polygons_iou",
    "polygons_to_mask",
    "rasterize_flat",
    "rasterize_rings",
]


def _as_ring(obj: object, what: str) -> np.ndarray:
    try:
        arr = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a list of [x, y] number pairs") from exc
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} must be a list of [x, y] pairs, got array of shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite coordinates")
    if len(arr) >= 2 and np.array_equal(arr[0], arr[-1]):
        arr = arr[:-1]  # tolerate a closed ring
    if len(arr) < 3:
        raise ValueError(f"{what} needs at least 3 distinct points, got {len(arr)}")
    return arr


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def parse_polygons(polygons: object) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Validate the structure of a polygon list and return oriented float rings.

    Input: a list of ``{"exterior": [[x, y], ...], "holes": [...]}`` dicts (``holes`` optional).
    Output: a list of ``(exterior, [hole, ...])`` ``(n, 2)`` float64 arrays, open, exteriors
    with positive signed area and holes negative. Raises ``ValueError`` on a malformed input.
    """
    if isinstance(polygons, dict):
        raise ValueError("polygons must be a list of polygon dicts, got a single dict")
    if not isinstance(polygons, Sequence) or isinstance(polygons, (str, bytes)):
        raise ValueError(f"polygons must be a list of polygon dicts, got {type(polygons).__name__}")
    out = []
    for i, poly in enumerate(polygons):
        if not isinstance(poly, dict) or "exterior" not in poly:
            raise ValueError(f"polygon {i} must be a dict with an 'exterior' key")
        ext = _as_ring(poly["exterior"], f"polygon {i} exterior")
        if _signed_area(ext) < 0:
            ext = ext[::-1]
        holes = []
        raw_holes = poly.get("holes") or []
        if not isinstance(raw_holes, Sequence):
            raise ValueError(f"polygon {i} 'holes' must be a list of rings")
        for j, hole in enumerate(raw_holes):
            hr = _as_ring(hole, f"polygon {i} hole {j}")
            if _signed_area(hr) > 0:
                hr = hr[::-1]
            holes.append(hr)
        out.append((ext, holes))
    return out


def rasterize_rings(rings: Sequence[np.ndarray], x0: int, y0: int, height: int, width: int) -> np.ndarray:
    """Rasterize oriented rings into the window ``[x0, x0+width) x [y0, y0+height)``.

    ``rings`` are ``(n, 2)`` float arrays (x, y) in pixel-corner coordinates, exteriors with a
    positive signed area and holes negative. A pixel is set iff the winding number at its centre
    is positive. Returns a ``(height, width)`` bool array for the window only.
    """
    rings = [r for r in rings if len(r)]
    if not rings:
        return np.zeros((max(height, 0), max(width, 0)), dtype=bool)
    lens = np.array([len(r) for r in rings], dtype=np.int64)
    off = np.concatenate([[0], np.cumsum(lens)])
    return rasterize_flat(np.concatenate(rings), off, x0, y0, height, width)


def crossings_flat(
    pts: np.ndarray, off: np.ndarray, x0: int, y0: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Scanline crossings of flat rings with the pixel-centre rows of a window.

    Returns ``(rows, cols, weights)``: for every edge and every window row ``r`` whose centre
    line ``y = r + 0.5`` it crosses (half-open rule ``ylo <= r + 0.5 < yhi``), the first window
    column whose centre lies right of the crossing (clipped to ``[0, width]``) and the winding
    increment (+1 upward edge, -1 downward). The winding number at pixel ``(r, c)`` is the sum
    of the weights of row ``r`` with ``col <= c``. ``None`` when nothing crosses the window.
    """
    if height <= 0 or width <= 0 or len(pts) == 0:
        return None
    nxt = np.arange(1, len(pts) + 1)
    nxt[off[1:] - 1] = off[:-1]
    a, b = pts, pts[nxt]
    ya, yb = a[:, 1] - y0, b[:, 1] - y0
    ylo, yhi = np.minimum(ya, yb), np.maximum(ya, yb)
    # rows r with ylo <= r + 0.5 < yhi
    rlo = np.clip(np.ceil(ylo - 0.5), 0, height).astype(np.int64)
    rhi = np.clip(np.ceil(yhi - 0.5), 0, height).astype(np.int64)
    cnt = rhi - rlo
    keep = cnt > 0
    if not keep.any():
        return None
    a, b, ya, yb, rlo, cnt = a[keep], b[keep], ya[keep], yb[keep], rlo[keep], cnt[keep]
    seg = np.repeat(np.arange(len(cnt)), cnt)
    offs = np.cumsum(cnt) - cnt
    rows = np.arange(int(cnt.sum())) - offs[seg] + rlo[seg]
    slope = (b[:, 0] - a[:, 0]) / (yb - ya)
    x = (a[seg, 0] - x0) + (rows + 0.5 - ya[seg]) * slope[seg]
    col = np.clip(np.floor(x - 0.5).astype(np.int64) + 1, 0, width)
    # Upward edges (dy < 0) have the inside on their right: +1 for the pixels right of them.
    wgt = np.where(yb < ya, 1, -1)[seg]
    return rows, col, wgt


def rasterize_flat(pts: np.ndarray, off: np.ndarray, x0: int, y0: int, height: int, width: int) -> np.ndarray:
    """:func:`rasterize_rings` for rings stored flat: ring k is ``pts[off[k]:off[k+1]]``."""
    if height <= 0 or width <= 0:
        return np.zeros((max(height, 0), max(width, 0)), dtype=bool)
    cr = crossings_flat(pts, off, x0, y0, height, width)
    if cr is None:
        return np.zeros((height, width), dtype=bool)
    rows, col, wgt = cr
    r0, r1 = int(rows.min()), int(rows.max()) + 1
    acc = np.bincount((rows - r0) * (width + 1) + col, weights=wgt, minlength=(r1 - r0) * (width + 1)).astype(
        np.int32
    )
    out = np.zeros((height, width), dtype=bool)
    wind = np.cumsum(acc.reshape(r1 - r0, width + 1)[:, :width], axis=1, dtype=np.int32)
    out[r0:r1] = wind > 0
    return out


def _check_size(height: object, width: object) -> tuple[int, int]:
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(height), int(width)  # type: ignore[arg-type]


def polygons_to_mask(polygons: list[dict], height: int, width: int) -> np.ndarray:
    """Rasterize polygons (pixel-corner coordinates) into a ``(height, width)`` bool mask.

    A pixel ``(r, c)`` is True iff its centre ``(c + 0.5, r + 0.5)`` lies inside the union of
    the polygons (each polygon = exterior minus its holes). Parts outside the image are clipped.
    For the exact output of :func:`mask_to_polygons` the round trip is exact. Raises
    ``ValueError`` on malformed polygons or a non-positive size.
    """
    height, width = _check_size(height, width)
    parsed = parse_polygons(polygons)
    rings = [r for ext, holes in parsed for r in (ext, *holes)]
    return rasterize_rings(rings, 0, 0, height, width)


def polygons_iou(a_polys: list[dict], b_polys: list[dict], height: int, width: int) -> float:
    """Intersection over union of two polygon lists, measured on the ``height x width`` pixel
    grid (pixel-centre rule of :func:`polygons_to_mask`). Two empty regions give 1.0."""
    ma = polygons_to_mask(a_polys, height, width)
    mb = polygons_to_mask(b_polys, height, width)
    union = np.count_nonzero(ma | mb)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(ma & mb) / union)
