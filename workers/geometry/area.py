"""The signed area of a ring: the one shoelace of the code base (pure; numpy or plain Python in)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ring_signed_area(ring: np.ndarray | Sequence[Sequence[float]]) -> float:
    """Shoelace signed area (pixels squared) of an open ring: an ``(n, 2)`` x/y array or a list of
    ``[x, y]``. Positive for the exterior orientation of this package (counter-clockwise, x right /
    y up), negative for holes; 0 for fewer than 3 vertices.

    A list is summed in plain Python (faster than numpy for the few dozen vertices of a stored
    polygon); an array with numpy.
    """
    if len(ring) < 3:
        return 0.0
    if isinstance(ring, np.ndarray):
        r = ring.astype(np.float64, copy=False)
        x, y = r[:, 0], r[:, 1]
        return float(0.5 * (np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]) + x[-1] * y[0] - x[0] * y[-1]))
    total = 0.0
    x0, y0 = ring[-1]
    for x1, y1 in ring:
        total += x0 * y1 - x1 * y0
        x0, y0 = x1, y1
    return 0.5 * total
