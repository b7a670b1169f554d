"""Slope-based filtering: the vertices kept where the outline's direction turns.

Rings stored flat, and how these numba kernels compile and cache: :mod:`workers.geometry.simplify`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def slope_keep(pts, off, tol_deg, min_len, window):
    """Slope-based filtering (see ``simplify``'s module docstring): walk each ring from its first
    vertex; from the current anchor, follow the directions to the next vertices (those at least
    ``min_len`` px away count; nearer ones count as direction 0 relative to the first far one)
    while their spread stays within ``tol_deg`` degrees, looking at most ``window`` vertices
    ahead; the vertex before the first one that breaks the cone becomes the next anchor. Each
    ring keeps at least 3 vertices (its first, n/3 and 2n/3 are added if needed)."""
    tol = math.radians(tol_deg)
    keep = np.zeros(pts.shape[0], np.bool_)
    two_pi = 2 * math.pi
    for r in range(off.shape[0] - 1):
        a0, b0 = off[r], off[r + 1]
        n = b0 - a0
        keep[a0] = True
        a = 0
        while a < n:
            j1 = min(n + 1, a + 1 + window)
            axp, ayp = pts[a0 + a, 0], pts[a0 + a, 1]
            ref = 0.0
            have_ref = False
            hi = 0.0
            lo = 0.0
            bad = -1
            for k in range(j1 - a - 1):
                p = a0 + (a + 1 + k) % n
                vx, vy = pts[p, 0] - axp, pts[p, 1] - ayp
                rel = 0.0
                if math.hypot(vx, vy) >= min_len:
                    ang = math.atan2(vy, vx)
                    if not have_ref:
                        ref, have_ref = ang, True
                    rel = (ang - ref + math.pi) % two_pi - math.pi
                if k == 0:
                    hi = lo = rel
                else:
                    hi = max(hi, rel)
                    lo = min(lo, rel)
                if hi - lo > tol and bad < 0:
                    bad = k
                    break
            if not have_ref:
                a = j1 - 1
            elif bad >= 0:
                a = a + max(bad, 1)
            else:
                a = j1 - 1
            if a < n:
                keep[a0 + a] = True
        c = 0
        for i in range(a0, b0):
            if keep[i]:
                c += 1
        if c < 3:
            for i in (a0, a0 + n // 3, a0 + (2 * n) // 3):
                keep[i] = True
    return keep
