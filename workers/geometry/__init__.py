"""Pure geometry for LabelHub: masks <-> polygons, simplification with accuracy bounds, RLE.

No Django imports. Coordinates are ``[x, y]`` on pixel corners: pixel ``(r, c)`` covers
``[c, c+1] x [r, r+1]``; a pixel is inside a polygon iff its centre is. A polygon is
``{"exterior": [[x, y], ...], "holes": [[[x, y], ...], ...]}`` (open rings, exterior with
positive shoelace area = counter-clockwise in shapely's x-right/y-up sense, holes negative);
a region is a list of such polygons. See :mod:`workers.geometry.contours` for details.
"""

from __future__ import annotations

from ._cache import drop_stale_caches
from .contours import mask_to_polygons, validate_mask
from .convention import COORDINATE_CONVENTION
from .pipeline import mask_to_simplified_polygons
from .raster import polygons_iou, polygons_to_mask
from .rle import mask_to_rle, rle_area, rle_to_mask
from .simplify import SIMPLIFIERS, simplify_polygons
from .validity import polygon_is_valid

# numba compiles (and reads its cache) on a kernel's first call, not at import: this runs first
drop_stale_caches()

__all__ = [
    "COORDINATE_CONVENTION",
    "SIMPLIFIERS",
    "mask_to_polygons",
    "mask_to_rle",
    "mask_to_simplified_polygons",
    "polygon_is_valid",
    "polygons_iou",
    "polygons_to_mask",
    "rle_area",
    "rle_to_mask",
    "simplify_polygons",
    "validate_mask",
]
