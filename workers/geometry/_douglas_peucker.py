"""The Douglas-Peucker hierarchy: each vertex's significance (the tolerance at which it goes).

Rings stored flat, and how these numba kernels compile and cache: :mod:`workers.geometry.simplify`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_INF = np.inf


@njit(cache=True, inline="always")
def _seg_d2(px, py, ax, ay, bx, by):
    abx, aby = bx - ax, by - ay
    apx, apy = px - ax, py - ay
    den = abx * abx + aby * aby
    t = (apx * abx + apy * aby) / (den if den > 0 else 1.0)
    if t < 0.0:
        t = 0.0
    elif t > 1.0:
        t = 1.0
    qx, qy = apx - t * abx, apy - t * aby
    return qx * qx + qy * qy


@njit(cache=True)
def _dp_split(pts, a, n, s, e):
    """First farthest vertex of ring-local closed indices (s, e) from the chord s -> e."""
    ax, ay = pts[a + s % n, 0], pts[a + s % n, 1]
    bx, by = pts[a + e % n, 0], pts[a + e % n, 1]
    best, k = -1.0, -1
    for i in range(s + 1, e):
        d2 = _seg_d2(pts[a + i, 0], pts[a + i, 1], ax, ay, bx, by)
        if d2 > best:
            best, k = d2, i
    return k, math.sqrt(best)


@njit(cache=True)
def dp_significance(pts, off):
    """Per-vertex Douglas-Peucker significance (keeping ``sig > t`` = DP at tolerance ``t``):
    the first vertex and the vertex farthest from it are kept (inf), the better split of the two
    halves too (so every ring keeps >= 3 vertices), every other vertex gets the distance at which
    it was split off, capped by its parent's (monotone hierarchy)."""
    n_all = pts.shape[0]
    sig = np.zeros(n_all)
    st_s = np.empty(n_all + 4, np.int64)
    st_e = np.empty(n_all + 4, np.int64)
    st_p = np.empty(n_all + 4)
    for r in range(off.shape[0] - 1):
        a = off[r]
        n = off[r + 1] - a
        sig[a] = _INF
        x0, y0 = pts[a, 0], pts[a, 1]
        best, far = -1.0, 0
        for i in range(n):
            dx, dy = pts[a + i, 0] - x0, pts[a + i, 1] - y0
            d = dx * dx + dy * dy
            if d > best:
                best, far = d, i
        sig[a + far] = _INF
        top = 0
        # first level: split both halves; the larger split is forced (ties: the first half)
        k1, d1 = -1, -1.0
        k2, d2 = -1, -1.0
        if far - 1 > 0:
            k1, d1 = _dp_split(pts, a, n, 0, far)
        if n - far - 1 > 0:
            k2, d2 = _dp_split(pts, a, n, far, n)
        if k1 >= 0:
            s1 = _INF if (k2 < 0 or d1 >= d2) else d1
            sig[a + k1] = s1
            st_s[top], st_e[top], st_p[top] = 0, k1, s1
            st_s[top + 1], st_e[top + 1], st_p[top + 1] = k1, far, s1
            top += 2
        if k2 >= 0:
            s2 = _INF if (k1 < 0 or d2 > d1) else d2
            sig[a + k2] = s2
            st_s[top], st_e[top], st_p[top] = far, k2, s2
            st_s[top + 1], st_e[top + 1], st_p[top + 1] = k2, n, s2
            top += 2
        while top > 0:
            top -= 1
            s, e, ps = st_s[top], st_e[top], st_p[top]
            if e - s - 1 <= 0:
                continue
            k, dmax = _dp_split(pts, a, n, s, e)
            v = dmax if dmax < ps else ps
            sig[a + k] = v
            st_s[top], st_e[top], st_p[top] = s, k, v
            st_s[top + 1], st_e[top + 1], st_p[top + 1] = k, e, v
            top += 2
    return sig
