"""Exact, lossless conversion of a binary mask to polygons.

Coordinate convention (used by the whole ``workers.geometry`` package)
------------------------------------------------------------------------
Coordinates are ``[x, y]`` in pixels with ``x`` = column and ``y`` = row. Vertices lie on
**pixel corners**: pixel ``(row r, column c)`` is the unit square ``[c, c+1] x [r, r+1]``, so its
centre is ``(c + 0.5, r + 0.5)``. :func:`workers.geometry.raster.polygons_to_mask` marks a pixel
as inside iff its centre is inside the polygon, hence ``polygons_to_mask(mask_to_polygons(m))``
reproduces ``m`` exactly.

Polygon format: ``{"exterior": [[x, y], ...], "holes": [[[x, y], ...], ...]}`` with plain Python
floats and open rings (the last point is not a repeat of the first). Exteriors have a positive
signed (shoelace) area, i.e. they are counter-clockwise in the x-right/y-up sense used by shapely
and GeoJSON (which *looks* clockwise on an image whose y axis points down); holes have a negative
signed area.

Connectivity: a part is a 4-connected component of the foreground; background is 8-connected.
Two pixels that touch only at a corner therefore belong to different parts (two polygons that
touch at one point), and a background region that leaks out through a diagonal gap becomes a
hole touching its exterior at that single corner. Both are valid OGC geometry.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._trace import group_rings, trace_core
from .area import ring_signed_area

__all__ = [
    "mask_to_polygons",
    "prepare_mask",
    "ring_signed_area",
    "trace_flat",
    "trace_rings",
    "validate_mask",
]


def validate_mask(mask: object) -> np.ndarray:
    """Check a mask and return it as a 2-D ``bool`` array.

    Accepted: a 2-D ``numpy.ndarray`` of dtype ``bool``, or of an integer/float dtype whose values
    are all in ``{0, 1}`` or all in ``{0, 255}`` (an 8-bit mask). Anything else raises
    ``ValueError`` saying what is wrong (not an array, wrong number of dimensions, empty shape,
    unsupported dtype, NaN, or non-binary values - threshold those first, e.g. ``mask >= 128``).
    """
    if not isinstance(mask, np.ndarray):
        raise ValueError(f"mask must be a numpy.ndarray, got {type(mask).__name__}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {mask.shape}")
    if mask.shape[0] == 0 or mask.shape[1] == 0:
        raise ValueError(f"mask must have a non-zero height and width, got shape {mask.shape}")
    if mask.dtype == np.bool_:
        return mask
    if not (np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)):
        raise ValueError(f"mask dtype must be bool, integer or float, got {mask.dtype}")
    if np.issubdtype(mask.dtype, np.floating) and np.isnan(mask).any():
        raise ValueError("mask contains NaN values")
    nonzero = mask != 0
    values = mask[nonzero]
    if values.size and not (np.all(values == 1) or np.all(values == 255)):
        found = np.unique(mask)
        shown = ", ".join(str(v) for v in found[:8]) + (", ..." if found.size > 8 else "")
        raise ValueError(
            "mask must be binary: values in {0, 1} or in {0, 255}; found values "
            f"[{shown}]. Threshold it first (e.g. mask >= 128)."
        )
    return nonzero


def _filter_mask(m: np.ndarray, min_part_area: float, min_hole_area: float) -> np.ndarray:
    """Drop parts smaller than ``min_part_area`` then fill holes smaller than ``min_hole_area``."""
    if min_part_area > 0 and m.any():
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            m.view(np.uint8), connectivity=4, ltype=cv2.CV_32S
        )
        small = stats[:, cv2.CC_STAT_AREA] < min_part_area
        small[0] = False
        if small.any():
            m = m & ~small[labels]
    if min_hole_area > 0 and m.any() and not m.all():
        bg = ~m
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            bg.view(np.uint8), connectivity=8, ltype=cv2.CV_32S
        )
        h, w = m.shape
        x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
        bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        inner = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
        fill = inner & (stats[:, cv2.CC_STAT_AREA] < min_hole_area)
        fill[0] = False  # label 0 is the foreground here
        if fill.any():
            m = m | fill[labels]
    return m


def trace_rings(m: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Trace the exact pixel-corner outlines of a bool mask.

    Returns a list of ``(ring, label)`` where ``ring`` is an ``(n, 2)`` int64 array of corner
    vertices (x, y), open, without collinear vertices, and ``label`` is the 4-connected
    component (``cv2.connectedComponents`` numbering) the ring bounds. Exterior rings have
    positive signed area, holes negative; every ring is simple.

    Ring order: each closed boundary cycle (the left turn is taken at saddle corners, so
    diagonal foreground pixels stay apart) starts at its first +x corner edge in raster order,
    cycles follow in that order, and a cycle passing a corner twice is split there into simple
    loops. Compiled (:mod:`workers.geometry._trace`); the same output as the vectorized NumPy
    tracer it replaced (kept as the tests' reference, ``tests/workers/geometry/reference_trace.py``),
    except that the rings are views of one shared ``(N, 2)`` array.
    """
    xy, off, lab, _ = _trace(m)
    offs = off.tolist()
    return [(xy[a:b], lb) for a, b, lb in zip(offs[:-1], offs[1:], lab.tolist(), strict=True)]


def _trace(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    m = np.ascontiguousarray(m, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {m.shape}")
    return trace_core(m.view(np.uint8))


def prepare_mask(mask: object, *, min_part_area: float = 0, min_hole_area: float = 0) -> np.ndarray:
    """Validate ``mask`` (:func:`validate_mask`) and the area thresholds, and apply them.

    Returns a C-contiguous ``bool`` mask without parts smaller than ``min_part_area`` pixels and
    with holes smaller than ``min_hole_area`` pixels filled (see :func:`mask_to_polygons`).
    Raises ``ValueError`` for a bad mask or a negative/NaN/non-number threshold.
    """
    m = validate_mask(mask)
    for name, val in (("min_part_area", min_part_area), ("min_hole_area", min_hole_area)):
        if not isinstance(val, (int, float, np.integer, np.floating)) or not math.isfinite(val):
            raise ValueError(f"{name} must be a finite number, got {val!r}")
        if val < 0:
            raise ValueError(f"{name} must be >= 0, got {val!r}")
    m = np.ascontiguousarray(m, dtype=bool)
    if min_part_area > 0 or min_hole_area > 0:
        m = _filter_mask(m, float(min_part_area), float(min_hole_area))
    return m


def trace_flat(
    mask: np.ndarray, *, min_part_area: float = 0, min_hole_area: float = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The polygons of :func:`mask_to_polygons` as flat arrays (no Python lists or dicts).

    Same arguments, validation and result, flattened: returns ``(pts, off, poly, n_polys)``
    where ``pts`` is a float64 ``(N, 2)`` array of all rings' vertices (x, y), ring ``i`` is
    ``pts[off[i]:off[i + 1]]`` (``off`` int64, length ``R + 1``), ``poly[i]`` (int64) is the index of
    its polygon, and there are ``n_polys`` polygons. Rings come polygon by polygon in
    :func:`mask_to_polygons` order, each polygon's exterior (positive signed area) first, then
    its holes (negative).
    """
    m = prepare_mask(mask, min_part_area=min_part_area, min_hole_area=min_hole_area)
    pts, off, poly, n_polys = group_rings(*trace_core(m.view(np.uint8)))
    if n_polys < 0:  # pragma: no cover - would be a tracer bug
        raise RuntimeError("internal error: a traced part has no or several exteriors")
    return pts, off, poly, int(n_polys)


def mask_to_polygons(mask: np.ndarray, *, min_part_area: float = 0, min_hole_area: float = 0) -> list[dict]:
    """Convert a binary mask to exact polygons (lossless).

    Args:
        mask: 2-D array ``(height, width)``; bool, or numeric with values in {0, 1} or {0, 255}.
        min_part_area: parts (4-connected foreground components) with fewer pixels than this
            are dropped. Units: pixels.
        min_hole_area: holes (8-connected background components not touching the image border)
            with fewer pixels than this are filled before tracing. Units: pixels.

    Returns:
        A list of polygons ``{"exterior": [[x, y], ...], "holes": [[[x, y], ...], ...]}`` in
        pixel-corner coordinates (see module docstring), one per part, ordered by the raster
        position of the part's first pixel. Vertices are integers stored as floats; collinear
        vertices are removed. Exterior signed area > 0, holes < 0. Every polygon is valid.
        An empty mask gives ``[]``; a full ``h x w`` mask gives one rectangle.
        :func:`trace_flat` gives the same as flat arrays.

    Raises:
        ValueError: for a bad mask (see :func:`validate_mask`) or a negative/NaN threshold.
    """
    pts, off, poly, n_polys = trace_flat(mask, min_part_area=min_part_area, min_hole_area=min_hole_area)
    coords = pts.tolist()
    offs = off.tolist()
    out: list[dict] = []
    last = -1
    for a, b, p in zip(offs[:-1], offs[1:], poly.tolist(), strict=True):
        if p != last:
            out.append({"exterior": coords[a:b], "holes": []})
            last = p
        else:
            out[-1]["holes"].append(coords[a:b])
    return out
