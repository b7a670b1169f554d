"""Visvalingam-Whyatt style elimination (binary heap, lazy deletion): each vertex's significance.

Rings stored flat, and how these numba kernels compile and cache: :mod:`workers.geometry.simplify`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_INF = np.inf


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
