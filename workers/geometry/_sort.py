"""Sorting by key, in place, as a total order (hand-written heapsorts: numba's own sorts take seconds
each to compile).

Rings stored flat, and how these numba kernels compile and cache: :mod:`workers.geometry.simplify`.
"""

from __future__ import annotations

from numba import njit


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
