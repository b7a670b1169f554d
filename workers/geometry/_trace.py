"""Compiled (numba) crack-following tracer behind :func:`workers.geometry.contours.trace_rings`.

Internal module; see :mod:`workers.geometry.contours` for the coordinate convention. The mask is
cropped to its bounding box and copied into a zero-padded ``uint8`` buffer ``P`` whose rows are a
multiple of 8 bytes long, so that one pass (:func:`_scan`) handles 8 pixels per 64-bit word and
the tracer needs no bounds checks. Vertex ``(x, y)`` of the padded corner grid is the top-left
corner of padded pixel ``P[y, x]``; in that byte bit 0 is the pixel, bit 1 marks a +x corner edge
leaving the vertex as traced, and bits 2-5 hold the vertex's 2x2 pixel code ``q`` (bit 0
top-left, 1 top-right, 2 bottom-left, 3 bottom-right), written by the scan.

Edge directions: 0 = +x, 1 = +y, 2 = -x, 3 = -y; the foreground lies on side ``d + 1`` of an
edge of direction ``d`` (4-connected foreground, 8-connected background). At a vertex the
tracer takes the left turn ``d + 1`` if that edge exists, else straight on, else the right turn
``d + 3``, which keeps diagonal foreground pixels apart at saddle corners. Only vertices where the
direction changes (corners) are emitted.

Order, start and splitting reproduce the reference implementation
(the NumPy tracer it replaced, ``tests/workers/geometry/reference_trace.py``): there, edges are numbered +x edges first in raster order of
their start vertex, and cycles are sorted by their smallest corner edge and started there. Every
cycle has a +x corner edge, so that is the first untraced +x corner edge met in raster order,
which is how :func:`trace_core` starts cycles. A cycle that passes a saddle corner twice is split
into simple loops exactly as that reference's ``_split_at_repeats`` does.

Labels (``cv2.connectedComponents`` 4-connectivity numbering = raster order of a part's first
pixel) are computed without labelling pixels: the top edge of a part's first pixel is the
smallest +x corner edge on the part's exterior, so exteriors are met in label order and a cycle
whose first loop has a positive area opens the next label. A cycle of holes only takes the label
of the innermost exterior around its start pixel (a pixel of the part), found at the end by
sweeping that pixel row over the crossings of exterior edges (:func:`_label_holes`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_ONES = np.uint64(0x0101010101010101)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)
_U8 = np.uint64(8)
_U56 = np.uint64(56)


def _next_table() -> np.ndarray:
    """``_NEXT[d * 16 + q]``: direction taken on arriving with direction ``d`` at a vertex with
    pixel code ``q``: the left turn, else straight on, else the right turn (-1: no edge leaves,
    unreachable)."""
    t = np.full(64, -1, np.int64)
    for q in range(16):
        tl, tr, bl, br = q & 1, (q >> 1) & 1, (q >> 2) & 1, (q >> 3) & 1
        out = [br and not tr, bl and not br, tl and not bl, tr and not tl]
        for d in range(4):
            for nd in ((d + 1) % 4, d, (d + 3) % 4):
                if out[nd]:
                    t[d * 16 + q] = nd
                    break
    return t


_NEXT = _next_table()
# pixel codes q whose vertex has a +x corner edge: bottom-right set, top-right clear, and not
# bottom-left set with top-left clear
_IS_START = np.array(
    [(q >> 3) & 1 and not (q >> 1) & 1 and not ((q >> 2) & 1 and not q & 1) for q in range(16)]
)
_DX = np.array([1, 0, -1, 0], np.int64)
_DY = np.array([0, 1, 0, -1], np.int64)


@njit(cache=True, nogil=True, error_model="numpy")
def _bbox(m):
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of the foreground of a 0/1 ``uint8`` mask;
    ``r0 == -1`` when it is empty. One pass, vectorized by LLVM."""
    h, w = m.shape
    acc = np.zeros(w, np.uint8)
    rows = np.zeros(h, np.uint8)
    for r in range(h):
        s = np.uint8(0)
        for c in range(w):
            v = m[r, c]
            acc[c] |= v
            s |= v
        rows[r] = s  # (branching on s here would stop the vectorization)
    r0 = 0
    while r0 < h and rows[r0] == 0:
        r0 += 1
    if r0 == h:
        return -1, -1, -1, -1
    r1 = h
    while rows[r1 - 1] == 0:
        r1 -= 1
    c0 = 0
    while acc[c0] == 0:
        c0 += 1
    c1 = w
    while acc[c1 - 1] == 0:
        c1 -= 1
    return r0, r1, c0, c1


@njit(cache=True, nogil=True, error_model="numpy")
def _heapsort(a):
    """Sort a numeric array in place (numba's own sorts take seconds to compile); the
    simplifier kernels use it for float significances too."""
    n = a.shape[0]
    for start in range(n // 2 - 1, -1, -1):
        _sift(a, start, n)
    for end in range(n - 1, 0, -1):
        t = a[0]
        a[0] = a[end]
        a[end] = t
        _sift(a, np.int64(0), end)


@njit(cache=True, nogil=True, error_model="numpy")
def _sift(a, i, n):
    v = a[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and a[c + 1] > a[c]:
            c += 1
        if a[c] <= v:
            break
        a[i] = a[c]
        i = c
    a[i] = v


@njit(cache=True, nogil=True, error_model="numpy")
def _split(vx, vy, n0, n, occ_p, occ_v, rends, nr):
    """Split the cycle ``v[n0:n]`` into simple loops at repeated saddle vertices, in place, exactly
    like that reference's ``_split_at_repeats``, and store the loop ends in ``rends[nr:]``. ``occ_p`` and
    ``occ_v`` are the cycle positions and vertex ids of its saddle corners. Returns ``(new nr,
    index of the loop holding the cycle's first vertex)``."""
    length = n - n0
    ns = occ_p.shape[0]
    # Only saddle corners can repeat (at most twice); pair the occurrences by vertex id.
    keys = np.empty(ns, np.int64)
    for k in range(ns):
        keys[k] = occ_v[k] * length + occ_p[k]
    _heapsort(keys)
    first_of = np.empty(length, np.int64)
    for j in range(length):
        first_of[j] = -1
    for k in range(ns - 1):
        if keys[k] // length == keys[k + 1] // length:
            first_of[keys[k + 1] % length] = keys[k] % length
    tx = np.empty(length, np.int64)
    ty = np.empty(length, np.int64)
    for j in range(length):
        tx[j] = vx[n0 + j]
        ty[j] = vy[n0 + j]
    stack = np.empty(length, np.int64)
    sidx = np.empty(length, np.int64)
    active = np.zeros(length, np.bool_)
    top = 0
    w = n0
    first_loop = -1
    for j in range(length):
        p1 = first_of[j]
        if p1 >= 0 and active[p1]:  # vertex seen before: close the loop stack[i:]
            i = sidx[p1]
            for t in range(i, top):
                e = stack[t]
                vx[w] = tx[e]
                vy[w] = ty[e]
                w += 1
                if t > i:
                    f = first_of[e]
                    active[f if f >= 0 else e] = False
            rends[nr] = w
            if i == 0 and first_loop < 0:
                first_loop = nr
            nr += 1
            top = i
        else:
            active[j] = True
            sidx[j] = top
        stack[top] = j
        top += 1
    for t in range(top):
        e = stack[t]
        vx[w] = tx[e]
        vy[w] = ty[e]
        w += 1
    rends[nr] = w
    if first_loop < 0:
        first_loop = nr
    return nr + 1, first_loop


@njit(cache=True, nogil=True, error_model="numpy")
def _scan_row(rc, ru, base, starts, n):
    """Scan vertex row ``y`` (pixel rows ``ru`` = y - 1 and ``rc`` = y as 64-bit words, 8 pixels
    each): write the vertices' pixel codes into bits 2-5 of ``rc``, and append to ``starts[n:]``
    the flat position ``base + 8 * k`` of every word ``k`` holding a +x corner edge (pixel below
    set, above clear, and not continuing a +x edge from the left). Returns ``(n, corners,
    saddles)``: the new count, the row's corner vertices (1 or 3 pixels set: one corner; a
    saddle: two) and saddle vertices. Branch-free but for skipping words without edges."""
    corners = np.uint64(0)
    saddles = np.uint64(0)
    prev_c = np.uint64(0)
    prev_u = np.uint64(0)
    for k in range(rc.shape[0]):
        br = rc[k] & _ONES
        tr = ru[k] & _ONES
        bl = (br << _U8) | (prev_c >> _U56)
        tl = (tr << _U8) | (prev_u >> _U56)
        prev_c = br
        prev_u = tr
        if ((br ^ tr) | (bl ^ tl) | (br ^ bl)) == 0:
            continue  # 8 vertices without an edge
        rc[k] = br | ((tl | (tr << _U1) | (bl << _U2) | (br << _U3)) << _U2)
        x1 = tl ^ br
        x2 = tr ^ bl
        sad = ((x1 | x2) ^ _ONES) & (tl ^ tr)  # tl == br != tr == bl
        # per byte: odd pixel count -> 1 corner, saddle -> 2 (so the bytes stay <= 2 and the
        # byte sum is the top byte of the product)
        corners += (((x1 ^ x2) + sad + sad) * _ONES) >> _U56
        saddles += (sad * _ONES) >> _U56
        s = br & (tr ^ _ONES) & ((bl & (tl ^ _ONES)) ^ _ONES)
        starts[n] = base + 8 * k
        n += np.int64(s != 0)
    return n, np.int64(corners), np.int64(saddles)


@njit(cache=True, nogil=True, error_model="numpy")
def _scan(words):
    """:func:`_scan_row` over all vertex rows of the padded buffer seen as 64-bit words (one
    row a row). Returns ``(starts, n_corners, n_saddles)``; ``starts`` (the words holding +x
    corner edges) are in raster order."""
    nw = words.shape[1]
    starts = np.empty(1024, np.int64)
    n = np.int64(0)
    n_corners = np.int64(0)
    n_saddles = np.int64(0)
    for y in range(1, words.shape[0]):
        if n + nw > starts.shape[0]:
            bigger = np.empty(2 * starts.shape[0] + nw, np.int64)
            for i in range(n):  # (a slice assignment would add seconds of compile time)
                bigger[i] = starts[i]
            starts = bigger
        n, c, sd = _scan_row(words[y], words[y - 1], y * nw * 8, starts, n)
        n_corners += c
        n_saddles += sd
    return starts[:n], n_corners, n_saddles


@njit(cache=True, nogil=True, error_model="numpy")
def _walk(buf, x0, y0, stride, vx, vy, n, occ_p, occ_v, ns):
    """Follow the cycle from the +x edge at vertex ``(x0, y0)``, writing its corner vertices to
    ``vx, vy`` from ``n`` on and the cycle positions and vertex ids of its saddle corners to
    ``occ_p, occ_v`` from ``ns`` on (room is sized by :func:`_scan`), and mark its +x corner
    edges traced. Returns the new ``(n, ns)``."""
    n0 = n
    x = x0
    y = y0
    i0 = y0 * stride + x0
    i = i0
    d = 0
    q = (buf[i] >> 2) & 15
    while True:
        # corner vertex (x, y), leaving in direction d
        if n >= vx.shape[0]:  # cannot happen: the scan counted the corners exactly
            raise RuntimeError("internal error: more corners traced than counted")
        vx[n] = x
        vy[n] = y
        if q == 6 or q == 9:  # saddle corner
            if ns >= occ_p.shape[0]:
                raise RuntimeError("internal error: more saddles traced than counted")
            occ_p[ns] = n - n0
            occ_v[ns] = i
            ns += 1
        n += 1
        if d == 0:
            buf[i] |= 2
        dx = _DX[d]
        dy = _DY[d]
        di = dx + dy * stride
        while True:  # follow the edge(s) to the next corner
            x += dx
            y += dy
            i += di
            q = (buf[i] >> 2) & 15
            nd = _NEXT[d * 16 + q]
            if nd != d:
                break
        if nd == 0 and i == i0:
            return n, ns
        d = nd


@njit(cache=True, nogil=True, error_model="numpy")
def _label_holes(vx, vy, rends, rlab, rarea, nr, nlab, hq_x, hq_y, hq_r0, hq_r1, nq, n_rows):
    """Label the hole-only cycles ``hq`` (in raster order of their start pixels ``(hq_y, hq_x)``,
    each a pixel of the part they bound; rings ``[hq_r0, hq_r1)``) with the label of the
    innermost exterior ring around the start pixel. Only the exterior edges crossing the rows of
    the start pixels are collected: O(exterior perimeter + crossings log crossings)."""
    want = np.zeros(n_rows, np.bool_)
    for q in range(nq):
        want[hq_y[q]] = True
    # vertical unit edges of exteriors in the wanted rows, bucketed by row, as sort keys
    # (x * 2 + foreground on the right) * (nlab + 1) + label
    cnt = np.zeros(n_rows + 1, np.int64)
    for pas in range(2):
        if pas == 1:
            for r in range(n_rows):
                cnt[r + 1] += cnt[r]
            keys = np.empty(cnt[n_rows], np.int64)
            fill = np.empty(n_rows, np.int64)
            for r in range(n_rows):
                fill[r] = cnt[r]
        a = 0
        for r in range(nr):
            e = rends[r]
            if rarea[r] > 0:
                for i in range(a, e):
                    j = i + 1 if i + 1 < e else a
                    if vx[i] != vx[j]:
                        continue
                    lo, hi = (vy[i], vy[j]) if vy[i] < vy[j] else (vy[j], vy[i])
                    right = 1 if vy[j] < vy[i] else 0  # moving -y: foreground on the right
                    key = (vx[i] * 2 + right) * (nlab + 1) + rlab[r]
                    for y in range(lo, hi):
                        if want[y]:
                            if pas == 0:
                                cnt[y + 1] += 1
                            else:
                                keys[fill[y]] = key
                                fill[y] += 1
            a = e
    for y in range(n_rows):
        if want[y]:
            _heapsort(keys[cnt[y] : cnt[y + 1]])
    # One left-to-right sweep per row: crossing an exterior edge with the foreground on its
    # right enters that exterior, one with the foreground on its left leaves it; exteriors nest,
    # so the innermost one around a start pixel is the top of the stack. The queries come in
    # raster order.
    stack = np.empty(max(keys.shape[0], 1), np.int64)
    q = 0
    while q < nq:
        y = hq_y[q]
        k = cnt[y]
        top = 0
        while q < nq and hq_y[q] == y:
            while k < cnt[y + 1] and keys[k] // (nlab + 1) // 2 <= hq_x[q]:
                if (keys[k] // (nlab + 1)) & 1:
                    stack[top] = keys[k] % (nlab + 1)
                    top += 1
                elif top > 0:
                    top -= 1
                k += 1
            lab = stack[top - 1] if top > 0 else 0
            for r in range(hq_r0[q], hq_r1[q]):
                rlab[r] = lab
            q += 1


@njit(cache=True, nogil=True, error_model="numpy")
def trace_core(m):
    """Trace a C-contiguous 0/1 ``uint8`` mask.

    Returns ``(xy, off, lab, area2)``: ``xy`` an ``(N, 2)`` int64 array of all rings' corner
    vertices (x, y) one after the other, ``off`` the ``R + 1`` ring offsets into it, ``lab`` each
    ring's part label (1-based, ``cv2.connectedComponents`` 4-connectivity numbering) and
    ``area2`` twice each ring's signed shoelace area.
    """
    r0, r1, c0, c1 = _bbox(m)
    if r0 < 0:
        return (
            np.zeros((0, 2), np.int64),
            np.zeros(1, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        )
    bh = r1 - r0
    bw = c1 - c0
    stride = (bw + 2 + 7) // 8 * 8
    buf = np.zeros((bh + 2) * stride, np.uint8)
    P = buf.reshape(bh + 2, stride)
    for i in range(bh):
        src = m[r0 + i, c0:c1]
        dst = P[i + 1, 1:]
        for j in range(bw):  # row views: vectorized copy
            dst[j] = src[j] != 0
    starts, n_corners, n_saddles = _scan(buf.view(np.uint64).reshape(bh + 2, stride // 8))

    # Exact sizes, so that nothing grows in the loops below (regrowing an array in a numba loop
    # costs reference counting on every iteration).
    vx = np.empty(n_corners, np.int64)
    vy = np.empty(n_corners, np.int64)
    occ_p = np.empty(2 * n_saddles, np.int64)
    occ_v = np.empty(2 * n_saddles, np.int64)
    max_rings = n_corners // 4 + 1  # a simple loop has >= 4 corners
    rends = np.empty(max_rings, np.int64)
    rlab = np.empty(max_rings, np.int64)
    rarea = np.empty(max_rings, np.int64)
    hq_x = np.empty(max_rings, np.int64)
    hq_y = np.empty(max_rings, np.int64)
    hq_r0 = np.empty(max_rings, np.int64)
    hq_r1 = np.empty(max_rings, np.int64)
    # np.int64(0), not 0: a literal 0 makes numba compile the callees twice
    n = np.int64(0)
    ns = np.int64(0)
    nr = np.int64(0)
    nq = np.int64(0)
    nlab = np.int64(0)

    for sw in starts:
        for st in range(sw, sw + 8):
            c = buf[st]
            if not _IS_START[(c >> 2) & 15] or c & 2:
                continue
            y0 = st // stride
            x0 = st - y0 * stride
            n0 = n
            ns0 = ns
            n, ns = _walk(buf, x0, y0, stride, vx, vy, n, occ_p, occ_v, ns)

            # split into simple loops, signed areas
            nr_start = nr
            if ns - ns0 >= 2:
                nr, first_loop = _split(vx, vy, n0, n, occ_p[ns0:ns], occ_v[ns0:ns], rends, nr)
            else:
                rends[nr] = n
                first_loop = nr
                nr += 1
            a = n0
            for r in range(nr_start, nr):
                e = rends[r]
                s2 = 0
                for i in range(a, e):
                    j = i + 1 if i + 1 < e else a
                    s2 += vx[i] * vy[j] - vx[j] * vy[i]
                rarea[r] = s2
                a = e

            if rarea[first_loop] > 0:  # the cycle holds the exterior of a new part
                nlab += 1
                for r in range(nr_start, nr):
                    rlab[r] = nlab
            else:  # holes only: labelled at the end
                hq_x[nq] = x0
                hq_y[nq] = y0
                hq_r0[nq] = nr_start
                hq_r1[nq] = nr
                nq += 1
    if nq:
        _label_holes(vx, vy, rends, rlab, rarea, nr, nlab, hq_x, hq_y, hq_r0, hq_r1, nq, bh + 2)

    xy = np.empty((n, 2), np.int64)
    for i in range(n):
        xy[i, 0] = vx[i] - 1 + c0
        xy[i, 1] = vy[i] - 1 + r0
    off = np.zeros(nr + 1, np.int64)
    lab = np.empty(nr, np.int64)
    area2 = np.empty(nr, np.int64)
    for r in range(nr):
        off[r + 1] = rends[r]
        lab[r] = rlab[r]
        area2[r] = rarea[r]
    return xy, off, lab, area2


@njit(cache=True, nogil=True, error_model="numpy")
def group_rings(xy, off, lab, area2):
    """Reorder traced rings into polygons: by label, exterior first then holes in trace order.

    Returns ``(pts, off, poly, n_polys)`` with ``pts`` float64 ``(N, 2)`` and ``poly`` each
    ring's polygon index (label - 1). ``n_polys`` is -1 if a part has no or two exteriors
    (a tracer bug).
    """
    nr = lab.shape[0]
    n_polys = 0
    for r in range(nr):
        if lab[r] > n_polys:
            n_polys = lab[r]
    cnt = np.zeros(n_polys + 1, np.int64)
    n_ext = np.zeros(n_polys + 1, np.int64)
    bad = False
    for r in range(nr):
        if lab[r] < 1:
            bad = True
            continue
        cnt[lab[r]] += 1
        if area2[r] > 0:
            n_ext[lab[r]] += 1
    for p in range(1, n_polys + 1):
        if n_ext[p] != 1:
            bad = True
    if bad:
        return np.zeros((0, 2), np.float64), np.zeros(1, np.int64), np.zeros(0, np.int64), -1
    # slot of each polygon's first ring
    first = np.zeros(n_polys + 2, np.int64)
    for p in range(1, n_polys + 1):
        first[p + 1] = first[p] + cnt[p]
    nxt_hole = np.empty(n_polys + 1, np.int64)  # next free hole slot per label
    for p in range(1, n_polys + 1):
        nxt_hole[p] = first[p] + 1
    order = np.empty(nr, np.int64)
    for r in range(nr):
        p = lab[r]
        if area2[r] > 0:
            order[first[p]] = r
        else:
            order[nxt_hole[p]] = r
            nxt_hole[p] += 1
    new_off = np.zeros(nr + 1, np.int64)
    poly = np.empty(nr, np.int64)
    for i in range(nr):
        r = order[i]
        new_off[i + 1] = new_off[i] + off[r + 1] - off[r]
        poly[i] = lab[r] - 1
    pts = np.empty((xy.shape[0], 2), np.float64)
    for i in range(nr):
        r = order[i]
        w = new_off[i]
        for v in range(off[r], off[r + 1]):
            pts[w, 0] = xy[v, 0]
            pts[w, 1] = xy[v, 1]
            w += 1
    return pts, new_off, poly, n_polys
