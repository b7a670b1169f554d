"""Labeler effort: how many polygon vertices a labeler must move, add or delete to turn a pre-label
into the accepted label.

Both labels are lists of polygons (``[{"exterior", "holes"}]``, pixel-corner coordinates, on an
``height x width`` image; several regions' polygons may be passed together). A pre-label vertex
that lies within ``tolerance`` pixels of the accepted label's outline needs no edit, nor does an
accepted vertex that the pre-label's outline passes within ``tolerance`` of (the labeler finds a
vertex there already, or the edge through it). Of the vertices left, each off-outline pre-label
vertex is either moved onto an accepted vertex not yet reached or deleted, and each accepted vertex
not reached is added: ``moves = min(P, A)``, ``deletes = P - moves``, ``adds = A - moves`` for P
off-outline pre-label vertices and A unreached accepted vertices, so the effort is
``moves + adds + deletes = max(P, A)``. An empty pre-label costs one add per accepted vertex (drawing
the label from scratch).

Outlines are measured on the pixel grid: an outline pixel is a pixel on either side of the label's
mask boundary (the image frame counts as boundary), and a vertex's distance is the smallest
Euclidean distance from the centres of the (up to) four pixels touching the corner it sits on to an
outline pixel's centre, so distances are exact to within 0.71 px.
"""

from __future__ import annotations

import numpy as np

from .metrics import _distance_to, boundary

__all__ = ["polygon_vertices", "vertex_edits"]


def polygon_vertices(polygons: list[dict]) -> np.ndarray:
    """``(N, 2)`` float array of every ring's vertices ``[x, y]``."""
    pts = [p for poly in polygons for ring in [poly["exterior"], *poly.get("holes", [])] for p in ring]
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def _outline_distance(polygons: list[dict], height: int, width: int) -> np.ndarray:
    from workers.geometry import polygons_to_mask

    mask = polygons_to_mask(polygons, height, width) if polygons else np.zeros((height, width), bool)
    padded = np.pad(mask, 1)  # the image frame is an edge
    edge = (boundary(padded) | boundary(~padded))[1:-1, 1:-1]
    return _distance_to(edge)


def _vertex_distance(points: np.ndarray, dist: np.ndarray) -> np.ndarray:
    h, w = dist.shape
    if not len(points):
        return np.zeros(0)
    x = np.floor(points[:, 0]).astype(int)
    y = np.floor(points[:, 1]).astype(int)
    best = np.full(len(points), np.inf)
    for dy in (-1, 0):
        for dx in (-1, 0):
            r, c = np.clip(y + dy, 0, h - 1), np.clip(x + dx, 0, w - 1)
            best = np.minimum(best, dist[r, c])
    return best


def vertex_edits(
    prelabel: list[dict], accepted: list[dict], *, height: int, width: int, tolerance: float = 2.0
) -> dict:
    """``{"moves", "adds", "deletes", "total", "prelabel_vertices", "accepted_vertices"}`` to turn the
    ``prelabel`` polygons into the ``accepted`` ones (see the module docstring)."""
    pre, acc = polygon_vertices(prelabel), polygon_vertices(accepted)
    off = int(np.count_nonzero(_vertex_distance(pre, _outline_distance(accepted, height, width)) > tolerance))
    if prelabel:
        unreached = int(
            np.count_nonzero(_vertex_distance(acc, _outline_distance(prelabel, height, width)) > tolerance)
        )
    else:
        unreached = len(acc)
    moves = min(off, unreached)
    return {
        "moves": moves,
        "adds": unreached - moves,
        "deletes": off - moves,
        "total": max(off, unreached),
        "prelabel_vertices": len(pre),
        "accepted_vertices": len(acc),
    }
