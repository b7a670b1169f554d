"""The Hausdorff distance between outlines (directed, sampled, through a grid of edges).

Rings stored flat, and how these numba kernels compile and cache: :mod:`workers.geometry.simplify`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._douglas_peucker import _seg_d2
from ._edge_grid import _box_grid, _grid_index


@njit(cache=True)
def directed_outline_distance(src_pts, src_off, dst_pts, dst_off, step, x0, y0, x1, y1):
    """Largest distance from a point of the ``src`` rings, sampled every ``step`` px or closer
    along each edge (vertices included, like ``shapely.segmentize``), to the nearest edge of the
    ``dst`` rings. The dst edges sit in a uniform grid over the box ``[x0, x1] x [y0, y1]``
    (which must hold both outlines); each point searches rings of cells outwards and stops once
    the next ring cannot hold anything nearer. Adding ``step / 2`` makes it an upper bound of
    the directed Hausdorff distance (the distance is 1-Lipschitz along the outline)."""
    nd = dst_pts.shape[0]
    if nd == 0 or src_pts.shape[0] == 0:
        return 0.0
    # dst edges and their boxes
    ea = np.empty(nd, np.int64)
    eb = np.empty(nd, np.int64)
    for r in range(dst_off.shape[0] - 1):
        a, b = dst_off[r], dst_off[r + 1]
        for i in range(a, b):
            ea[i] = i
            eb[i] = i + 1 if i + 1 < b else a
    bx0 = np.minimum(dst_pts[ea, 0], dst_pts[eb, 0])
    bx1 = np.maximum(dst_pts[ea, 0], dst_pts[eb, 0])
    by0 = np.minimum(dst_pts[ea, 1], dst_pts[eb, 1])
    by1 = np.maximum(dst_pts[ea, 1], dst_pts[eb, 1])
    cs, nx, ny, cnt, cells = _box_grid(bx0, bx1, by0, by1, x0, y0, max(x1 - x0, 1e-9), max(y1 - y0, 1e-9))
    worst = 0.0
    for r in range(src_off.shape[0] - 1):
        a, b = src_off[r], src_off[r + 1]
        for i in range(a, b):
            j = i + 1 if i + 1 < b else a
            px0, py0 = src_pts[i, 0], src_pts[i, 1]
            dx, dy = src_pts[j, 0] - px0, src_pts[j, 1] - py0
            k = max(1, int(math.ceil(math.hypot(dx, dy) / step)))
            for s in range(k):
                px = px0 + dx * (s / k)
                py = py0 + dy * (s / k)
                pc = _grid_index(px, x0, cs, nx)
                pr = _grid_index(py, y0, cs, ny)
                best2 = np.inf
                ring = 0
                while True:
                    for rr in range(pr - ring, pr + ring + 1):
                        if rr < 0 or rr >= ny:
                            continue
                        edge_row = rr == pr - ring or rr == pr + ring
                        for cc in range(pc - ring, pc + ring + 1):
                            if cc < 0 or cc >= nx:
                                continue
                            if not edge_row and cc != pc - ring and cc != pc + ring:
                                continue
                            cell = rr * nx + cc
                            for u in range(cnt[cell], cnt[cell + 1]):
                                e = cells[u]
                                d2 = _seg_d2(
                                    px,
                                    py,
                                    dst_pts[ea[e], 0],
                                    dst_pts[ea[e], 1],
                                    dst_pts[eb[e], 0],
                                    dst_pts[eb[e], 1],
                                )
                                if d2 < best2:
                                    best2 = d2
                    # anything in ring + 1 or beyond is at least ring * cs away
                    if best2 <= (ring * cs) ** 2 or (ring > nx and ring > ny):
                        break
                    ring += 1
                d = math.sqrt(best2)
                if d > worst:
                    worst = d
    return worst
