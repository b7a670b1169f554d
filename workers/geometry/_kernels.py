"""Compiled (numba) kernels of the simplifiers and of the bounded search.

Every function works on rings stored flat: ring ``k`` is ``pts[off[k]:off[k + 1]]`` (open,
float64 ``(n, 2)`` x/y in pixel-corner coordinates). They reproduce the NumPy formulations
documented in :mod:`workers.geometry.simplify` operation for operation, so that the two give the
same vertices; see that module for the meaning of each quantity. Compiled on first use and
cached on disk next to this file (``NUMBA_CACHE_DIR`` moves the cache).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._trace import _heapsort

_INF = np.inf


# ---------------------------------------------------------------------------------------------
# Sorting (hand-written heapsorts: numba's own sorts take seconds each to compile)
# ---------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _after(key, i, j, desc):
    """Does index ``i`` come after ``j`` in the order by key (descending if ``desc``), ties by
    index?"""
    ki, kj = key[i], key[j]
    if ki != kj:
        return ki < kj if desc else ki > kj
    return i > j


@njit(cache=True)
def _sift_idx(idx, key, desc, j, n):
    v = idx[j]
    while True:
        c = 2 * j + 1
        if c >= n:
            break
        if c + 1 < n and _after(key, idx[c + 1], idx[c], desc):
            c += 1
        if _after(key, idx[c], v, desc):
            idx[j] = idx[c]
            j = c
        else:
            break
    idx[j] = v


@njit(cache=True)
def sort_indices(idx, key, desc):
    """Sort the index array ``idx`` in place by ``key[idx]`` (ascending, or descending if
    ``desc``), ties by index: a total order, so the heapsort's instability does not matter."""
    n = idx.shape[0]
    for j in range(n // 2 - 1, -1, -1):
        _sift_idx(idx, key, desc, j, n)
    for end in range(n - 1, 0, -1):
        idx[0], idx[end] = idx[end], idx[0]
        _sift_idx(idx, key, desc, 0, end)


# ---------------------------------------------------------------------------------------------
# Douglas-Peucker hierarchy
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Visvalingam-Whyatt style elimination (binary heap, lazy deletion)
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _sift_down(heap, pos, key, j, size):
    """Heap order: smaller key first, ties by lower vertex index."""
    v = heap[j]
    kv = key[v]
    while True:
        c = 2 * j + 1
        if c >= size:
            break
        hc = heap[c]
        kc = key[hc]
        if c + 1 < size:
            h2 = heap[c + 1]
            k2 = key[h2]
            if k2 < kc or (k2 == kc and h2 < hc):
                c, hc, kc = c + 1, h2, k2
        if kc < kv or (kc == kv and hc < v):
            heap[j] = hc
            pos[hc] = j
            j = c
        else:
            break
    heap[j] = v
    pos[v] = j


@njit(cache=True)
def _sift_up(heap, pos, key, j):
    v = heap[j]
    kv = key[v]
    while j > 0:
        p = (j - 1) >> 1
        hp = heap[p]
        kp = key[hp]
        if kv < kp or (kv == kp and v < hp):
            heap[j] = hp
            pos[hp] = j
            j = p
        else:
            break
    heap[j] = v
    pos[v] = j


@njit(cache=True, inline="always")
def _tri_metric(pts, p, q, r, height):
    px, py = pts[p, 0], pts[p, 1]
    qx, qy = pts[q, 0], pts[q, 1]
    rx, ry = pts[r, 0], pts[r, 1]
    cross = abs((px - qx) * (ry - qy) - (py - qy) * (rx - qx))
    if not height:
        return 0.5 * cross
    base = math.hypot(rx - px, ry - py)
    if base > 0:
        return cross / base
    return math.hypot(qx - px, qy - py)


@njit(cache=True)
def elimination_significance(pts, off, height):
    """Visvalingam-Whyatt elimination, strictly sequential: repeatedly remove the vertex of
    smallest metric (ties: lowest index), recomputing its two neighbours (an indexed binary
    heap, updated in place). ``height`` False: triangle area (px^2); True: triangle height over
    the neighbours' chord (px). Effective significance is the running maximum of the removed
    metrics per ring (monotone); the last 3 vertices of each ring get inf."""
    n_all = pts.shape[0]
    sig = np.full(n_all, _INF)
    key = np.empty(n_all)
    heap = np.empty(n_all, np.int64)
    pos = np.empty(n_all, np.int64)
    prv = np.empty(n_all, np.int64)
    nxt = np.empty(n_all, np.int64)
    for r in range(off.shape[0] - 1):
        a, b = off[r], off[r + 1]
        n = b - a
        if n <= 3:
            continue
        for i in range(a, b):
            prv[i] = i - 1 if i > a else b - 1
            nxt[i] = i + 1 if i + 1 < b else a
        for i in range(a, b):
            key[i] = _tri_metric(pts, prv[i], i, nxt[i], height)
            heap[i - a] = i
            pos[i] = i - a
        size = n
        for j in range(size // 2 - 1, -1, -1):
            _sift_down(heap, pos, key, j, size)
        runmax = 0.0
        count = n
        while count > 3:
            i = heap[0]
            m = key[i]
            size -= 1
            heap[0] = heap[size]
            pos[heap[0]] = 0
            _sift_down(heap, pos, key, 0, size)
            sig[i] = m if m > runmax else runmax
            if m > runmax:
                runmax = m
            p, q = prv[i], nxt[i]
            nxt[p] = q
            prv[q] = p
            count -= 1
            if count > 3:
                for v in (p, q):
                    old = key[v]
                    key[v] = _tri_metric(pts, prv[v], v, nxt[v], height)
                    if key[v] < old:
                        _sift_up(heap, pos, key, pos[v])
                    else:
                        _sift_down(heap, pos, key, pos[v], size)
    return sig


# ---------------------------------------------------------------------------------------------
# Slope-based filtering
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Derived rings: crack midpoints, edge moments, kept vertices, line-fit refinement
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# IoU against a source mask window, from scanline crossings
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def row_prefix(src):
    """pref[r, c] = source pixels of row r left of column c, shape (h, w + 1), int32."""
    h, w = src.shape
    pref = np.empty((h, w + 1), np.int32)
    for r in range(h):
        acc = 0
        pref[r, 0] = 0
        for c in range(w):
            acc += src[r, c]
            pref[r, c + 1] = acc
    return pref


@njit(cache=True, inline="always")
def _window_rows(ay, by, y0, h):
    """Window rows [lo, hi) whose pixel-centre line y = r + 0.5 (image row r) an edge between
    heights ``ay`` and ``by`` crosses (half-open: ylo <= r + 0.5 < yhi)."""
    ylo, yhi = (ay, by) if ay < by else (by, ay)
    lo = int(math.ceil(ylo - 0.5)) - y0
    hi = int(math.ceil(yhi - 0.5)) - y0
    lo = 0 if lo < 0 else (h if lo > h else lo)
    hi = 0 if hi < 0 else (h if hi > h else hi)
    return lo, hi


@njit(cache=True, inline="always")
def _window_col(ax, ay, slope, image_row, x0, w):
    """First window column whose pixel centre lies right of the edge's crossing with image row
    ``image_row``, clipped to [0, w]. Computed in image coordinates with the arithmetic of
    ``raster.polygons_to_mask`` and shifted afterwards, so a window gives bit for bit the
    pixels of the whole image."""
    x = ax + (image_row + 0.5 - ay) * slope
    col = int(math.floor(x - 0.5)) + 1 - x0
    return 0 if col < 0 else (w if col > w else col)


@njit(cache=True, inline="always")
def _edge_rows(pts, i, j, y0, h):
    """For the edge ``pts[i] -> pts[j]``: its start (x, y), slope dx/dy, winding increment (+1
    upward, the inside on its right) and the window rows [lo, hi) it crosses."""
    ax, ay = pts[i, 0], pts[i, 1]
    bx, by = pts[j, 0], pts[j, 1]
    lo, hi = _window_rows(ay, by, y0, h)
    slope = (bx - ax) / (by - ay) if hi > lo else 0.0
    return ax, ay, slope, (1 if by < ay else -1), lo, hi


@njit(cache=True)
def row_prefix_of_rings(pts, off, x0, y0, h, w):
    """:func:`row_prefix` of the rings' raster in the window (pixel-centre rule, non-zero
    winding, the crossing arithmetic of ``raster.polygons_to_mask``) without building the mask:
    the crossings' winding increments are accumulated along each row."""
    acc = np.zeros((h, w + 1), np.int32)
    for r_ in range(off.shape[0] - 1):
        a, b = off[r_], off[r_ + 1]
        for i in range(a, b):
            ax, ay, slope, wgt, rlo, rhi = _edge_rows(pts, i, i + 1 if i + 1 < b else a, y0, h)
            for row in range(rlo, rhi):
                acc[row, _window_col(ax, ay, slope, row + y0, x0, w)] += wgt
    pref = np.empty((h, w + 1), np.int32)
    for r in range(h):
        wind = 0
        cnt = 0
        pref[r, 0] = 0
        for c in range(w):
            wind += acc[r, c]
            if wind > 0:
                cnt += 1
            pref[r, c + 1] = cnt
    return pref


_TIE = 1e-9  # px: a crossing this close to a pixel centre is scored as a tie (rounding in the slope)


@njit(cache=True, inline="always")
def _tie_cost(pref, row, tc):
    """(area, intersection) change that scores window pixel (row, tc), whose centre is a tie, as
    the worst rule would: a source pixel out of the intersection (and of the area), any other
    pixel into the area."""
    if pref[row, tc + 1] - pref[row, tc]:
        return -1, -1
    return 1, 0


@njit(cache=True)
def _ring_winding(pts, a, b, x0, y0, h, w, pref):
    """Winding-weighted (area, intersection) contributions of the ring ``pts[a:b]`` (the
    scanline arithmetic of ``raster.polygons_to_mask``): summed over all rings, ``area`` is the
    number of window pixels whose centre has winding number 1 (minus those with -1, plus twice
    those with 2, ...) and ``inter`` the same count restricted to source pixels.

    Ties are counted against the polygon: a pixel whose centre lies exactly on an edge is inside
    by LabelHub's half-open rule on one side and outside on the other, and other rasterizers
    decide it otherwise (shapely's ``contains`` leaves it out, OpenCV's ``fillPoly`` puts it in).
    So each such pixel is scored as the worst rule would score it: a source pixel as outside,
    any other as inside. An IoU bound met with these terms then holds under every tie rule."""
    area = 0
    inter = 0
    for i in range(a, b):
        j = i + 1 if i + 1 < b else a
        ax, ay, slope, wgt, rlo, rhi = _edge_rows(pts, i, j, y0, h)
        for row in range(rlo, rhi):
            col = _window_col(ax, ay, slope, row + y0, x0, w)
            area += wgt * (w - col)
            inter += wgt * (pref[row, w] - pref[row, col])
            x = ax + (row + y0 + 0.5 - ay) * slope - 0.5
            near = math.floor(x + 0.5)
            if abs(x - near) <= _TIE:  # the crossing is a pixel centre (up to rounding)
                tc = int(near) - x0
                if 0 <= tc < w:
                    # counted inside here when it lies on the inner side of this crossing, and
                    # then only a source pixel costs; counted outside, only another pixel does
                    inside = (wgt > 0) == (tc >= col)
                    src = pref[row, tc + 1] - pref[row, tc] > 0
                    if inside == src:
                        da, di = _tie_cost(pref, row, tc)
                        area += da
                        inter += di
        by = pts[j, 1]
        if ay - 0.5 == math.floor(ay - 0.5) and ax - 0.5 == math.floor(ax - 0.5):
            # A vertex on a pixel centre whose two edges both lie above it crosses no row there
            # (rows are half-open): the other edges decide it (outside at a convex tip, inside
            # at a notch), so it costs the most it can, like the horizontal edges below.
            py = pts[i - 1 if i > a else b - 1, 1]
            row, tc = int(ay - 0.5) - y0, int(ax - 0.5) - x0
            if py < ay and by < ay and 0 <= row < h and 0 <= tc < w:
                da, di = _tie_cost(pref, row, tc)
                area += da
                inter += di
        if ay == by and ay - 0.5 == math.floor(ay - 0.5):
            # A horizontal edge along row r's centre line: its centres are ties too. Which way the
            # other edges counted them is not known here, so each costs the most it can (a source
            # pixel: out of the intersection; any other: into the union).
            row = int(ay - 0.5) - y0
            if 0 <= row < h:
                bx = pts[j, 0]
                lo_x, hi_x = (ax, bx) if ax < bx else (bx, ax)
                c0 = int(math.ceil(lo_x - 0.5)) - x0
                c1 = int(math.floor(hi_x - 0.5)) - x0
                c0 = 0 if c0 < 0 else c0
                c1 = w - 1 if c1 > w - 1 else c1
                for tc in range(c0, c1 + 1):
                    da, di = _tie_cost(pref, row, tc)
                    area += da
                    inter += di
    return area, inter


@njit(cache=True)
def winding_iou(pts, off, x0, y0, h, w, pref, src_area):
    """IoU with the source window from the winding-weighted crossings, ties against the polygon
    (:func:`_ring_winding`). Equals the raster IoU whenever the winding number at every pixel
    centre is 0 or 1 (any valid region with disjoint parts) and no edge passes through a pixel
    centre; never above it otherwise."""
    if h <= 0 or w <= 0 or pts.shape[0] == 0:
        return 1.0 if src_area == 0 else 0.0
    area = 0
    inter = 0
    for r in range(off.shape[0] - 1):
        a_, i_ = _ring_winding(pts, off[r], off[r + 1], x0, y0, h, w, pref)
        area += a_
        inter += i_
    union = src_area + area - inter
    return 1.0 if union == 0 else max(inter, 0) / union


@njit(cache=True)
def ring_orders(sig, off):
    """Each ring's vertex indices by decreasing significance (ties: ring order, as
    :func:`keep_mask` breaks them) and the significances in that order."""
    n = sig.shape[0]
    order = np.empty(n, np.int64)
    ssig = np.empty(n)
    for r in range(off.shape[0] - 1):
        a, b = off[r], off[r + 1]
        for k in range(a, b):
            order[k] = k
        sort_indices(order[a:b], sig, True)
        for k in range(a, b):
            ssig[k] = sig[order[k]]
    return order, ssig


@njit(cache=True)
def levels_of_sorted(ssig, off):
    """:func:`levels_of` from :func:`ring_orders`' ``ssig``: a single ring's values are already
    sorted (no second sort)."""
    if off.shape[0] != 2:
        return levels_of(ssig)
    out = np.empty(ssig.shape[0] + 1)
    out[0] = -1.0
    w = 1
    for k in range(ssig.shape[0] - 1, -1, -1):
        v = ssig[k]
        if np.isfinite(v) and v != out[w - 1]:
            out[w] = v
            w += 1
    return out[:w].copy()


@njit(cache=True)
def kept_count(ssig, off, t):
    """Vertices kept at tolerance ``t`` (:func:`keep_mask`'s count) from sorted significances."""
    total = 0
    for r in range(off.shape[0] - 1):
        a, b = off[r], off[r + 1]
        c = 0
        while c < b - a and ssig[a + c] > t:
            c += 1
        total += max(c, min(3, b - a))
    return total


@njit(cache=True)
def levels_of(sig):
    """The tolerance levels where a hierarchy's result changes: -1 (keep everything), then the
    distinct finite significances in increasing order."""
    vals = sig[np.isfinite(sig)]
    _heapsort(vals)
    out = np.empty(vals.shape[0] + 1)
    out[0] = -1.0
    w = 1
    for v in vals:
        if v != out[w - 1]:
            out[w] = v
            w += 1
    return out[:w].copy()


@njit(cache=True)
def bbox(pts):
    """(xmin, ymin, xmax, ymax) of the points; also whether all coordinates are integers."""
    x0, y0 = np.inf, np.inf
    x1, y1 = -np.inf, -np.inf
    integer = True
    for i in range(pts.shape[0]):
        x, y = pts[i, 0], pts[i, 1]
        x0, x1 = min(x0, x), max(x1, x)
        y0, y1 = min(y0, y), max(y1, y)
        if integer and (x != math.floor(x) or y != math.floor(y)):
            integer = False
    return x0, y0, x1, y1, integer


# ---------------------------------------------------------------------------------------------
# Validity: a sufficient test that needs no GEOS
# ---------------------------------------------------------------------------------------------


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
def _box_grid(xmin, xmax, ymin, ymax, gx0, gy0, span_x, span_y):
    """A uniform grid over ``[gx0, gx0 + span_x] x [gy0, gy0 + span_y]`` with about 2 boxes per
    cell (at most 4 n + 64 cells), each box listed in every cell it covers: returns the cell
    size, the columns and rows, and the cells' lists in CSR form (``start``, ``items``)."""
    n = xmin.shape[0]
    cs = max(math.sqrt(max(span_x * span_y, 1e-9) / (0.5 * max(n, 1))), 1e-9)
    nx = int(span_x / cs) + 1
    ny = int(span_y / cs) + 1
    while nx * ny > 4 * n + 64:
        cs *= 1.5
        nx = int(span_x / cs) + 1
        ny = int(span_y / cs) + 1
    start = np.zeros(nx * ny + 1, np.int64)
    items = np.empty(0, np.int64)
    fill = start[:-1]
    for it in range(2):
        if it == 1:
            for k in range(nx * ny):
                start[k + 1] += start[k]
            items = np.empty(start[nx * ny], np.int64)
            fill = start[:-1].copy()
        for e in range(n):
            c0 = _grid_index(xmin[e], gx0, cs, nx)
            c1 = _grid_index(xmax[e], gx0, cs, nx)
            r0 = _grid_index(ymin[e], gy0, cs, ny)
            r1 = _grid_index(ymax[e], gy0, cs, ny)
            for r in range(r0, r1 + 1):
                for c in range(c0, c1 + 1):
                    if it == 0:
                        start[r * nx + c + 1] += 1
                    else:
                        items[fill[r * nx + c]] = e
                        fill[r * nx + c] += 1
    return cs, nx, ny, start, items


@njit(cache=True, inline="always")
def _grid_index(v, g0, cs, n):
    """Grid column (or row) of coordinate ``v``, clamped to [0, n - 1]."""
    k = int((v - g0) / cs)
    return 0 if k < 0 else (n - 1 if k > n - 1 else k)


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


# ---------------------------------------------------------------------------------------------
# Hausdorff distance between outlines
# ---------------------------------------------------------------------------------------------


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
