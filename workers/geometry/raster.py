"""Polygon rasterization consistent with :mod:`workers.geometry.contours`.

A pixel ``(r, c)`` is inside iff its centre ``(c + 0.5, r + 0.5)`` is inside the region. Rings
are re-oriented (exteriors positive, holes negative) and combined with the non-zero winding
rule, so several polygons give their union and holes cut only their own polygon.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .area import ring_signed_area

__all__ = [
    "crossings_flat",
    "label_regions",
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
    if len(arr) >= 2 and arr[0, 0] == arr[-1, 0] and arr[0, 1] == arr[-1, 1]:
        arr = arr[:-1]  # tolerate a closed ring
    if len(arr) < 3:
        raise ValueError(f"{what} needs at least 3 distinct points, got {len(arr)}")
    return arr


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
        if ring_signed_area(ext) < 0:
            ext = ext[::-1]
        holes = []
        raw_holes = poly.get("holes") or []
        if not isinstance(raw_holes, Sequence):
            raise ValueError(f"polygon {i} 'holes' must be a list of rings")
        for j, hole in enumerate(raw_holes):
            hr = _as_ring(hole, f"polygon {i} hole {j}")
            if ring_signed_area(hr) > 0:
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
    ya, yb = a[:, 1], b[:, 1]
    ylo, yhi = np.minimum(ya, yb), np.maximum(ya, yb)
    # image rows r with ylo <= r + 0.5 < yhi, as window rows (the arithmetic runs in image
    # coordinates, so a window gives bit for bit the pixels of the whole image)
    rlo = np.clip(np.ceil(ylo - 0.5) - y0, 0, height).astype(np.int64)
    rhi = np.clip(np.ceil(yhi - 0.5) - y0, 0, height).astype(np.int64)
    cnt = rhi - rlo
    keep = cnt > 0
    if not keep.any():
        return None
    a, b, ya, yb, rlo, cnt = a[keep], b[keep], ya[keep], yb[keep], rlo[keep], cnt[keep]
    seg = np.repeat(np.arange(len(cnt)), cnt)
    offs = np.cumsum(cnt) - cnt
    rows = np.arange(int(cnt.sum())) - offs[seg] + rlo[seg]
    slope = (b[:, 0] - a[:, 0]) / (yb - ya)
    x = a[seg, 0] + (rows + y0 + 0.5 - ya[seg]) * slope[seg]
    col = np.clip(np.floor(x - 0.5).astype(np.int64) + 1 - x0, 0, width)
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
    return int(height), int(width)  # type: ignore[call-overload]


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


def label_regions(regions: Sequence[Sequence[dict] | None], height: int, width: int) -> np.ndarray:
    """Paint many regions at once: a ``(height, width)`` label image whose pixel holds ``k + 1`` for
    the last region ``regions[k]`` covering it (painter's order: a later region covers an earlier
    one), 0 where none does. ``uint8`` when there are at most 255 regions, ``uint16`` up to 65,535.

    Each region is a list of polygon dicts (or ``None``/empty: paints nothing), already valid as
    stored (no validation here). Pixels are exactly :func:`polygons_to_mask`'s for each region
    (pixel-centre rule, rings oriented as :func:`parse_polygons` does, non-zero winding, the same
    floating-point crossing arithmetic), computed in one vectorized pass over all edges of all
    regions: crossings sorted per (region, row), spans where the winding is positive, span pixels
    painted with the maximum region number.
    """
    height, width = _check_size(height, width)
    n = len(regions)
    if n > 65535:
        raise ValueError(f"at most 65535 regions, got {n}")
    dtype = np.uint8 if n <= 255 else np.uint16
    out = np.zeros(height * width, dtype=dtype)
    coords: list = []
    lens: list[int] = []
    ring_region: list[int] = []
    ring_hole: list[bool] = []
    for k, polygons in enumerate(regions, 1):
        for polygon in polygons or ():
            ext = polygon["exterior"]
            if len(ext):
                coords += ext
                lens.append(len(ext))
                ring_region.append(k)
                ring_hole.append(False)
            for hole in polygon.get("holes") or ():
                if len(hole):
                    coords += hole
                    lens.append(len(hole))
                    ring_region.append(k)
                    ring_hole.append(True)
    if not lens:
        return out.reshape(height, width)
    pts = np.array(coords, dtype=np.float64).reshape(-1, 2)
    lens_a = np.array(lens, dtype=np.int64)
    off = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens_a, out=off[1:])
    ring_of = np.repeat(np.arange(len(lens)), lens_a)
    nxt = np.arange(1, len(pts) + 1)
    nxt[off[1:] - 1] = off[:-1]
    x, y = pts[:, 0], pts[:, 1]
    xn, yn = x[nxt], y[nxt]
    # Orientation as parse_polygons: exteriors positive, holes negative; a ring that is the other
    # way round is reversed there, i.e. each of its edges a->b becomes b->a.
    area = np.add.reduceat(x * yn - xn * y, off[:-1])
    hole = np.array(ring_hole)
    flip = np.where(hole, area > 0, area < 0)[ring_of]
    ax = np.where(flip, xn, x)
    ay = np.where(flip, yn, y)
    bx = np.where(flip, x, xn)
    by = np.where(flip, y, yn)
    ylo, yhi = np.minimum(ay, by), np.maximum(ay, by)
    rlo = np.clip(np.ceil(ylo - 0.5), 0, height).astype(np.int64)
    rhi = np.clip(np.ceil(yhi - 0.5), 0, height).astype(np.int64)
    cnt = rhi - rlo
    keep = np.flatnonzero(cnt > 0)
    if not len(keep):
        return out.reshape(height, width)
    ax, ay, bx, by, rlo, cnt = ax[keep], ay[keep], bx[keep], by[keep], rlo[keep], cnt[keep]
    edge_region = np.array(ring_region, dtype=np.int64)[ring_of[keep]]
    seg = np.repeat(np.arange(len(cnt)), cnt)
    starts = np.cumsum(cnt) - cnt
    rows = np.arange(int(starts[-1] + cnt[-1])) - (starts - rlo)[seg]
    slope = (bx - ax) / (by - ay)
    xc = ax[seg] + (rows + 0.5 - ay[seg]) * slope[seg]
    col = np.clip(np.floor(xc - 0.5).astype(np.int64) + 1, 0, width)
    wgt = np.where(by < ay, 1, -1)[seg]
    # Sort the crossings by (region, row, col). Each closed ring crosses a full row as often
    # upwards as downwards, so a running sum of the weights in this order is the winding number
    # right of each crossing within its own (region, row) and 0 between groups.
    key = (edge_region[seg] * height + rows) * (width + 1) + col
    order = np.argsort(key, kind="stable")
    key = key[order]
    wind = np.cumsum(wgt[order])
    inside = np.flatnonzero(wind[:-1] > 0)
    c0 = key[inside] % (width + 1)
    c1 = key[inside + 1] % (width + 1)
    length = c1 - c0
    nz = length > 0
    if not nz.any():
        return out.reshape(height, width)
    inside, c0, length = inside[nz], c0[nz], length[nz]
    group = key[inside] // (width + 1)
    region = group // height
    start = (group % height) * width + c0
    total = int(length.sum())
    first = np.cumsum(length) - length
    pix = np.arange(total) + np.repeat(start - first, length)
    np.maximum.at(out, pix, np.repeat(region, length).astype(dtype))
    return out.reshape(height, width)
