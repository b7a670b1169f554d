"""Mask to simplified polygons in one call, with the accuracy bound checked against the mask."""

from __future__ import annotations

import numpy as np

from .contours import mask_to_polygons, validate_mask
from .simplify import SIMPLIFIERS, simplify_polygons

__all__ = ["mask_to_simplified_polygons"]


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
    """Trace ``mask`` exactly (:func:`mask_to_polygons`) and simplify it.

    With ``method="bounded"`` (default) the result has the fewest vertices found such that the
    IoU against ``mask`` (after the part/hole area filters) is >= ``min_iou`` and/or the
    Hausdorff distance to the exact outline is <= ``max_distance`` px; it is always valid and
    falls back to the exact polygons if nothing simpler meets the bound. Other methods need
    ``tolerance`` (units in :func:`simplify_polygons`) and ignore ``min_iou``.
    Coordinates are pixel corners ``[x, y]``. Returns ``[]`` for an empty mask.
    """
    m = validate_mask(mask)
    if method not in SIMPLIFIERS:
        raise ValueError(f"unknown method {method!r}; expected one of {SIMPLIFIERS}")
    polys = mask_to_polygons(m, min_part_area=min_part_area, min_hole_area=min_hole_area)
    if not polys:
        return []
    h, w = m.shape
    if method != "bounded":
        return simplify_polygons(polys, method=method, tolerance=tolerance)
    return simplify_polygons(
        polys, method="bounded", min_iou=min_iou, max_distance=max_distance, height=h, width=w
    )
