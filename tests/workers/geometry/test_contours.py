from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from workers.geometry import mask_to_polygons, polygons_to_mask, validate_mask

from .helpers import assert_region_valid, blob_masks, noise_masks, signed_area


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
