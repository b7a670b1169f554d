"""Validity: a sufficient test that needs no GEOS (edges that touch or cross, found through a grid).

Rings stored flat, and how these numba kernels compile and cache: :mod:`workers.geometry.simplify`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._edge_grid import _box_grid, _grid_index
from ._sort import sort_indices


@njit(cache=True, inline="always")
def _orient(ax, ay, bx, by, cx, cy):
    v = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    scale = abs(bx - ax) + abs(by - ay) + abs(cx - ax) + abs(cy - ay)
    if abs(v) <= 1e-9 * scale * scale:
        return 0
    return 1 if v > 0 else -1


@njit(cache=True, inline="always")
def _ccw_from(ax, ay, bx, by):
    """Angle in [0, 2 pi) from direction a counter-clockwise to direction b."""
    t = math.atan2(ax * by - ay * bx, ax * bx + ay * by)
    return t if t >= 0 else t + 2 * math.pi


@njit(cache=True)
def _sectors_disjoint(pts, i, pi, ni, j, pj, nj):
    """Two rings meet at vertex ``pts[i] == pts[j]`` (prev/next vertices ``pi``/``ni`` and
    ``pj``/``nj``). Each ring has its polygon's area on its left, i.e. in the sector from the
    ray to its next vertex counter-clockwise to the ray to its previous vertex. True when the
    two open sectors are strictly disjoint (they touch at the point only), with a margin:
    nearly collinear rays count as overlapping."""
    vx, vy = pts[i, 0], pts[i, 1]
    a1x, a1y = pts[ni, 0] - vx, pts[ni, 1] - vy  # A's sector: from a1 ccw to a2
    a2x, a2y = pts[pi, 0] - vx, pts[pi, 1] - vy
    b1x, b1y = pts[nj, 0] - vx, pts[nj, 1] - vy
    b2x, b2y = pts[pj, 0] - vx, pts[pj, 1] - vy
    eps = 1e-9
    # B's sector must lie in A's complement, which runs ccw from a2 to a1
    span = _ccw_from(a2x, a2y, a1x, a1y)
    t1 = _ccw_from(a2x, a2y, b1x, b1y)
    t2 = _ccw_from(a2x, a2y, b2x, b2y)
    return eps < t1 and t1 + eps < t2 and t2 + eps < span


@njit(cache=True)
def _edge_pair(i, j, pts, nxt, prv, ring, poly, flag):
    """Edges ``i`` and ``j`` (boxes overlapping): mark both polygons suspect if the edges meet
    anywhere except where allowed (consecutive edges at their shared vertex without folding
    back; rings of different polygons at a shared vertex with disjoint sectors)."""
    ax, ay = pts[i, 0], pts[i, 1]
    bx, by = pts[nxt[i], 0], pts[nxt[i], 1]
    cx, cy = pts[j, 0], pts[j, 1]
    dx, dy = pts[nxt[j], 0], pts[nxt[j], 1]
    if nxt[i] == j or nxt[j] == i:
        # consecutive edges share one vertex: bad only if they fold back onto each other
        if nxt[i] == j:
            o = _orient(ax, ay, bx, by, dx, dy)
            dot = (bx - ax) * (dx - cx) + (by - ay) * (dy - cy)
        else:
            o = _orient(cx, cy, dx, dy, bx, by)
            dot = (dx - cx) * (bx - ax) + (dy - cy) * (by - ay)
        if o == 0 and dot < 0:
            flag[poly[ring[i]]] = max(flag[poly[ring[i]]], 1)
        return
    o1 = _orient(ax, ay, bx, by, cx, cy)
    o2 = _orient(ax, ay, bx, by, dx, dy)
    o3 = _orient(cx, cy, dx, dy, ax, ay)
    o4 = _orient(cx, cy, dx, dy, bx, by)
    if not (o1 * o2 <= 0 and o3 * o4 <= 0):
        return
    pi_, pj_ = poly[ring[i]], poly[ring[j]]
    # a touch at a vertex shared exactly by two rings of different polygons, where the edges
    # meet only there (not collinear: two distinct lines meet once; collinear: pointing away
    # from each other), is decided by the sectors of the two rings
    if pi_ != pj_:
        vi = -1
        vj = -1
        if ax == cx and ay == cy:
            vi, vj = i, j
            ux, uy, wx, wy = bx - ax, by - ay, dx - cx, dy - cy
        elif ax == dx and ay == dy:
            vi, vj = i, nxt[j]
            ux, uy, wx, wy = bx - ax, by - ay, cx - dx, cy - dy
        elif bx == cx and by == cy:
            vi, vj = nxt[i], j
            ux, uy, wx, wy = ax - bx, ay - by, dx - cx, dy - cy
        elif bx == dx and by == dy:
            vi, vj = nxt[i], nxt[j]
            ux, uy, wx, wy = ax - bx, ay - by, cx - dx, cy - dy
        else:
            ux, uy, wx, wy = 0.0, 0.0, 0.0, 0.0
        if o1 == 0 and o2 == 0 and ux * wx + uy * wy >= 0:
            vi = -1  # collinear and overlapping beyond the shared vertex
        if vi >= 0 and _sectors_disjoint(pts, vi, prv[vi], nxt[vi], vj, prv[vj], nxt[vj]):
            if _sectors_disjoint(pts, vj, prv[vj], nxt[vj], vi, prv[vi], nxt[vi]):
                return
    flag[pi_] = max(flag[pi_], 1)
    flag[pj_] = max(flag[pj_], 1)


@njit(cache=True)
def _edge_contacts(pts, nxt, prv, ring, poly, xmin, xmax, ymin, ymax, flag):
    """Every pair of edges whose boxes overlap goes through :func:`_edge_pair`, found with a
    uniform grid (about 2 edges per cell): each edge is listed in the cells its box covers, and
    a pair is tested only in the cell holding the lower-left corner of the two boxes' overlap,
    so once."""
    n = pts.shape[0]
    if n == 0:
        return
    gx0, gy0 = xmin.min(), ymin.min()
    cs, nx, ny, cnt, cells = _box_grid(xmin, xmax, ymin, ymax, gx0, gy0, xmax.max() - gx0, ymax.max() - gy0)
    for cell in range(nx * ny):
        a, b = cnt[cell], cnt[cell + 1]
        for u in range(a, b):
            i = cells[u]
            for v in range(u + 1, b):
                j = cells[v]
                if xmin[j] > xmax[i] or xmax[j] < xmin[i] or ymin[j] > ymax[i] or ymax[j] < ymin[i]:
                    continue
                ox = max(xmin[i], xmin[j])
                oy = max(ymin[i], ymin[j])
                if _grid_index(oy, gy0, cs, ny) * nx + _grid_index(ox, gx0, cs, nx) != cell:
                    continue  # tested in the cell of the overlap's corner
                _edge_pair(i, j, pts, nxt, prv, ring, poly, flag)


@njit(cache=True)
def suspect_polygons(pts, off, poly, want_positive):
    """Per polygon: 0 = certainly valid and disjoint from the others, 1 = not shown valid here
    (let GEOS decide), 2 = certainly invalid (a ring with < 3 vertices, zero area or the wrong
    orientation). "Certainly valid" needs: no two edges meet except consecutive edges of a ring
    at their shared vertex, or rings of *different* polygons sharing a vertex with their areas
    on strictly disjoint sides of it (parts touching at a point); then the winding number of
    the other rings is 0 at every exterior and 1 at every hole, and each hole lies inside its
    own exterior (so no hole is outside its exterior or inside another hole, and no part
    overlaps another). Both polygons of a suspect pair are marked."""
    R = off.shape[0] - 1
    n = pts.shape[0]
    n_poly = 0
    for r in range(R):
        if poly[r] + 1 > n_poly:
            n_poly = poly[r] + 1
    flag = np.zeros(n_poly, np.int8)
    xmin = np.empty(n)
    xmax = np.empty(n)
    ymin = np.empty(n)
    ymax = np.empty(n)
    ring = np.empty(n, np.int64)
    nxt = np.empty(n, np.int64)
    prv = np.empty(n, np.int64)
    for r in range(R):
        a, b = off[r], off[r + 1]
        if b - a < 3:
            flag[poly[r]] = 2
            continue
        area = 0.0
        for i in range(a, b):
            j = i + 1 if i + 1 < b else a
            area += pts[i, 0] * pts[j, 1] - pts[j, 0] * pts[i, 1]
            ring[i] = r
            nxt[i] = j
            prv[j] = i
            xmin[i] = min(pts[i, 0], pts[j, 0])
            xmax[i] = max(pts[i, 0], pts[j, 0])
            ymin[i] = min(pts[i, 1], pts[j, 1])
            ymax[i] = max(pts[i, 1], pts[j, 1])
        if (area > 0) != want_positive[r] or area == 0.0:
            flag[poly[r]] = 2
    for r in range(R):
        if flag[poly[r]] == 2:
            # the caller repairs these first; the others are left unchecked (suspect)
            for p in range(n_poly):
                if flag[p] == 0:
                    flag[p] = 1
            return flag
    _edge_contacts(pts, nxt, prv, ring, poly, xmin, xmax, ymin, ymax, flag)
    # Nesting. With no edge contacts left, the region is valid when the winding number of the
    # other rings is 0 at every exterior and 1 at every hole (exteriors count +1 inside, holes
    # -1), and each hole lies inside its own exterior. Each ring is probed at the midpoint of
    # its first edge (on no other ring: edges meet only at shared vertices); all probes are
    # answered in one pass over the edges, each edge visiting the probes in its row span.
    first = np.empty(R, np.int64)  # the exterior ring of each ring's polygon
    qx = np.empty(R)
    qy = np.empty(R)
    for r in range(R):
        first[r] = r if (r == 0 or poly[r - 1] != poly[r]) else first[r - 1]
        a = off[r]
        qx[r] = 0.5 * (pts[a, 0] + pts[a + 1, 0])
        qy[r] = 0.5 * (pts[a, 1] + pts[a + 1, 1])
    qorder = np.arange(R)
    sort_indices(qorder, qy, False)
    sqy = np.empty(R)
    for k in range(R):
        sqy[k] = qy[qorder[k]]
    w_all = np.zeros(R, np.int64)
    w_ext = np.zeros(R, np.int64)
    unsure = np.zeros(R, np.bool_)
    for i in range(n):
        ay, by = pts[i, 1], pts[nxt[i], 1]
        if ay == by:
            continue
        ax, bx = pts[i, 0], pts[nxt[i], 0]
        ylo, yhi = (ay, by) if ay < by else (by, ay)
        lo, hi = 0, R  # first probe with qy >= ylo
        while lo < hi:
            q = (lo + hi) >> 1
            if sqy[q] < ylo:
                lo = q + 1
            else:
                hi = q
        re = ring[i]
        wgt = 1 if by < ay else -1
        k = lo
        while k < R and sqy[k] < yhi:
            q = qorder[k]
            k += 1
            if q == re:
                continue
            xc = ax + (qy[q] - ay) * (bx - ax) / (by - ay)
            if xc == qx[q]:
                unsure[q] = True  # the probe lies on this edge: leave it to GEOS
            elif xc < qx[q]:
                w_all[q] += wgt
                if re == first[q]:
                    w_ext[q] += wgt
    for q in range(R):
        if first[q] == q:
            ok = w_all[q] == 0
        else:
            ok = w_all[q] == 1 and w_ext[q] == 1
        if ok and not unsure[q]:
            continue
        # mark the probe's polygon and every polygon whose exterior's box holds the probe
        flag[poly[q]] = max(flag[poly[q]], 1)
        for e in range(R):
            if first[e] != e:
                continue
            a, b = off[e], off[e + 1]
            if xmin[a:b].min() <= qx[q] <= xmax[a:b].max() and ymin[a:b].min() <= qy[q] <= ymax[a:b].max():
                flag[poly[e]] = max(flag[poly[e]], 1)
    return flag
