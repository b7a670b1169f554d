"""Rasterization: the IoU of rings against a source mask window, from scanline crossings (winding
numbers per pixel row, prefix sums of the mask's rows).

Rings stored flat, and how these numba kernels compile and cache: :mod:`workers.geometry.simplify`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


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
