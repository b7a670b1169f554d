"""Matching the regions of two annotations of one image: IoU of every pair of masks, then the one-to-one
assignment that maximizes the summed IoU (the Hungarian method, scipy's ``linear_sum_assignment``).

Greedy best-first pairing is not optimal: with A overlapping X (0.6) and Y (0.55) and B overlapping
only X (0.5), greedy pairs A-X and leaves B unmatched; the assignment pairs A-Y and B-X. Polygons and
masks are compared alike, as rasterized masks (pixel-centre rule).
"""

from __future__ import annotations

import numpy as np

__all__ = ["iou_matrix", "match_masks"]


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    r0, r1 = np.flatnonzero(rows)[[0, -1]]
    c0, c1 = np.flatnonzero(cols)[[0, -1]]
    return int(r0), int(r1) + 1, int(c0), int(c1) + 1


def iou_matrix(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """``(len(a), len(b))`` IoU of every pair of bool masks of one shape (0 for disjoint boxes; two empty
    masks score 0 here: an empty region matches nothing)."""
    out = np.zeros((len(a), len(b)), dtype=np.float64)
    boxes_a, boxes_b = [_bbox(m) for m in a], [_bbox(m) for m in b]
    areas_a = [int(np.count_nonzero(m)) for m in a]
    areas_b = [int(np.count_nonzero(m)) for m in b]
    for i, ba in enumerate(boxes_a):
        if ba is None:
            continue
        for j, bb in enumerate(boxes_b):
            if bb is None:
                continue
            r0, r1 = max(ba[0], bb[0]), min(ba[1], bb[1])
            c0, c1 = max(ba[2], bb[2]), min(ba[3], bb[3])
            if r0 >= r1 or c0 >= c1:
                continue
            inter = int(np.count_nonzero(a[i][r0:r1, c0:c1] & b[j][r0:r1, c0:c1]))
            if inter:
                out[i, j] = inter / (areas_a[i] + areas_b[j] - inter)
    return out


def match_masks(ious: np.ndarray, *, min_iou: float) -> list[tuple[int, int, float]]:
    """The pairs ``(i, j, iou)`` of the assignment maximizing the summed IoU, keeping pairs with
    ``iou >= min_iou`` (and > 0); each row and column used at most once. Sorted by ``i``."""
    if ious.size == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(ious, maximize=True)
    return [
        (int(i), int(j), float(ious[i, j]))
        for i, j in zip(rows, cols, strict=True)
        if ious[i, j] > 0 and ious[i, j] >= min_iou
    ]
