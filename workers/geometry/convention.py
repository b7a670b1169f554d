"""The coordinate convention of every polygon LabelHub writes, as data that exports embed.

Datasets code puts :data:`COORDINATE_CONVENTION` into each export's metadata (e.g. COCO ``info``,
the LabelHub JSON header) so that a consumer need not guess where a vertex sits or which pixels
a polygon covers.
"""

from __future__ import annotations

__all__ = ["COORDINATE_CONVENTION"]

COORDINATE_CONVENTION: dict[str, str] = {
    "units": "pixels; x to the right, y downwards, origin at the top-left corner of the image",
    "vertices": (
        "pixel corners: pixel (row r, column c) covers [c, c+1] x [r, r+1], so a polygon lies within "
        "[0, width] x [0, height]; OpenCV-style pixel-centre contours are these coordinates minus 0.5"
    ),
    "inside": (
        "a pixel belongs to a polygon when its centre (c + 0.5, r + 0.5) is inside it (non-zero "
        "winding; holes subtract); rasterizing an exact traced outline gives back the mask exactly"
    ),
    "iou": (
        "area-based figures (min_iou bounds, QA IoU) count pixels by that rule, per connected part; "
        "the continuous area of a polygon differs from its pixel count (a simplified outline cuts "
        "through pixels), so an IoU computed from polygon areas can differ slightly, most for small parts; "
        "min_iou bounds are checked with ties scored against the polygon (a source pixel whose centre lies "
        "on an edge as outside, any other as inside), so they hold under any rasterizer's tie rule"
    ),
    "distance": (
        "polygon_max_distance bounds the symmetric Hausdorff distance in pixels between each simplified "
        "part's outline and the exact pixel-corner outline of that part"
    ),
}
