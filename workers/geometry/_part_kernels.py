"""Compiled (numba) kernels of the per-part bounded search.

A region is a list of parts (polygons: an exterior and its holes, rings stored flat and grouped
by part, see :mod:`workers.geometry._candidates`). Every part is simplified on its own: its
candidates are bisected over its own tolerance levels with both bounds checked on that part
alone (IoU against the part's own pixels, the distance to the part's own exact outline), so a
small part next to a large one is held to the same bound as the large one.

The distance bound is computed, not sampled: a simplified edge ``A -> B`` replaces a chain of
the exact outline that starts at ``A0`` (the base vertex ``A`` was refined from, which lies on
an exact edge) and ends at ``B0``. Exact to simplified: every point of the chain is within the
largest of its vertices' distances (``A0``, the exact corners between, ``B0``) to ``AB`` or
to the simplified edges on either side (distance to a segment is convex along each chain
edge). Simplified to exact: let ``QA``, ``QB`` be the outline points nearest to ``A`` and ``B``
(on the chains either side of ``A0``, resp. ``B0``) and ``D`` the largest distance to ``AB`` of
the outline vertices between them; the outline between them projects onto ``AB``'s line continuously, so a point of ``AB`` whose parameter lies
between theirs has a chain point straight across, at most ``max(D, |A - QA|, |B - QB|)``
away; a point between ``A`` and ``QA``'s parameter is within ``|A - QA|`` of ``QA``
(distance to a point is convex along the segment, and ``QA``'s distance to ``AB`` is at
most ``|A - QA|``), likewise at the ``B`` end. The largest such value over a ring's edges
bounds the ring's symmetric Hausdorff distance to its exact ring, and the largest over a part's
rings bounds the part's. O(ring vertices) per evaluation, like the IoU terms, so the bisection
keeps per-ring (area, intersection, distance) for both ends of its bracket.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._candidates import _fit_ring, fit_shift
from ._douglas_peucker import _seg_d2
from ._levels import ring_orders
from ._winding_iou import _edge_rows, _ring_winding, _window_col

_MARGIN = 9  # px around a part's box: refined vertices move at most 8 px (fit_shift's cap)


@njit(cache=True)
def midpoint_rings_mapped(pts, off):
    """The crack-midpoint rings (``simplify._midpoint_rings``: every vertex of integer rings
    chamfered by 0.5 px, collinear points dropped) and, for every midpoint vertex, the index of the exact edge it lies on (edge ``i``
    runs from ``pts[i]`` to the next vertex of its ring)."""
    n_all = pts.shape[0]
    tmp = np.empty((2 * n_all, 2))
    tedge = np.empty(2 * n_all, np.int64)
    out = np.empty((2 * n_all, 2))
    medge = np.empty(2 * n_all, np.int64)
    noff = np.zeros(off.shape[0], np.int64)
    w = 0
    for r in range(off.shape[0] - 1):
        a, b = off[r], off[r + 1]
        n = b - a
        m = 0
        for i in range(n):
            x, y = pts[a + i, 0], pts[a + i, 1]
            j = a + (i + 1) % n
            nx_, ny_ = pts[j, 0], pts[j, 1]
            dx, dy = nx_ - x, ny_ - y
            length = math.hypot(dx, dy)
            ux, uy = dx / length, dy / length
            tmp[m, 0], tmp[m, 1] = x + 0.5 * ux, y + 0.5 * uy
            tedge[m] = a + i
            m += 1
            if length > 1.0 + 1e-9:
                tmp[m, 0], tmp[m, 1] = nx_ - 0.5 * ux, ny_ - 0.5 * uy
                tedge[m] = a + i
                m += 1
        for i in range(m):
            p = (i - 1) % m
            q = (i + 1) % m
            cross = (tmp[i, 0] - tmp[p, 0]) * (tmp[q, 1] - tmp[i, 1]) - (tmp[i, 1] - tmp[p, 1]) * (
                tmp[q, 0] - tmp[i, 0]
            )
            if abs(cross) > 1e-12:
                out[w, 0], out[w, 1] = tmp[i, 0], tmp[i, 1]
                medge[w] = tedge[i]
                w += 1
        noff[r + 1] = w
    return out[:w].copy(), noff, medge[:w].copy()


@njit(cache=True)
def ring_distance(buf, nk, kk, bpts, medge, ept, ea, eb, stop):
    """Upper bound (px) of the symmetric Hausdorff distance between a simplified ring and its
    exact ring (see the module docstring); returns early, with some value above ``stop``, once
    the bound exceeds ``stop``. ``buf[:nk]``: the simplified ring's vertices, refined from the
    base vertices ``kk[:nk]`` (indices into ``bpts``, ring order); ``medge``: the exact edge of
    each base vertex; the exact ring is ``ept[ea:eb]``."""
    aug = np.empty((nk + eb - ea, 2))
    pos = np.empty(nk + 1, np.int64)
    near = np.empty(nk, np.int64)
    return _ring_distance(buf, nk, kk, bpts, medge, ept, ea, eb, stop, aug, pos, near)


@njit(cache=True)
def _ring_distance(buf, nk, kk, bpts, medge, ept, ea, eb, stop, aug, pos, near):
    """:func:`ring_distance` with scratch arrays from the caller (``aug``: at least nk + eb - ea
    rows, ``pos``: nk + 1, ``near``: nk), so that the search allocates nothing per ring."""
    n = eb - ea
    stop2 = stop * stop
    # the exact outline with the base vertices inserted: chain j = aug[pos[j] .. pos[j + 1]]
    L = nk + n
    w = 0
    for j in range(nk):
        pos[j] = w
        aug[w, 0], aug[w, 1] = bpts[kk[j], 0], bpts[kk[j], 1]
        w += 1
        e0 = medge[kk[j]] - ea
        e1 = medge[kk[(j + 1) % nk]] - ea
        for t in range(1, (e1 - e0) % n + 1):
            v = ea + (e0 + t) % n
            aug[w, 0], aug[w, 1] = ept[v, 0], ept[v, 1]
            w += 1
    pos[nk] = L
    # each simplified vertex's nearest point on the chains either side of its base vertex
    # (any outline point would do for the bound; the nearest makes it tight): searched outwards
    # from the base vertex until the outline is farther from it than the vertex's shift + 2 px
    # near[j]: segment index, unwrapped around pos[j]
    worst2 = 0.0
    for j in range(nk):
        ax, ay = buf[j, 0], buf[j, 1]
        a0x, a0y = aug[pos[j], 0], aug[pos[j], 1]
        reach2 = (math.hypot(ax - a0x, ay - a0y) + 2.0) ** 2
        lo = 0 if j == 0 else pos[j - 1]
        hi = pos[j + 1]
        best, bs = np.inf, pos[j]
        for s_ in range(pos[j], hi):  # forwards
            u, v = s_ % L, (s_ + 1) % L
            d = _seg_d2(ax, ay, aug[u, 0], aug[u, 1], aug[v, 0], aug[v, 1])
            if d < best:
                best, bs = d, s_
            if (aug[v, 0] - a0x) ** 2 + (aug[v, 1] - a0y) ** 2 > reach2:
                break
        for s_ in range(pos[j] - 1, lo - 1, -1):  # backwards
            u, v = s_ % L, (s_ + 1) % L
            d = _seg_d2(ax, ay, aug[u, 0], aug[u, 1], aug[v, 0], aug[v, 1])
            if d < best:
                best, bs = d, s_
            if (aug[u, 0] - a0x) ** 2 + (aug[u, 1] - a0y) ** 2 > reach2:
                break
        near[j] = bs
        worst2 = max(worst2, best)
        if worst2 > stop2:
            return math.sqrt(worst2)
    for j in range(nk):
        q = j + 1 if j + 1 < nk else 0
        p_ = j - 1 if j > 0 else nk - 1
        q2 = q + 1 if q + 1 < nk else 0
        ax, ay = buf[j, 0], buf[j, 1]
        bx, by = buf[q, 0], buf[q, 1]
        # exact to simplified: chain j's vertices to AB or the edges before and after it
        for s_ in range(pos[j], pos[j + 1] + 1):
            u = s_ % L
            vx, vy = aug[u, 0], aug[u, 1]
            d = _seg_d2(vx, vy, ax, ay, bx, by)
            if d > worst2:
                d = min(d, _seg_d2(vx, vy, buf[p_, 0], buf[p_, 1], ax, ay))
                if d > worst2:
                    d = min(d, _seg_d2(vx, vy, bx, by, buf[q2, 0], buf[q2, 1]))
                    worst2 = max(worst2, d)
        # simplified to exact: the outline vertices between the points nearest to A and B, to AB
        sa, sb = near[j], near[q] + (L if q == 0 else 0)
        for s_ in range(min(sa, sb) + 1, max(sa, sb) + 1):
            u = s_ % L
            worst2 = max(worst2, _seg_d2(aug[u, 0], aug[u, 1], ax, ay, bx, by))
        if worst2 > stop2:
            break
    return math.sqrt(worst2)


@njit(cache=True)
def _ring_at(pts, off, r, order, ssig, c, refine, dp, P, origin, fh, fw, keep, kk, buf, cxs, cys, uxs, uys):
    """Ring ``r`` keeping its ``c`` most significant vertices: writes the kept base indices to
    ``kk`` and the (refined) vertices to ``buf``; returns the count."""
    a, b = off[r], off[r + 1]
    for k in range(c):
        keep[order[a + k]] = True
    nk = 0
    for i in range(a, b):
        if keep[i]:
            kk[nk] = i
            nk += 1
            keep[i] = False
    if refine and c < b - a:  # (a ring that dropped nothing is not refined)
        _fit_ring(
            pts, r, off, kk, nk, P, origin, fit_shift(ssig[a + c], dp), fh, fw, buf, 0, cxs, cys, uxs, uys
        )
    else:
        for k in range(nk):
            buf[k, 0], buf[k, 1] = pts[kk[k], 0], pts[kk[k], 1]
    return nk


@njit(cache=True)
def _ring_above(
    pts, off, r, sig, asig, c, t, refine, dp, P, origin, fh, fw, keep, kk, buf, cxs, cys, uxs, uys
):
    """:func:`_ring_at` without a significance order: ring ``r`` at tolerance ``t`` keeps the
    ``c`` (:func:`_count_above_asc`) vertices with ``sig > t``; only where that is fewer than 3
    are the most significant others added (ties: the first), as :func:`keep_mask` does.
    ``asig``: each ring's significances in increasing order."""
    a, b = off[r], off[r + 1]
    nk = 0
    if c == b - a:
        for i in range(a, b):
            kk[nk] = i
            nk += 1
    else:
        for i in range(a, b):
            if sig[i] > t:
                kk[nk] = i
                nk += 1
        if nk < c:  # at least 3 per ring (no hierarchy here leaves fewer than 3 at inf)
            for i in range(a, b):
                keep[i] = sig[i] > t
            for _ in range(c - nk):
                best = -1
                for i in range(a, b):
                    if not keep[i] and (best < 0 or sig[i] > sig[best]):
                        best = i
                keep[best] = True
            nk = 0
            for i in range(a, b):
                if keep[i]:
                    kk[nk] = i
                    nk += 1
                    keep[i] = False
    if refine and c < b - a:  # (a ring that dropped nothing is not refined)
        # the largest significance dropped: the (c + 1)-th largest
        _fit_ring(
            pts, r, off, kk, nk, P, origin, fit_shift(asig[b - 1 - c], dp), fh, fw, buf, 0, cxs, cys, uxs, uys
        )
    else:
        for k in range(nk):
            buf[k, 0], buf[k, 1] = pts[kk[k], 0], pts[kk[k], 1]
    return nk


@njit(cache=True)
def _count_above_asc(asig, a, b, t):
    """Vertices of ring [a, b) kept at tolerance ``t`` (``asig`` increasing), at least 3."""
    lo_k, hi_k = a, b  # the first value above t
    while lo_k < hi_k:
        q = (lo_k + hi_k) // 2
        if asig[q] > t:
            hi_k = q
        else:
            lo_k = q + 1
    return max(b - lo_k, min(3, b - a))


@njit(cache=True)
def _sorted_rings(sig, off, asig, levels):
    """Each ring's significances in increasing order into ``asig`` and the part's tolerance
    levels (:func:`workers.geometry._levels.levels_of`: -1, then the distinct finite
    significances in increasing order) into ``levels``; returns the number of levels. A value
    sort (no index order with ties) is all the bisection needs."""
    R = off.shape[0] - 1
    for r in range(R):
        a, b = off[r], off[r + 1]
        asig[a:b] = sig[a:b]
        asig[a:b].sort()
    n = off[R]
    if R == 1:
        src = asig[:n]
    else:
        src = levels[1 : n + 1]
        src[:] = sig[:n]
        src.sort()
    levels[0] = -1.0
    w = 1
    for k in range(n):
        v = src[k]
        if np.isfinite(v) and v != levels[w - 1]:
            levels[w] = v
            w += 1
    return w


@njit(cache=True)
def _count_above(ssig, a, b, t):
    """Vertices of ring [a, b) kept at tolerance ``t`` (ssig decreasing), at least 3."""
    lo_k, hi_k = 0, b - a
    while lo_k < hi_k:
        q = (lo_k + hi_k) // 2
        if ssig[a + q] > t:
            lo_k = q + 1
        else:
            hi_k = q
    return max(lo_k, min(3, b - a))


@njit(cache=True)
def bisect_part(
    pts, off, sig, ssig, levels, refine, dp, P, origin, medge, ept, eoff, fh, fw,
    x0, y0, h, w, pref, src_area, min_iou, max_dist, first_ok, ws, res, res_nk, start=-2,
):  # fmt: skip
    """Largest index into ``levels`` (ascending, ``levels[0] = -1`` = keep every base vertex)
    whose candidate meets both bounds on this part (winding IoU >= ``min_iou``, ring distance
    bound <= ``max_dist``), by bisection; -1 if even ``levels[0]`` fails. The part's rings are
    ``pts``/``off`` (base) and ``ept``/``eoff`` (exact), ring for ring. ``first_ok``: the caller
    knows that ``levels[0]`` meets both bounds (the exact rings, or crack-midpoint rings of a
    pixel outline: IoU 1, distance 0.354 px), so it is not evaluated.

    Returns ``(lo, kept vertices, area, intersection, distance bound)`` of the level found and
    writes its rings to ``res`` (ring ``r`` has ``res_nk[r]`` vertices, rings one after another):
    every ring evaluation is kept (three slots per ring: the bracket's two ends and the level
    being tried), so the result is never evaluated twice. ``ws``: scratch arrays
    (:func:`_workspace`), reused by every part."""
    R = off.shape[0] - 1
    check_d = max_dist < np.inf
    keep, kk, pos, near, cxs, cys, uxs, uys, slots, aug, ri, rd, nks = ws
    c_lo, a_lo, i_lo, s_lo = ri[0], ri[1], ri[2], ri[3]
    c_hi, a_hi, i_hi, s_hi = ri[4], ri[5], ri[6], ri[7]
    c_md, a_md, i_md, s_md = ri[8], ri[9], ri[10], ri[11]
    d_lo, d_hi, d_md = rd[0], rd[1], rd[2]
    c_lo[:R] = -1
    c_hi[:R] = -1
    lo, hi = -1, levels.shape[0] - 1
    if check_d and dp:
        # Douglas-Peucker levels above the distance bound + 1 px essentially never meet it (the
        # refined edges stay near the chords): leave them out of the bisection
        while hi > 0 and levels[hi] > max_dist + 1.0:
            hi -= 1
    first = True
    if start >= -1:  # a lower end that is neither evaluated nor a result; galloping from it
        lo, first = start, False
    elif first_ok:
        lo, first = 0, False  # nothing cached for level 0
    step = 1 if start >= -1 else 0
    while first or lo < hi:
        if first:
            mid = 0
        elif step > 0:
            mid = lo + step if lo + step < hi else hi
        else:
            mid = (lo + hi + 1) // 2
        t = levels[mid]
        area = 0
        inter = 0
        ok = True
        for r in range(R):
            a, b = off[r], off[r + 1]
            c = b - a if first else _count_above_asc(ssig, a, b, t)
            if c == c_lo[r]:
                ar, ir, dr, s = a_lo[r], i_lo[r], d_lo[r], s_lo[r]
            elif c == c_hi[r]:
                ar, ir, dr, s = a_hi[r], i_hi[r], d_hi[r], s_hi[r]
            else:
                s = 0  # a slot that holds neither end of the bracket
                while (c_lo[r] >= 0 and s == s_lo[r]) or (c_hi[r] >= 0 and s == s_hi[r]):
                    s += 1
                buf = slots[s, a:b]
                nk = _ring_above(
                    pts, off, r, sig, ssig, c, t, refine, dp, P, origin, fh, fw, keep, kk, buf, cxs,
                    cys, uxs, uys,
                )  # fmt: skip
                nks[s, r] = nk
                # the distance first: it fails fast, and then the winding is not needed
                dr = (
                    _ring_distance(
                        buf, nk, kk, pts, medge, ept, eoff[r], eoff[r + 1], max_dist, aug, pos, near
                    )
                    if check_d
                    else 0.0
                )
                ar, ir = _ring_winding(buf, 0, nk, x0, y0, h, w, pref) if dr <= max_dist else (0, 0)
            c_md[r], a_md[r], i_md[r], d_md[r], s_md[r] = c, ar, ir, dr, s
            area += ar
            inter += ir
            if dr > max_dist:
                ok = False
                c_md[r + 1 : R] = -1  # not evaluated: never reused
                break
        if ok:
            union = src_area + area - inter
            ok = (1.0 if union == 0 else inter / union) >= min_iou
        if ok:
            lo = mid
            step *= 2
            c_lo[:R], a_lo[:R], i_lo[:R], d_lo[:R], s_lo[:R] = (
                c_md[:R],
                a_md[:R],
                i_md[:R],
                d_md[:R],
                s_md[:R],
            )
        elif first:
            return -1, 0, 0, 0, 0.0
        else:
            hi = mid - 1
            step = 0  # bracketed: bisection from here
            c_hi[:R], a_hi[:R], i_hi[:R], d_hi[:R], s_hi[:R] = (
                c_md[:R],
                a_md[:R],
                i_md[:R],
                d_md[:R],
                s_md[:R],
            )
        first = False
    if start >= -1 and lo == start:
        return -1, 0, 0, 0, 0.0
    area = 0
    inter = 0
    dist = 0.0
    wpos = 0
    for r in range(R):
        a, b = off[r], off[r + 1]
        if c_lo[r] < 0:  # level 0 known to pass, never evaluated: every base vertex
            buf = res[wpos : wpos + b - a]
            nk = _ring_above(
                pts, off, r, sig, ssig, b - a, -1.0, refine, dp, P, origin, fh, fw, keep, kk, buf, cxs,
                cys, uxs, uys,
            )  # fmt: skip
            ar, ir = _ring_winding(buf, 0, nk, x0, y0, h, w, pref)
            dr = _ring_distance(buf, nk, kk, pts, medge, ept, eoff[r], eoff[r + 1], np.inf, aug, pos, near)
        else:
            nk = nks[s_lo[r], r]
            res[wpos : wpos + nk] = slots[s_lo[r], a : a + nk]
            ar, ir, dr = a_lo[r], i_lo[r], d_lo[r]
        res_nk[r] = nk
        wpos += nk
        area += ar
        inter += ir
        dist = max(dist, dr)
    return lo, wpos, area, inter, dist


@njit(cache=True)
def _first_level_below(ssig, off, levels, nv):
    """The first index into ``levels`` whose candidate keeps fewer than ``nv`` vertices (the
    count falls as the level rises), ``levels.shape[0]`` if none does."""
    lo, hi = 0, levels.shape[0]
    while lo < hi:
        q = (lo + hi) // 2
        c = 0
        for r in range(off.shape[0] - 1):
            c += _count_above_asc(ssig, off[r], off[r + 1], levels[q])
        if c < nv:
            hi = q
        else:
            lo = q + 1
    return lo


@njit(cache=True)
def _workspace(n, ne, R):
    """Scratch arrays of :func:`bisect_part` for parts of up to ``n`` base vertices, ``ne``
    exact vertices and ``R`` rings."""
    n1 = max(n, 1)
    return (
        np.zeros(n1, np.bool_),  # keep
        np.empty(n1, np.int64),  # kk
        np.empty(n1 + 1, np.int64),  # pos
        np.empty(n1, np.int64),  # near
        np.empty(n1),  # cxs
        np.empty(n1),  # cys
        np.empty(n1),  # uxs
        np.empty(n1),  # uys
        np.empty((3, n1, 2)),  # slots: per ring, the bracket's ends and the level being tried
        np.empty((n1 + ne, 2)),  # aug
        np.empty((12, max(R, 1)), np.int64),  # per ring count, area, intersection, slot x 3
        np.empty((3, max(R, 1))),  # per ring distance x 3
        np.empty((3, max(R, 1)), np.int64),  # per slot and ring: vertices kept
    )


@njit(cache=True)
def row_prefix_of_rings_into(pts, off, x0, y0, h, w, flat):
    """:func:`workers.geometry._winding_iou.row_prefix_of_rings` built in place in the caller's
    buffer ``flat`` (at least ``h * (w + 1)`` int32): the crossings' winding increments are
    accumulated in the table itself, which each row's pass then overwrites with the prefix
    counts; no allocation (and no fresh pages) per part. Returns the ``(h, w + 1)`` view."""
    acc = flat[: h * (w + 1)].reshape((h, w + 1))
    acc[:, :] = 0
    for r_ in range(off.shape[0] - 1):
        a, b = off[r_], off[r_ + 1]
        for i in range(a, b):
            ax, ay, slope, wgt, rlo, rhi = _edge_rows(pts, i, i + 1 if i + 1 < b else a, y0, h)
            for row in range(rlo, rhi):
                acc[row, _window_col(ax, ay, slope, row + y0, x0, w)] += wgt
    for r in range(h):
        wind = 0
        cnt = 0
        for c in range(w):
            v = acc[r, c]
            acc[r, c] = cnt
            wind += v
            if wind > 0:
                cnt += 1
        acc[r, w] = cnt
    return acc


@njit(cache=True)
def part_window(ept, a, b, fh, fw):
    """The evaluation window (x0, y0, h, w) of a part whose exact points are ``ept[a:b]``: its
    box plus :data:`_MARGIN`, inside the frame ``fh x fw`` when ``fh > 0``."""
    xmin, ymin = np.inf, np.inf
    xmax, ymax = -np.inf, -np.inf
    for i in range(a, b):
        x, y = ept[i, 0], ept[i, 1]
        xmin, xmax = min(xmin, x), max(xmax, x)
        ymin, ymax = min(ymin, y), max(ymax, y)
    x0, y0 = int(math.floor(xmin)) - _MARGIN, int(math.floor(ymin)) - _MARGIN
    x1, y1 = int(math.ceil(xmax)) + _MARGIN, int(math.ceil(ymax)) + _MARGIN
    if fh > 0:
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, fw), min(y1, fh)
    return x0, y0, max(y1 - y0, 0), max(x1 - x0, 0)


@njit(cache=True)
def part_candidate(
    pts, off, sig, t, refine, dp, P, origin, medge, ept, eoff, fh, fw, x0, y0, h, w, pref, src_area
):
    """One part's candidate at tolerance ``t`` (base rings ``pts``/``off``, ``sig`` > t kept, at
    least 3 per ring) as flat (pts, off), with its IoU against the part's pixels and its
    distance bound to the part's exact outline."""
    order, ssig = ring_orders(sig, off)
    return _part_candidate_sorted(
        pts, off, order, ssig, t, refine, dp, P, origin, medge, ept, eoff, fh, fw,
        x0, y0, h, w, pref, src_area,
    )  # fmt: skip


@njit(cache=True)
def _part_candidate_sorted(
    pts, off, order, ssig, t, refine, dp, P, origin, medge, ept, eoff, fh, fw, x0, y0, h, w, pref, src_area
):
    """:func:`part_candidate` with the rings' significance order already computed
    (:func:`ring_orders` of ``sig``), so that the search does not sort twice."""
    R = off.shape[0] - 1
    n = pts.shape[0]
    keep = np.zeros(n, np.bool_)
    kk = np.empty(n, np.int64)
    buf = np.empty((n, 2))
    cxs = np.empty(n)
    cys = np.empty(n)
    uxs = np.empty(n)
    uys = np.empty(n)
    out = np.empty((n, 2))
    noff = np.zeros(R + 1, np.int64)
    area = 0
    inter = 0
    dist = 0.0
    wpos = 0
    for r in range(R):
        a, b = off[r], off[r + 1]
        c = b - a if t < 0 else _count_above(ssig, a, b, t)
        nk = _ring_at(
            pts, off, r, order, ssig, c, refine, dp, P, origin, fh, fw, keep, kk, buf, cxs, cys, uxs, uys
        )
        ar, ir = _ring_winding(buf, 0, nk, x0, y0, h, w, pref)
        area += ar
        inter += ir
        dist = max(dist, ring_distance(buf, nk, kk, pts, medge, ept, eoff[r], eoff[r + 1], np.inf))
        out[wpos : wpos + nk] = buf[:nk]
        wpos += nk
        noff[r + 1] = wpos
    union = src_area + area - inter
    return out[:wpos].copy(), noff, (1.0 if union == 0 else inter / union), dist


@njit(cache=True)
def search_parts(
    bpts, boff, medge, ept, eoff, part_off, P, origin, sig_a, dp_a, refine_a, sig_b, dp_b, refine_b,
    use_b, fh, fw, min_iou, max_dist, first_ok,
):  # fmt: skip
    """Per part (rings ``part_off[p]:part_off[p + 1]``) the candidate with fewer vertices among
    ``a`` and (if ``use_b``) ``b``, each at the largest tolerance level meeting both bounds on
    that part (:func:`bisect_part`). Base rings ``bpts``/``boff`` (crack midpoints, or the exact
    rings with ``medge[i] = i``), exact rings ``ept``/``eoff``, ring for ring. Returns the
    result rings as flat (pts, off) aligned with the input rings (``first_ok``: see
    :func:`bisect_part`), and per part the chosen candidate (0 = a, 1 = b, -1 = none meets the bounds: the exact rings), its tolerance, IoU
    and distance bound."""
    n_parts = part_off.shape[0] - 1
    out = np.empty((ept.shape[0] + bpts.shape[0], 2))
    noff = np.zeros(boff.shape[0], np.int64)
    choice = np.full(n_parts, -1, np.int64)
    tol = np.full(n_parts, -1.0)
    ious = np.ones(n_parts)
    dists = np.zeros(n_parts)
    n_max, ne_max, r_max = 0, 0, 0
    for p in range(n_parts):
        r0, r1 = part_off[p], part_off[p + 1]
        n_max = max(n_max, boff[r1] - boff[r0])
        ne_max = max(ne_max, eoff[r1] - eoff[r0])
        r_max = max(r_max, r1 - r0)
    ws = _workspace(n_max, ne_max, r_max)
    area_max = 1
    for p in range(n_parts):
        _, _, h, w = part_window(ept, eoff[part_off[p]], eoff[part_off[p + 1]], fh, fw)
        area_max = max(area_max, h * (w + 1))
    pref_buf = np.empty(area_max, np.int32)  # every part's source prefix table, in turn
    res = np.empty((2, max(n_max, 1), 2))
    res_nk = np.empty((2, max(r_max, 1)), np.int64)
    asig = np.empty(max(n_max, 1))
    lev_buf = np.empty(n_max + 1)
    wpos = 0
    for p in range(n_parts):
        r0, r1 = part_off[p], part_off[p + 1]
        ba, bb = boff[r0], boff[r1]
        ea, eb = eoff[r0], eoff[r1]
        pts = bpts[ba:bb]
        off = boff[r0 : r1 + 1] - ba
        pe = ept[ea:eb]
        pe_off = eoff[r0 : r1 + 1] - ea
        me = medge[ba:bb] - ea
        Pp = P[ba : bb + 1]
        og = origin[r0:r1]
        x0, y0, h, w = part_window(ept, ea, eb, fh, fw)
        pref = row_prefix_of_rings_into(pe, pe_off, x0, y0, h, w, pref_buf)
        src_area = 0
        for row in range(h):
            src_area += pref[row, w]
        best_nv, best_c, best_t = eb - ea + 1, -1, -1.0
        best_area, best_inter, best_dist = 0, 0, 0.0
        for cand in range(2 if use_b else 1):
            sig = sig_a[ba:bb] if cand == 0 else sig_b[ba:bb]
            dp = dp_a if cand == 0 else dp_b
            refine = refine_a if cand == 0 else refine_b
            levels = lev_buf[: _sorted_rings(sig, off, asig, lev_buf)]
            ssig = asig[: off[-1]]
            start = -2
            if cand == 1:
                # only levels keeping fewer vertices than the best so far can win: gallop up from
                # the first of them (one evaluation when it fails, as it mostly does)
                start = _first_level_below(ssig, off, levels, best_nv)
                if start >= levels.shape[0]:
                    continue
                start = -2 if start == 0 and first_ok else start - 1
            # the candidate's result goes to the slot the current best does not use
            slot = 0 if best_c < 0 else 1 - best_c
            lo, nv, area, inter, dist = bisect_part(
                pts, off, sig, ssig, levels, refine, dp, Pp, og, me, pe, pe_off, fh, fw,
                x0, y0, h, w, pref, src_area, min_iou, max_dist, first_ok, ws, res[slot], res_nk[slot],
                start,
            )  # fmt: skip
            if lo >= 0 and nv < best_nv:
                best_nv, best_c, best_t = nv, slot, levels[lo]
                best_area, best_inter, best_dist = area, inter, dist
                choice[p] = cand
        if best_c < 0:
            for i in range(ea, eb):
                out[wpos, 0], out[wpos, 1] = ept[i, 0], ept[i, 1]
                wpos += 1
            for r in range(r0, r1):
                noff[r + 1] = noff[r] + eoff[r + 1] - eoff[r]
            continue
        out[wpos : wpos + best_nv] = res[best_c, :best_nv]
        for r in range(r0, r1):
            noff[r + 1] = noff[r] + res_nk[best_c, r - r0]
        wpos += best_nv
        union = src_area + best_area - best_inter
        tol[p], ious[p], dists[p] = best_t, (1.0 if union == 0 else best_inter / union), best_dist
    return out[:wpos].copy(), noff, choice, tol, ious, dists
