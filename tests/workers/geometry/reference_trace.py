"""The vectorized NumPy pixel-outline tracer that ``workers.geometry.contours.trace_rings`` used
before the compiled one: the tests' reference (same output, much slower)."""

from __future__ import annotations

import cv2
import numpy as np

# Directions: 0 = +x, 1 = +y, 2 = -x, 3 = -y. A left turn (math sense, x right / y up) is d + 1.
_DX = np.array([1, 0, -1, 0], dtype=np.int64)
_DY = np.array([0, 1, 0, -1], dtype=np.int64)


def _split_at_repeats(edges: list[int], vid: list[int]) -> list[list[int]]:
    """Split a closed edge cycle into simple loops wherever a start vertex repeats."""
    loops: list[list[int]] = []
    stack: list[int] = []
    pos: dict[int, int] = {}
    for e in edges:
        v = vid[e]
        i = pos.get(v)
        if i is None:
            pos[v] = len(stack)
            stack.append(e)
            continue
        loop = stack[i:]
        for f in loop[1:]:
            del pos[vid[f]]
        loops.append(loop)
        del stack[i:]
        stack.append(e)
    if stack:
        loops.append(stack)
    return loops


def trace_rings_numpy(m: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Trace the exact pixel-corner outlines of a bool mask (see ``contours.trace_rings``)."""
    ys, xs = np.nonzero(m)
    if ys.size == 0:
        return []
    r0, c0 = int(ys.min()), int(xs.min())
    sub = m[r0 : int(ys.max()) + 1, c0 : int(xs.max()) + 1]
    h, w = sub.shape
    p = np.zeros((h + 2, w + 2), dtype=bool)
    p[1:-1, 1:-1] = sub
    vw = w + 1  # vertices per row of the corner grid

    # Horizontal edges at y in [0, h], x in [0, w): pixel above = p[y, x+1], below = p[y+1, x+1].
    up, down = p[:-1, 1:-1], p[1:, 1:-1]
    y_a, x_a = np.nonzero(down & ~up)  # direction +x, start (x, y)
    y_b, x_b = np.nonzero(up & ~down)  # direction -x, start (x+1, y)
    # Vertical edges at x in [0, w], y in [0, h): left pixel p[y+1, x], right p[y+1, x+1].
    left, right = p[1:-1, :-1], p[1:-1, 1:]
    y_c, x_c = np.nonzero(left & ~right)  # direction +y, start (x, y)
    y_d, x_d = np.nonzero(right & ~left)  # direction -y, start (x, y+1)
    sx = np.concatenate([x_a, x_b + 1, x_c, x_d])
    sy = np.concatenate([y_a, y_b, y_c, y_d + 1])
    d = np.concatenate(
        [
            np.zeros(len(x_a), np.int64),
            np.full(len(x_b), 2, np.int64),
            np.ones(len(x_c), np.int64),
            np.full(len(x_d), 3, np.int64),
        ]
    )
    n_edges = len(d)
    start = sy * vw + sx
    end = (sy + _DY[d]) * vw + (sx + _DX[d])
    out = np.full((4, (h + 1) * vw), -1, dtype=np.int64)
    out[d, start] = np.arange(n_edges)
    # Successor: prefer the left turn (keeps diagonal foreground pixels apart at saddles),
    # then straight on, then the right turn.
    succ = out[(d + 1) % 4, end]
    miss = succ < 0
    succ[miss] = out[d[miss], end[miss]]
    miss = succ < 0
    succ[miss] = out[(d[miss] + 3) % 4, end[miss]]

    # Keep only corner edges (direction differs from the predecessor's).
    pred = np.empty(n_edges, dtype=np.int64)
    pred[succ] = np.arange(n_edges)
    corner = d[pred] != d
    jump = succ.copy()
    while True:  # pointer doubling: jump[e] = next corner edge after e
        bad = ~corner[jump]
        if not bad.any():
            break
        jump[bad] = jump[jump[bad]]
    cidx = np.flatnonzero(corner)
    compact = np.full(n_edges, -1, dtype=np.int64)
    compact[cidx] = np.arange(len(cidx))
    nxt = compact[jump[cidx]].tolist()
    cvid = start[cidx]
    saddle = (out >= 0).sum(axis=0) == 2
    cvid_list = cvid.tolist()
    is_saddle = saddle[cvid]

    labels = cv2.connectedComponents(sub.view(np.uint8), connectivity=4, ltype=cv2.CV_32S)[1]
    cx, cy, cd = sx[cidx], sy[cidx], d[cidx]
    # Pixel on the left of each corner edge, in sub coordinates.
    lrow = cy - (cd >= 2)
    lcol = cx - ((cd == 1) | (cd == 2))
    left_label = labels[lrow, lcol]

    rings: list[tuple[np.ndarray, int]] = []
    nxt_a = np.asarray(nxt, dtype=np.int64)
    rep, pos = _cycle_order(nxt_a)
    order = np.lexsort((pos, rep))  # cycles by their smallest corner index, each from there
    rs = rep[order]
    bounds = np.flatnonzero(np.concatenate([[True], rs[1:] != rs[:-1], [True]]))
    has_saddle = np.zeros(len(cidx), dtype=bool)
    np.logical_or.at(has_saddle, rep, is_saddle)
    gx, gy = cx + c0, cy + r0
    for i in range(len(bounds) - 1):
        arr = order[bounds[i] : bounds[i + 1]]
        if has_saddle[arr[0]]:
            loops = [np.asarray(lp, dtype=np.int64) for lp in _split_at_repeats(arr.tolist(), cvid_list)]
        else:
            loops = [arr]
        for lp in loops:
            ring = np.stack([gx[lp], gy[lp]], axis=1)
            rings.append((ring, int(left_label[lp[0]])))
    return rings


def _cycle_order(nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a permutation ``nxt`` (disjoint cycles): each element's cycle representative (the
    smallest index of its cycle) and its position along the cycle counted from the
    representative, by pointer doubling (O(n log L) vectorized, L = longest cycle)."""
    n = len(nxt)
    rep = np.arange(n)
    jump = nxt.copy()
    while True:  # rep[e] = min over a window of 2^k successors; stable => cycle minimum
        new = np.minimum(rep, rep[jump])
        if np.array_equal(new, rep):
            break
        rep = new
        jump = jump[jump]
    is_rep = rep == np.arange(n)
    dist = (~is_rep).astype(np.int64)  # steps from e forward to its representative
    ptr = np.where(is_rep, np.arange(n), nxt)
    while True:
        todo = ~is_rep[ptr]
        if not todo.any():
            break
        dist[todo] += dist[ptr[todo]]
        ptr[todo] = ptr[ptr[todo]]
    length = np.bincount(rep, minlength=n)[rep]
    return rep, (length - dist) % length
