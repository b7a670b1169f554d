"""Labeler effort: how many polygon vertices a labeler must move, add or delete to turn a pre-label
into the accepted label.

Both labels are lists of regions' polygons (``[{"exterior", "holes"}]``, pixel-corner coordinates).
Every vertex of every ring is a point. A pre-label vertex within ``tolerance`` pixels of an accepted
vertex needs no edit; such pairs are matched one to one, greedily, closest first. Of the vertices
left over, each pre-label vertex is either moved onto a left-over accepted vertex or deleted, and each
accepted vertex not reached by a move is added. So ``moves = min(P, A)``, ``deletes = P - moves``,
``adds = A - moves`` for P pre-label and A accepted vertices left over, and the effort is
``moves + adds + deletes = max(P, A)``. (An empty pre-label costs one add per accepted vertex: the
cost of drawing the label from scratch.)
"""

from __future__ import annotations

import numpy as np

__all__ = ["polygon_vertices", "vertex_edits"]


def polygon_vertices(polygons: list[dict]) -> np.ndarray:
    """``(N, 2)`` float array of every ring's vertices."""
    pts = [p for poly in polygons for ring in [poly["exterior"], *poly.get("holes", [])] for p in ring]
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def _matched(pre: np.ndarray, acc: np.ndarray, tolerance: float) -> int:
    """Pairs (pre, accepted) within ``tolerance``, one to one, closest first (a grid of ``tolerance``
    cells keeps the candidate pairs local)."""
    if not len(pre) or not len(acc):
        return 0
    cell = max(tolerance, 1e-9)
    grid: dict[tuple[int, int], list[int]] = {}
    for j, (x, y) in enumerate(acc):
        grid.setdefault((int(x // cell), int(y // cell)), []).append(j)
    pairs = []
    for i, (x, y) in enumerate(pre):
        cx, cy = int(x // cell), int(y // cell)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for j in grid.get((cx + dx, cy + dy), ()):
                    d = float(np.hypot(acc[j, 0] - x, acc[j, 1] - y))
                    if d <= tolerance:
                        pairs.append((d, i, j))
    pairs.sort()
    used_p: set[int] = set()
    used_a: set[int] = set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_a:
            used_p.add(i)
            used_a.add(j)
    return len(used_p)


def vertex_edits(prelabel: list[dict], accepted: list[dict], *, tolerance: float = 2.0) -> dict:
    """``{"moves", "adds", "deletes", "total", "matched", "prelabel_vertices", "accepted_vertices"}``
    for turning the ``prelabel`` polygons into the ``accepted`` ones (see the module docstring)."""
    pre, acc = polygon_vertices(prelabel), polygon_vertices(accepted)
    matched = _matched(pre, acc, tolerance)
    left_p, left_a = len(pre) - matched, len(acc) - matched
    moves = min(left_p, left_a)
    return {
        "moves": moves,
        "adds": left_a - moves,
        "deletes": left_p - moves,
        "total": max(left_p, left_a),
        "matched": matched,
        "prelabel_vertices": len(pre),
        "accepted_vertices": len(acc),
    }
