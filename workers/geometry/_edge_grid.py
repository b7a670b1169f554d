"""Boxes and the uniform grid of boxes that the validity test and the outline distance search.

Rings stored flat, and how these numba kernels compile and cache: :mod:`workers.geometry.simplify`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


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
