"""The compiled kernels of the simplifiers against plain reference implementations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.geometry import (
    _candidates,
    _edge_contacts,
    _levels,
    _outline_distance,
    _slope,
    _visvalingam,
    _winding_iou,
    mask_to_polygons,
)
from workers.geometry.raster import parse_polygons, rasterize_flat
from workers.geometry.simplify import (
    _assemble,
    _edge_moments,
    _exterior_flags,
    _midpoint_rings,
    _ring_areas,
    _Rings,
    _split,
    invalid_parts,
    significance,
)

from .helpers import blob_masks, noise_masks


def rings_of(m: np.ndarray) -> _Rings:
    return _Rings.from_parsed(parse_polygons(mask_to_polygons(m)))


def random_mask(rng: np.random.Generator) -> np.ndarray:
    h, w = (int(v) for v in rng.integers(4, 40, 2))
    m = rng.random((h, w)) < rng.uniform(0.2, 0.8)
    if rng.random() < 0.5:
        m = cv2.GaussianBlur(m.astype(np.float32), (0, 0), rng.uniform(0.5, 2.5)) > 0.5
    return m


def reference_vw(ring: np.ndarray, height: bool = False) -> np.ndarray:
    """Plain sequential Visvalingam-Whyatt: remove the smallest metric (ties: lowest index)."""
    n = len(ring)
    sig = np.full(n, np.inf)
    alive = list(range(n))
    runmax = 0.0

    def metric(k: int) -> float:
        p, q, r = ring[alive[k - 1]], ring[alive[k]], ring[alive[(k + 1) % len(alive)]]
        cross = abs((p[0] - q[0]) * (r[1] - q[1]) - (p[1] - q[1]) * (r[0] - q[0]))
        if not height:
            return 0.5 * cross
        base = float(np.hypot(*(r - p)))
        return cross / base if base > 0 else float(np.hypot(*(q - p)))

    while len(alive) > 3:
        vals = [(metric(k), alive[k], k) for k in range(len(alive))]
        m, idx, k = min(vals)
        sig[idx] = max(m, runmax)
        runmax = max(runmax, m)
        del alive[k]
    return sig


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.booleans())
def test_visvalingam_whyatt_matches_sequential_reference(seed, height):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 60))
    ring = np.round(np.cumsum(rng.normal(size=(n, 2)), axis=0) * 2) / 2  # half-pixel ties
    got = _visvalingam.elimination_significance(ring, np.array([0, n]), height)
    np.testing.assert_array_equal(got, reference_vw(ring, height))


@settings(max_examples=40, deadline=None)
@given(blob_masks())
def test_levels_are_the_distinct_finite_significances(m):
    R = rings_of(m)
    if not len(R.pts):
        return
    for method in ("douglas_peucker", "visvalingam_whyatt"):
        sig = significance(R, method)
        expected = np.concatenate([[-1.0], np.unique(sig[np.isfinite(sig)])])
        np.testing.assert_array_equal(_levels.levels_of(sig), expected)


@pytest.mark.parametrize("seed", range(4))
def test_suspect_polygons_never_clears_an_invalid_polygon(seed):
    """Random simplifications (no repair), some with jittered vertices, of random masks: every
    polygon the compiled test clears (flag 0) is valid and disjoint from the others per GEOS,
    with its rings' orientation kept; every polygon it marks certainly bad (2) is bad."""
    rng = np.random.default_rng(seed)
    cleared = suspect = 0
    for _ in range(150):
        polys = mask_to_polygons(random_mask(rng))
        if not polys:
            continue
        R = _Rings.from_parsed(parse_polygons(polys))
        base = _midpoint_rings(R) if rng.random() < 0.5 else R
        method = ["douglas_peucker", "visvalingam_whyatt"][int(rng.integers(2))]
        sig = significance(base, method)
        t = float(rng.uniform(0, 3))
        P, origin = _edge_moments(base)
        refine = bool(rng.random() < 0.5)  # line-fit moves vertices off the pixel grid
        pts, off = _candidates.make_candidate(
            base.pts, base.off, sig, t, refine, method == "douglas_peucker", P, origin, 0, 0
        )
        if rng.random() < 0.3:
            pts = pts + rng.normal(0, 0.3, pts.shape) * (rng.random(len(pts)) < 0.1)[:, None]
        ext = _exterior_flags(R)
        flag = _edge_contacts.suspect_polygons(pts, off, R.poly, ext)
        rings = _split((pts, off))
        bad = set(invalid_parts(_assemble(R, rings)).tolist())
        bad |= set(R.poly[(_ring_areas(rings) > 0) != ext].tolist())
        for i in range(R.n_polys):
            if flag[i] == 0:
                cleared += 1
                assert i not in bad
            elif flag[i] == 2:
                assert i in bad
            else:
                suspect += 1
    assert cleared > 100 and suspect > 10  # both branches exercised


def test_parts_touching_at_a_corner_are_cleared_and_overlap_is_not():
    # Two squares touching at one corner: valid MultiPolygon, no GEOS needed.
    m = np.zeros((6, 6), bool)
    m[1:3, 1:3] = True
    m[3:5, 3:5] = True
    R = rings_of(m)
    assert R.n_polys == 2
    assert _edge_contacts.suspect_polygons(R.pts, R.off, R.poly, _exterior_flags(R)).tolist() == [0, 0]
    # The same two squares sharing an edge segment, or overlapping: not cleared.
    for dx in (0.0, 0.5):
        pts = R.pts.copy()
        pts[R.off[1] :] -= [1.0 + dx, 0.0]
        flag = _edge_contacts.suspect_polygons(pts, R.off, R.poly, _exterior_flags(R))
        assert flag.tolist() == [1, 1]
        geoms = [shapely.Polygon(r) for r in _split((pts, R.off))]
        assert len(invalid_parts(geoms)) == 2


def test_hole_outside_its_exterior_is_not_cleared():
    m = np.zeros((9, 9), bool)
    m[1:8, 1:8] = True
    m[3:6, 3:6] = False
    R = rings_of(m)
    pts = R.pts.copy()
    pts[R.off[1] :] += [20.0, 0.0]  # move the hole out of its shell
    assert _edge_contacts.suspect_polygons(pts, R.off, R.poly, _exterior_flags(R)).tolist() == [1]


@settings(max_examples=40, deadline=None)
@given(noise_masks())
def test_traced_outlines_are_cleared_or_valid(m):
    """Exact traced outlines are valid; the compiled test may leave touching rings of one
    polygon to GEOS but must never call them certainly bad."""
    R = rings_of(m)
    if not len(R.pts):
        return
    flag = _edge_contacts.suspect_polygons(R.pts, R.off, R.poly, _exterior_flags(R))
    assert (flag < 2).all()
    assert not len(invalid_parts(_assemble(R, R.ring_list())))


@settings(max_examples=60, deadline=None)
@given(noise_masks(), st.integers(-3, 3), st.integers(-3, 3), st.booleans())
def test_row_prefix_of_rings_equals_prefix_of_the_raster(m, dx, dy, jitter):
    """The source prefix table built from ring crossings equals the one of the rasterized
    rings, for pixel outlines and off-grid rings, in windows that clip them."""
    R = rings_of(m)
    if not len(R.pts):
        return
    pts = R.pts + (np.sin(np.arange(len(R.pts)) * 1.7)[:, None] * 0.3 if jitter else 0.0)
    h, w = m.shape[0] + dy, m.shape[1] + dx
    if h <= 0 or w <= 0:
        return
    x0, y0 = -dx // 2, -dy // 2
    want = _winding_iou.row_prefix(rasterize_flat(pts, R.off, x0, y0, h, w))
    np.testing.assert_array_equal(_winding_iou.row_prefix_of_rings(pts, R.off, x0, y0, h, w), want)


@settings(max_examples=25, deadline=None)
def reference_slope_keep(R, tol_deg: float, min_len: float = 1.5, window: int = 256) -> np.ndarray:
    """The slope filter as first written in NumPy (a window of vectors per anchor)."""
    tol = np.deg2rad(tol_deg)
    keep = np.zeros(len(R.pts), dtype=bool)
    for k in range(len(R.off) - 1):
        a0, b0 = int(R.off[k]), int(R.off[k + 1])
        ring = R.pts[a0:b0]
        n = len(ring)
        ext = np.vstack([ring, ring[:1]])
        kept = [0]
        a = 0
        while a < n:
            j1 = min(n + 1, a + 1 + window)
            v = ext[a + 1 : j1] - ext[a]
            dist = np.hypot(v[:, 0], v[:, 1])
            ang = np.arctan2(v[:, 1], v[:, 0])
            far = dist >= min_len
            if not far.any():
                a = j1 - 1
                kept.append(a)
                continue
            ref = ang[np.argmax(far)]
            rel = np.where(far, (ang - ref + np.pi) % (2 * np.pi) - np.pi, 0.0)
            spread = np.maximum.accumulate(rel) - np.minimum.accumulate(rel)
            bad = np.flatnonzero(spread > tol)
            if len(bad):
                j = int(bad[0])  # v[j] violates -> previous point is the new anchor
                a = a + max(j, 1)
            else:
                a = j1 - 1
            kept.append(a)
        kept_arr = np.array([i for i in kept if i < n], dtype=np.int64)
        if len(np.unique(kept_arr)) < 3:
            kept_arr = np.unique(np.concatenate([kept_arr, [0, n // 3, (2 * n) // 3]]))
        keep[a0 + kept_arr] = True
    return keep


@settings(max_examples=60, deadline=None)
@given(
    blob_masks(),
    st.booleans(),
    st.sampled_from([1.3, 5.7, 10.9, 21.1, 44.3, 89.2]),
    st.sampled_from([3, 8, 256]),
)
def test_slope_filter_matches_reference(m, midpoints, tol, window):
    """Compiled slope filter = the NumPy reference (tolerances off the 45-degree multiples, where
    pixel-outline directions would tie with the cone and rounding could decide either way)."""
    R = rings_of(m)
    if not len(R.pts):
        return
    if midpoints:
        R = _midpoint_rings(R)
    got = _slope.slope_keep(R.pts, R.off, tol, 1.5, window)
    np.testing.assert_array_equal(got, reference_slope_keep(R, tol, window=window))


@settings(max_examples=60, deadline=None)
@given(blob_masks(), st.sampled_from([0.7, 1.3, 3.3]), st.integers(0, 7), st.integers(0, 7))
def test_a_window_rasterizes_bit_for_bit_like_the_whole_image(m, scale, x0, y0):
    """Off-grid rings put crossings on pixel centres up to rounding: the window arithmetic (the
    bounded search's IoU) must round exactly as polygons_to_mask on the whole image does."""
    R = rings_of(m)
    if not len(R.pts):
        return
    pts = R.pts * scale
    H, W = int(np.ceil(m.shape[0] * scale)), int(np.ceil(m.shape[1] * scale))
    full = rasterize_flat(pts, R.off, 0, 0, H, W)
    h, w = H - y0, W - x0
    if h <= 0 or w <= 0:
        return
    crop = full[y0:, x0:]
    np.testing.assert_array_equal(rasterize_flat(pts, R.off, x0, y0, h, w), crop)
    np.testing.assert_array_equal(
        _winding_iou.row_prefix_of_rings(pts, R.off, x0, y0, h, w), _winding_iou.row_prefix(crop)
    )


def test_window_rounding_regression():
    # Found by hypothesis: with the window's origin subtracted before the crossing arithmetic,
    # this edge (46.2 = 14 x 3.3 in floating point) rounded across a pixel centre differently
    # from the whole image, and the bounded search accepted a result at IoU 0.9789 < 0.98.
    pts = np.array([[46.199999999999996, 0.0], [102.3, 0.0], [102.3, 16.5], [49.5, 16.5]])
    off = np.array([0, 4])
    full = rasterize_flat(pts, off, 0, 0, 17, 103)
    np.testing.assert_array_equal(rasterize_flat(pts, off, 17, 0, 17, 86), full[:, 17:])
    np.testing.assert_array_equal(
        _winding_iou.row_prefix_of_rings(pts, off, 17, 0, 17, 86), _winding_iou.row_prefix(full[:, 17:])
    )
    window = (17, 0, 17, 86, _winding_iou.row_prefix(full[:, 17:]), int(full.sum()))
    # The bottom edge runs along row 16's centre line: those centres are ties, scored against the
    # polygon (see the next test), the same in the window as in the whole image.
    whole = _winding_iou.winding_iou(pts, off, 0, 0, 17, 103, _winding_iou.row_prefix(full), int(full.sum()))
    assert (
        _winding_iou.winding_iou(pts, off, *window)
        == whole
        <= worst_tie_iou(pts, off, full[:, 17:], 17, 0)
        < 1.0
    )
    shifted = pts + [0.0, 0.25]  # off the centre line: no ties, the exact raster IoU
    full = rasterize_flat(shifted, off, 0, 0, 17, 103)
    window = (17, 0, 17, 86, _winding_iou.row_prefix(full[:, 17:]), int(full.sum()))
    assert _winding_iou.winding_iou(shifted, off, *window) == 1.0


def worst_tie_iou(pts: np.ndarray, off: np.ndarray, src: np.ndarray, x0: int, y0: int) -> float:
    """IoU of the polygon with ``src`` (window at ``x0, y0``) under the worst tie rule: a pixel
    whose centre lies on the outline is outside when it is a source pixel and inside otherwise
    (shapely decides inside, outside and on the outline, independently of ``workers.geometry``)."""
    rings = [pts[off[k] : off[k + 1]] for k in range(len(off) - 1)]
    geom = shapely.Polygon(rings[0], rings[1:]).buffer(0) if len(rings) > 1 else shapely.Polygon(rings[0])
    ys, xs = np.mgrid[y0 : y0 + src.shape[0], x0 : x0 + src.shape[1]]
    inside = shapely.contains_xy(geom, xs + 0.5, ys + 0.5)
    on = shapely.intersects_xy(geom.boundary, xs + 0.5, ys + 0.5)
    inter = int((inside & src).sum())
    union = int((src | inside | on).sum())
    return 1.0 if union == 0 else inter / union


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_winding_iou_scores_ties_against_the_polygon(seed):
    """Polygons with vertices on the half-pixel grid (their edges often run through pixel
    centres): the IoU the simplifiers check never exceeds the IoU under the worst tie rule, so a
    bound met by LabelHub's rasterizer is met by shapely's (centres on the outline outside), by
    OpenCV's (inside) and by any other; a polygon with no centre on its outline scores exactly."""
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(6, 30, 2))
    n = int(rng.integers(3, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radius = rng.uniform(2, min(h, w) / 2, n)
    pts = np.stack([w / 2 + radius * np.cos(angles), h / 2 + radius * np.sin(angles)], 1)
    pts = np.round(pts * 2) / 2  # the half-pixel grid
    if rng.random() < 0.5:
        pts[:, 0] = np.clip(pts[:, 0], 0, w - 0.5)  # edges along the last column's centres
    off = np.array([0, n])
    if not shapely.Polygon(pts).is_valid or shapely.Polygon(pts).area == 0:
        return
    if not shapely.Polygon(pts).exterior.is_ccw:
        pts = pts[::-1].copy()  # an exterior's orientation (y down: clockwise on the screen)
    src = random_mask(rng)[:h, :w]
    src = np.pad(src, ((0, h - src.shape[0]), (0, w - src.shape[1])))
    if rng.random() < 0.5:
        src = rasterize_flat(pts, off, 0, 0, h, w) | (src & (rng.random((h, w)) < 0.1))
    got = _winding_iou.winding_iou(pts, off, 0, 0, h, w, _winding_iou.row_prefix(src), int(src.sum()))
    assert got <= worst_tie_iou(pts, off, src, 0, 0) + 1e-12
    ys, xs = np.mgrid[0:h, 0:w]
    if not shapely.intersects_xy(shapely.Polygon(pts).boundary, xs + 0.5, ys + 0.5).any():
        ours = rasterize_flat(pts, off, 0, 0, h, w)
        union = int((ours | src).sum())
        assert got == (1.0 if union == 0 else int((ours & src).sum()) / union)


@settings(max_examples=40, deadline=None)
@given(blob_masks(), st.sampled_from([0.9, 0.98]), st.sampled_from([0.1, 0.5]))
def test_outline_distance_kernel_matches_a_brute_force_reference(m, min_iou, step):
    """The compiled directed distance equals the brute force one (shapely: points every `step`
    px along the outline, distance to the other outline, maximum), and with `step / 2` added it
    bounds the true Hausdorff distance from above."""
    from workers.geometry import mask_to_simplified_polygons

    from .helpers import to_geom

    exact = mask_to_polygons(m)
    if not exact:
        return
    out = mask_to_simplified_polygons(m, min_iou=min_iou)
    a, b = _Rings.from_parsed(parse_polygons(out)), _Rings.from_parsed(parse_polygons(exact))
    ga, gb = to_geom(out).boundary, to_geom(exact).boundary
    both = np.concatenate([a.pts, b.pts])
    (x0, y0), (x1, y1) = both.min(axis=0), both.max(axis=0)
    for src, dst, gs, gd in ((a, b, ga, gb), (b, a, gb, ga)):
        got = _outline_distance.directed_outline_distance(
            src.pts, src.off, dst.pts, dst.off, step, x0, y0, x1, y1
        )
        pts = shapely.points(shapely.get_coordinates(shapely.segmentize(gs, step)))
        assert got == pytest.approx(float(shapely.distance(pts, gd).max()), abs=1e-9)
    true = shapely.hausdorff_distance(ga, gb, densify=0.01)
    both_ways = max(
        _outline_distance.directed_outline_distance(a.pts, a.off, b.pts, b.off, step, x0, y0, x1, y1),
        _outline_distance.directed_outline_distance(b.pts, b.off, a.pts, a.off, step, x0, y0, x1, y1),
    )
    assert both_ways + step / 2 >= true - 1e-9
