from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings

from workers.geometry import mask_to_polygons, polygons_to_mask, validate_mask
from workers.geometry.contours import (
    prepare_mask,
    ring_signed_area,
    trace_flat,
    trace_rings,
)

from .helpers import assert_region_valid, blob_masks, noise_masks, signed_area
from .reference_trace import trace_rings_numpy

DATA = Path(
    os.environ.get("LABELHUB_SHARED_DATA") or Path(__file__).resolve().parents[3].parent / "shared" / "data"
)


def roundtrip(m: np.ndarray) -> list[dict]:
    polys = mask_to_polygons(m)
    back = polygons_to_mask(polys, *m.shape) if polys else np.zeros(m.shape, dtype=bool)
    np.testing.assert_array_equal(back, m.astype(bool))
    assert_region_valid(polys)
    return polys


def test_single_pixel_is_unit_square_on_corners():
    m = np.zeros((4, 5), dtype=bool)
    m[2, 3] = True
    polys = roundtrip(m)
    assert polys == [{"exterior": [[3.0, 2.0], [4.0, 2.0], [4.0, 3.0], [3.0, 3.0]], "holes": []}]
    assert signed_area(polys[0]["exterior"]) == 1.0


def test_empty_and_full_masks():
    assert mask_to_polygons(np.zeros((3, 4), dtype=bool)) == []
    polys = roundtrip(np.ones((3, 4), dtype=np.uint8))
    assert len(polys) == 1 and polys[0]["holes"] == []
    assert sorted(map(tuple, polys[0]["exterior"])) == [(0, 0), (0, 3), (4, 0), (4, 3)]


def test_ring_with_hole_and_island():
    m = np.zeros((9, 9), dtype=bool)
    m[1:8, 1:8] = True
    m[2:7, 2:7] = False
    m[4, 4] = True  # island inside the hole
    polys = roundtrip(m)
    assert len(polys) == 2
    outer = max(polys, key=lambda p: abs(signed_area(p["exterior"])))
    assert len(outer["holes"]) == 1
    assert signed_area(outer["holes"][0]) == -25.0
    assert signed_area(outer["exterior"]) == 49.0


def test_several_parts_and_border_contact():
    m = np.zeros((6, 7), dtype=np.uint8)
    m[0:2, 0:3] = 255  # touches top-left corner
    m[3:6, 4:7] = 255  # touches bottom-right corner
    m[5, 0] = 255
    polys = roundtrip(m)
    assert len(polys) == 3
    xs = [v[0] for p in polys for v in p["exterior"]]
    ys = [v[1] for p in polys for v in p["exterior"]]
    assert min(xs) == 0 and max(xs) == 7 and min(ys) == 0 and max(ys) == 6


def test_diagonal_contact_gives_separate_parts_touching_at_a_point():
    m = np.array([[1, 0], [0, 1]], dtype=bool)
    polys = roundtrip(m)
    assert len(polys) == 2


def test_diagonal_leak_gives_hole_touching_exterior():
    # a 4-connected ring whose inside leaks out through a diagonal gap
    m = np.array(
        [
            [1, 1, 1, 0],
            [1, 0, 1, 0],
            [1, 1, 0, 1],
            [0, 0, 1, 1],
        ],
        dtype=bool,
    )
    m[2, 2] = False
    m[1, 2] = True
    roundtrip(m)
    checker = np.indices((8, 8)).sum(axis=0) % 2 == 0
    assert len(roundtrip(checker)) == 32


def test_part_and_hole_thresholds():
    m = np.zeros((12, 12), dtype=bool)
    m[1:10, 1:10] = True
    m[3, 3] = False  # 1-pixel hole
    m[5:8, 5:8] = False  # 9-pixel hole
    m[11, 11] = True  # 1-pixel speck
    polys = mask_to_polygons(m, min_part_area=2, min_hole_area=2)
    assert len(polys) == 1
    assert len(polys[0]["holes"]) == 1
    assert signed_area(polys[0]["holes"][0]) == -9.0
    assert len(mask_to_polygons(m, min_part_area=2, min_hole_area=10)[0]["holes"]) == 0
    assert mask_to_polygons(m, min_part_area=1000) == []
    # a region touching the border is not a hole, whatever its size
    b = np.ones((5, 5), dtype=bool)
    b[0, 2] = False
    assert mask_to_polygons(b, min_hole_area=100)[0]["exterior"] != [
        [0.0, 0.0],
        [5.0, 0.0],
        [5.0, 5.0],
        [0.0, 5.0],
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([[0, 1]], "numpy.ndarray"),
        (np.zeros((3,), dtype=bool), "2-D"),
        (np.zeros((2, 2, 1), dtype=bool), "2-D"),
        (np.zeros((0, 4), dtype=bool), "non-zero"),
        (np.array([[0, 2]], dtype=np.uint8), "binary"),
        (np.array([[0, 128, 255]], dtype=np.uint8), "binary"),
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([["a"]]), "dtype"),
        (np.array([[1 + 1j]]), "dtype"),
    ],
)
def test_bad_masks_raise_clear_value_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        mask_to_polygons(bad)


def test_accepted_dtypes_agree():
    base = np.array([[0, 1, 1], [1, 0, 1]], dtype=bool)
    ref = mask_to_polygons(base)
    for arr in (base.astype(np.uint8), base.astype(np.int64) * 255, base.astype(np.float32)):
        assert mask_to_polygons(arr) == ref
    np.testing.assert_array_equal(validate_mask(base.astype(np.uint8) * 255), base)
    with pytest.raises(ValueError, match="min_part_area"):
        mask_to_polygons(base, min_part_area=-1)
    with pytest.raises(ValueError, match="min_hole_area"):
        mask_to_polygons(base, min_hole_area=float("nan"))


def test_non_contiguous_input_view():
    m = np.zeros((10, 10), dtype=bool)
    m[2:8, 3:6] = True
    roundtrip(m[::-1, ::2])
    roundtrip(m.T)


@settings(max_examples=150, deadline=None)
@given(noise_masks())
def test_roundtrip_exact_on_random_noise(m):
    roundtrip(m)


@settings(max_examples=60, deadline=None)
@given(blob_masks())
def test_roundtrip_exact_on_random_blobs(m):
    roundtrip(m)


# ---- compiled tracer vs the numpy reference, trace_flat vs mask_to_polygons ----------------


def assert_same_rings(m: np.ndarray) -> None:
    got = trace_rings(m)
    ref = trace_rings_numpy(m)
    assert len(got) == len(ref), (len(got), len(ref))
    for i, ((ring, lab), (ring_ref, lab_ref)) in enumerate(zip(got, ref, strict=True)):
        assert lab == lab_ref and type(lab) is int, (i, lab, lab_ref)
        assert ring.dtype == np.int64 and ring.shape == ring_ref.shape, (i, ring.shape, ring_ref.shape)
        np.testing.assert_array_equal(ring, ring_ref, err_msg=f"ring {i}")


def special_masks() -> list[np.ndarray]:
    out = [np.zeros((1, 1), bool), np.ones((1, 1), bool), np.zeros((5, 7), bool), np.ones((6, 3), bool)]
    for h, w in [(1, 9), (9, 1), (8, 8), (7, 10), (1, 2), (2, 1)]:
        checker = np.indices((h, w)).sum(axis=0) % 2 == 0
        out += [checker, ~checker]
    # saddles: diagonal pairs, diagonal lines, a ring with a diagonal gap, nested rings
    out.append(np.array([[1, 0], [0, 1]], bool))
    out.append(np.array([[0, 1], [1, 0]], bool))
    out.append(np.eye(9, dtype=bool) | np.eye(9, k=3, dtype=bool) | np.fliplr(np.eye(9, dtype=bool)))
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False
    ring[3, 3] = True
    gap = ring.copy()
    gap[1, 1] = False
    gap[2, 2] = True
    out += [ring, ~ring, gap, ~gap]
    nest = np.zeros((15, 15), bool)
    for k in range(0, 8, 2):
        nest[k : 15 - k, k : 15 - k] = not nest[k, k]
    out += [nest, ~nest]
    # border contact on all four sides, comb-like holes
    border = np.zeros((6, 8), bool)
    border[0, :3] = border[-1, 4:] = border[2:5, 0] = border[1:3, -1] = True
    comb = np.ones((9, 12), bool)
    comb[1:-1:2, 1:-1] = False
    out += [border, ~border, comb, comb.T, ~comb]
    return out


def random_masks(seed: int, count: int, max_side: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        h, w = (int(v) for v in rng.integers(1, max_side + 1, 2))
        if i % 4 == 3:  # smooth blobs with holes (lower-frequency noise, thresholded)
            small = rng.random((max(h // 4, 1), max(w // 4, 1))).astype(np.float32)
            m = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) > rng.uniform(0.3, 0.7)
        else:
            m = rng.random((h, w)) < rng.choice([0.05, 0.3, 0.5, 0.7, 0.95])
        out.append(m)
    return out


@pytest.mark.parametrize("m", special_masks(), ids=lambda m: f"{m.shape[0]}x{m.shape[1]}")
def test_compiled_tracer_matches_reference_on_special_masks(m):
    assert_same_rings(m)


def test_compiled_tracer_matches_reference_on_random_masks():
    for m in random_masks(seed=5, count=600, max_side=24) + random_masks(seed=6, count=40, max_side=150):
        assert_same_rings(m)


def test_compiled_tracer_accepts_views_and_non_bool_dtypes():
    rng = np.random.default_rng(7)
    m = rng.random((30, 40)) < 0.5
    ref = trace_rings_numpy(m)
    for view in (m[::-1, ::2], m.T, m[3:-2, 5:]):
        assert_same_rings(view)
    for arr in (m.astype(np.uint8), m.astype(np.float32)):
        got = trace_rings(arr)
        assert [lab for _, lab in got] == [lab for _, lab in ref]
        for (a, _), (b, _) in zip(got, ref, strict=True):
            np.testing.assert_array_equal(a, b)
    # a bool array whose bytes are not 0/1 still means "nonzero is foreground"
    raw = (m.astype(np.uint8) * rng.integers(1, 256, m.shape).astype(np.uint8)).view(bool)
    got = trace_rings(raw)
    assert len(got) == len(ref)
    for (a, la), (b, lb) in zip(got, ref, strict=True):
        assert la == lb
        np.testing.assert_array_equal(a, b)


def test_compiled_tracer_matches_reference_on_shared_data():
    grab = sorted((DATA / "grabcut" / "masks").glob("*.bmp"))
    isbi = sorted((DATA / "isbi-membrane" / "label").glob("*.png"), key=lambda p: int(p.stem))
    if not grab and not isbi:
        pytest.skip(f"shared data not available: {DATA} (set LABELHUB_SHARED_DATA)")
    masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) == 255 for p in grab]
    masks += [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) >= 128 for p in isbi]
    for m in masks:
        assert_same_rings(m)
    for m in masks[:: max(len(masks) // 10, 1)]:  # inverted: many more holes and saddles
        assert_same_rings(~m)


def flat_to_dicts(pts, off, poly, n_polys) -> list[dict]:
    out: list[dict] = [{"exterior": None, "holes": []} for _ in range(n_polys)]
    for i in range(len(poly)):
        ring = pts[off[i] : off[i + 1]].tolist()
        if out[poly[i]]["exterior"] is None:
            out[poly[i]]["exterior"] = ring
        else:
            out[poly[i]]["holes"].append(ring)
    return out


@pytest.mark.parametrize(("min_part_area", "min_hole_area"), [(0, 0), (3, 0), (0, 4), (5, 2.5)])
def test_trace_flat_agrees_with_mask_to_polygons(min_part_area, min_hole_area):
    masks = special_masks() + random_masks(seed=11, count=120, max_side=40)
    for m in masks:
        pts, off, poly, n_polys = trace_flat(m, min_part_area=min_part_area, min_hole_area=min_hole_area)
        polys = mask_to_polygons(m, min_part_area=min_part_area, min_hole_area=min_hole_area)
        assert pts.dtype == np.float64 and pts.ndim == 2 and pts.shape[1] == 2
        assert off.dtype == np.int64 and poly.dtype == np.int64 and type(n_polys) is int
        assert len(off) == len(poly) + 1 and off[0] == 0 and off[-1] == len(pts)
        assert n_polys == len(polys)
        assert np.all(np.diff(poly) >= 0) and (
            n_polys == 0 or np.array_equal(np.unique(poly), np.arange(n_polys))
        )
        areas = [ring_signed_area(pts[a:b]) for a, b in zip(off[:-1], off[1:], strict=True)]
        first = np.r_[True, poly[1:] != poly[:-1]] if len(poly) else np.zeros(0, bool)
        assert all((a > 0) == f for a, f in zip(areas, first, strict=True))
        assert flat_to_dicts(pts, off, poly, n_polys) == polys


def test_trace_flat_validates_like_mask_to_polygons():
    with pytest.raises(ValueError, match="binary"):
        trace_flat(np.array([[0, 2]], dtype=np.uint8))
    with pytest.raises(ValueError, match="min_part_area"):
        trace_flat(np.ones((2, 2), bool), min_part_area=-1)
    pts, off, poly, n_polys = trace_flat(np.zeros((3, 3), np.uint8))
    assert pts.shape == (0, 2) and off.tolist() == [0] and poly.size == 0 and n_polys == 0
    m = prepare_mask(np.array([[255, 0, 255]], np.uint8), min_part_area=0)
    assert m.dtype == bool and m.flags.c_contiguous and m.tolist() == [[True, False, True]]
