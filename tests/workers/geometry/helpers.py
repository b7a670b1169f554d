"""Shared helpers for geometry tests."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def signed_area(ring: list[list[float]]) -> float:
    a = np.asarray(ring, dtype=float)
    x, y = a[:, 0], a[:, 1]
    return float(0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def to_geom(polys: list[dict]) -> shapely.MultiPolygon:
    return shapely.MultiPolygon([shapely.Polygon(p["exterior"], p["holes"]) for p in polys])


def assert_region_valid(polys: list[dict]) -> None:
    """Every polygon valid, rings open with >= 3 vertices, orientation as documented, and the
    parts' interiors pairwise disjoint (the whole region is a valid MultiPolygon)."""
    for p in polys:
        g = shapely.Polygon(p["exterior"], p["holes"])
        assert g.is_valid, shapely.is_valid_reason(g)
        assert g.area > 0
        for ring in [p["exterior"], *p["holes"]]:
            assert len(ring) >= 3
            assert ring[0] != ring[-1]
            assert all(isinstance(v, float) for pt in ring for v in pt)
        assert signed_area(p["exterior"]) > 0
        assert all(signed_area(h) < 0 for h in p["holes"])
    if polys:
        mp = to_geom(polys)
        assert mp.is_valid, shapely.is_valid_reason(mp)


def n_vertices(polys: list[dict]) -> int:
    return sum(len(p["exterior"]) + sum(len(h) for h in p["holes"]) for p in polys)


def disk(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 <= r * r


@st.composite
def noise_masks(draw, max_side: int = 16) -> np.ndarray:
    """Salt-and-pepper masks: many parts, holes, diagonal contacts, border contact."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    return draw(hnp.arrays(np.bool_, (h, w)))


@st.composite
def blob_masks(draw, max_side: int = 48) -> np.ndarray:
    """Unions/differences of disks and rectangles: realistic object shapes with holes."""
    h = draw(st.integers(4, max_side))
    w = draw(st.integers(4, max_side))
    m = np.zeros((h, w), dtype=bool)
    for _ in range(draw(st.integers(1, 5))):
        cy = draw(st.floats(0, h))
        cx = draw(st.floats(0, w))
        r = draw(st.floats(0.5, max(h, w) / 2))
        shape = disk(h, w, cy, cx, r)
        if draw(st.booleans()):
            y0, x0 = int(cy), int(cx)
            shape = np.zeros_like(m)
            shape[y0 : y0 + int(r) + 1, x0 : x0 + int(2 * r) + 1] = True
        m = m & ~shape if draw(st.integers(0, 3)) == 0 else m | shape
    return m
