"""Derived rings: crack midpoints, edge moments, kept vertices, line-fit refinement (a candidate
simplification at one tolerance).

Rings stored flat, and how these numba kernels compile and cache: :mod:`workers.geometry.simplify`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def edge_moments(pts, off):
    """Prefix sums (n + 1, 6) of the exact length-weighted moments [L, Sx, Sy, Sxx, Syy, Sxy]
    of every edge in ring-local coordinates, and the ring origins (R, 2)."""
    n = pts.shape[0]
    R = off.shape[0] - 1
    P = np.zeros((n + 1, 6))
    origin = np.empty((R, 2))
    for r in range(R):
        a, b = off[r], off[r + 1]
        ox, oy = pts[a, 0], pts[a, 1]
        origin[r, 0], origin[r, 1] = ox, oy
        for i in range(a, b):
            j = i + 1 if i + 1 < b else a
            px, py = pts[i, 0] - ox, pts[i, 1] - oy
            qx, qy = pts[j, 0] - ox, pts[j, 1] - oy
            L = math.hypot(qx - px, qy - py)
            P[i + 1, 0] = P[i, 0] + L
            P[i + 1, 1] = P[i, 1] + L * (px + qx) / 2
            P[i + 1, 2] = P[i, 2] + L * (py + qy) / 2
            P[i + 1, 3] = P[i, 3] + L * (px**2 + px * qx + qx**2) / 3
            P[i + 1, 4] = P[i, 4] + L * (py**2 + py * qy + qy**2) / 3
            P[i + 1, 5] = P[i, 5] + L * (2 * px * py + px * qy + qx * py + 2 * qx * qy) / 6
    return P, origin


@njit(cache=True)
def keep_mask(sig, off, t):
    """``sig > t``, plus each ring's 3 most significant vertices where fewer are kept."""
    keep = sig > t
    for r in range(off.shape[0] - 1):
        a, b = off[r], off[r + 1]
        c = 0
        for i in range(a, b):
            if keep[i]:
                c += 1
        for _ in range(min(3, b - a) - c):
            # add the most significant vertex not kept yet (ties: the first)
            best = -1
            for i in range(a, b):
                if not keep[i] and (best < 0 or sig[i] > sig[best]):
                    best = i
            keep[best] = True
    return keep


@njit(cache=True)
def kept_rings(pts, off, keep):
    """Kept vertices as flat (pts, off)."""
    n = 0
    for i in range(keep.shape[0]):
        if keep[i]:
            n += 1
    out = np.empty((n, 2))
    noff = np.zeros(off.shape[0], np.int64)
    w = 0
    for r in range(off.shape[0] - 1):
        for i in range(off[r], off[r + 1]):
            if keep[i]:
                out[w, 0], out[w, 1] = pts[i, 0], pts[i, 1]
                w += 1
        noff[r + 1] = w
    return out, noff


@njit(cache=True)
def fit_shift(t, dp):
    """Max line-fit vertex shift (px) for a ring simplified at effective tolerance ``t``:
    min(max(2, 1.5 s), 8) with s = t for Douglas-Peucker (``dp``), sqrt(t) for the area/height
    hierarchies (t < 0: nothing removed, 2 px)."""
    s = t if dp else math.sqrt(max(t, 0.0))
    v = max(2.0, 1.5 * s)
    return v if v < 8.0 else 8.0


@njit(cache=True)
def _fit_ring(pts, r, off, kk, nk, P, origin, shift, fh, fw, out, w0, cxs, cys, uxs, uys):
    """Refine the ``nk`` kept vertices ``kk[:nk]`` (in ring order) of ring ``r`` into
    ``out[w0:w0 + nk]``: each moves to the intersection of the total-least-squares lines of the
    base outline parts its two edges replace (exact edge moments ``P``), unless the lines are
    within 8 degrees of parallel, the move exceeds ``shift`` px, or (``fh`` > 0) the point lies
    outside the image ``[0, fw] x [0, fh]``."""
    sin8 = math.sin(math.radians(8.0))
    ox, oy = origin[r, 0], origin[r, 1]
    for j in range(nk):
        if j < nk - 1:
            m0 = P[kk[j + 1], 0] - P[kk[j], 0]
            m1 = P[kk[j + 1], 1] - P[kk[j], 1]
            m2 = P[kk[j + 1], 2] - P[kk[j], 2]
            m3 = P[kk[j + 1], 3] - P[kk[j], 3]
            m4 = P[kk[j + 1], 4] - P[kk[j], 4]
            m5 = P[kk[j + 1], 5] - P[kk[j], 5]
        else:
            a, b, s0 = off[r], off[r + 1], kk[0]
            m0 = P[b, 0] - P[kk[j], 0] + P[s0, 0] - P[a, 0]
            m1 = P[b, 1] - P[kk[j], 1] + P[s0, 1] - P[a, 1]
            m2 = P[b, 2] - P[kk[j], 2] + P[s0, 2] - P[a, 2]
            m3 = P[b, 3] - P[kk[j], 3] + P[s0, 3] - P[a, 3]
            m4 = P[b, 4] - P[kk[j], 4] + P[s0, 4] - P[a, 4]
            m5 = P[b, 5] - P[kk[j], 5] + P[s0, 5] - P[a, 5]
        ws = m0 if m0 > 1e-12 else 1e-12
        lx, ly = m1 / ws, m2 / ws
        vxx = m3 / ws - lx**2
        vyy = m4 / ws - ly**2
        vxy = m5 / ws - lx * ly
        th = 0.5 * math.atan2(2 * vxy, vxx - vyy)
        cxs[j], cys[j] = lx + ox, ly + oy
        uxs[j], uys[j] = math.cos(th), math.sin(th)
    for j in range(nk):
        p = j - 1 if j > 0 else nk - 1
        c1x, c1y, u1x, u1y = cxs[p], cys[p], uxs[p], uys[p]
        ux, uy = uxs[j], uys[j]
        den = u1x * uy - u1y * ux
        dx, dy = cxs[j] - c1x, cys[j] - c1y
        al = (dx * uy - dy * ux) / (den if abs(den) > 1e-12 else 1.0)
        ix, iy = c1x + al * u1x, c1y + al * u1y
        qx, qy = pts[kk[j], 0], pts[kk[j], 1]
        good = abs(den) > sin8 and math.hypot(ix - qx, iy - qy) <= shift
        if fh > 0:
            good = good and ix >= 0 and ix <= fw and iy >= 0 and iy <= fh
        if good:
            out[w0 + j, 0], out[w0 + j, 1] = ix, iy
        else:
            out[w0 + j, 0], out[w0 + j, 1] = qx, qy


@njit(cache=True)
def make_candidate(pts, off, sig, t, refine, dp, P, origin, fh, fw):
    """The simplification at tolerance ``t`` as flat (pts, off): per ring the vertices with
    ``sig > t`` (at least its 3 most significant), line-fit refined if ``refine`` and t >= 0,
    each ring with the shift bound :func:`fit_shift` of its own effective tolerance (the largest
    significance it dropped); a ring that dropped nothing stays exactly as it is."""
    keep = keep_mask(sig, off, t)
    out, noff = kept_rings(pts, off, keep)
    if not (refine and t >= 0):
        return out, noff
    kk = np.flatnonzero(keep)
    m = kk.shape[0]
    cxs = np.empty(m)
    cys = np.empty(m)
    uxs = np.empty(m)
    uys = np.empty(m)
    for r in range(off.shape[0] - 1):
        s, e = noff[r], noff[r + 1]
        if e - s == off[r + 1] - off[r]:
            continue  # nothing dropped: the ring stays as it is (a fit would only add rounding)
        tr = -1.0
        for i in range(off[r], off[r + 1]):
            if not keep[i] and sig[i] > tr:
                tr = sig[i]
        _fit_ring(
            pts, r, off, kk[s:e], e - s, P, origin, fit_shift(tr, dp), fh, fw, out, s, cxs, cys, uxs, uys
        )
    return out, noff
