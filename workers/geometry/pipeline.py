"""Mask to simplified polygons in one call, with the accuracy bound checked against the mask."""

from __future__ import annotations

import numpy as np

from .contours import mask_to_polygons, prepare_mask, trace_flat
from .simplify import _Rings, _rings_to_dicts, check_arguments, simplify_polygons, simplify_rings

__all__ = ["mask_to_simplified_polygons", "warm_up"]


def mask_to_simplified_polygons(
    mask: np.ndarray,
    *,
    method: str = "bounded",
    min_iou: float | None = 0.98,
    max_distance: float | None = None,
    min_part_area: float = 0,
    min_hole_area: float = 0,
    tolerance: float | None = None,
) -> list[dict]:
    """Trace ``mask`` exactly (:func:`workers.geometry.contours.trace_flat`, the flat form of
    :func:`mask_to_polygons`) and simplify it (:func:`simplify_polygons`).

    With ``method="bounded"`` (default) the result has the fewest vertices found such that
    **every part** (4-connected component, one polygon with its holes) has IoU >= ``min_iou``
    against its own pixels (after the part/hole area filters) and/or Hausdorff distance <=
    ``max_distance`` px to its own exact outline; it is always valid, and a part falls back to
    its exact polygon if nothing simpler meets the bounds. ``min_part_area`` (pixels) is the rule
    for tiny parts: those smaller are dropped before tracing, never distorted. The other methods take
    a ``tolerance`` (units in :func:`simplify_polygons`; ``min_iou``/``max_distance`` are then
    ignored) or, with ``tolerance=None``, have their tolerance tuned to the bound.
    Coordinates are pixel corners ``[x, y]``. Returns ``[]`` for an empty mask.

    The traced rings go straight to the simplifier as arrays (no polygon dicts in between, no
    re-validation: traced outlines are valid by construction), and the bounded mode measures
    IoU against the (filtered) mask itself.
    """
    m = prepare_mask(mask, min_part_area=min_part_area, min_hole_area=min_hole_area)
    h, w = m.shape
    if method != "bounded" and tolerance is not None:
        min_iou = max_distance = None  # a fixed tolerance: the bound (default 0.98) is not used
    frame = check_arguments(method, tolerance, min_iou, max_distance, h, w)
    pts, off, poly, n_polys = trace_flat(m)
    if not n_polys:
        return []
    R = _Rings(pts, off, poly, n_polys)
    return _rings_to_dicts(R, simplify_rings(R, method, tolerance, min_iou, max_distance, frame, m))


def warm_up() -> None:
    """Load (or, on a machine without the numba cache, compile: about 15-20 s on one core) every
    compiled geometry kernel, by converting a small mask with holes, several parts and a corner
    contact with each method. The Docker image runs this at build time so that processes start
    with a filled cache (``NUMBA_CACHE_DIR``)."""
    m = np.zeros((24, 24), dtype=bool)
    m[2:20, 2:20] = True
    m[6:10, 6:10] = False
    m[20:23, 20:23] = True
    mask_to_simplified_polygons(m, min_iou=0.98)
    mask_to_simplified_polygons(m, min_iou=0.98, max_distance=1.0)
    exact = mask_to_polygons(m)
    simplify_polygons(exact, min_iou=0.98)
    simplify_polygons([{"exterior": [[0.5, 0.5], [9.3, 0.7], [9.1, 8.8], [0.4, 9.2]]}], min_iou=0.95)
    for method, tol in (
        ("douglas_peucker", 1.0),
        ("visvalingam_whyatt", 1.0),
        ("ratio", 0.05),
        ("slope", 10.0),
    ):
        simplify_polygons(exact, method=method, tolerance=tol)
