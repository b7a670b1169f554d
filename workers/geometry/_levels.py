"""The tolerance levels of a significance hierarchy: each ring's vertices by decreasing significance,
the distinct levels where the result changes, and the vertices kept at a level.

Rings stored flat, and how these numba kernels compile and cache: :mod:`workers.geometry.simplify`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._sort import sort_indices
from ._trace import _heapsort


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
