from __future__ import annotations

import numpy as np
import pytest

from workers.geometry import polygon_is_valid, polygons_iou, polygons_to_mask

SQUARE = {"exterior": [[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0]], "holes": []}


def test_pixel_centre_rule():
    m = polygons_to_mask([SQUARE], 4, 4)
    expected = np.zeros((4, 4), dtype=bool)
    expected[1:3, 1:3] = True
    np.testing.assert_array_equal(m, expected)
    # a triangle covering the centres (0.5, 0.5), (1.5, 0.5), (0.5, 1.5) only
    tri = {"exterior": [[0, 0], [2.2, 0], [0, 2.2]]}
    np.testing.assert_array_equal(polygons_to_mask([tri], 2, 2), np.array([[True, True], [True, False]]))


def test_orientation_closed_rings_holes_union_and_clipping():
    cw = {"exterior": SQUARE["exterior"][::-1] + [SQUARE["exterior"][-1]]}  # clockwise, closed
    np.testing.assert_array_equal(polygons_to_mask([cw], 4, 4), polygons_to_mask([SQUARE], 4, 4))
    with_hole = {
        "exterior": [[0, 0], [5, 0], [5, 5], [0, 5]],
        "holes": [[[1, 1], [4, 1], [4, 4], [1, 4]]],  # same orientation as exterior on purpose
    }
    m = polygons_to_mask([with_hole], 5, 5)
    assert m.sum() == 25 - 9
    # union: the hole of one polygon is filled by another polygon
    m2 = polygons_to_mask([with_hole, SQUARE], 5, 5)
    assert m2.sum() == 25 - 9 + 4
    big = {"exterior": [[-10, -10], [10, -10], [10, 10], [-10, 10]]}
    assert polygons_to_mask([big], 3, 4).all()
    assert not polygons_to_mask([{"exterior": [[5, 5], [6, 5], [6, 6]]}], 3, 3).any()


def test_iou():
    other = {"exterior": [[2.0, 1.0], [4.0, 1.0], [4.0, 3.0], [2.0, 3.0]]}
    assert polygons_iou([SQUARE], [SQUARE], 5, 5) == 1.0
    assert polygons_iou([SQUARE], [other], 5, 5) == pytest.approx(2 / 6)
    assert polygons_iou([], [], 5, 5) == 1.0
    assert polygons_iou([SQUARE], [], 5, 5) == 0.0


@pytest.mark.parametrize(
    ("polys", "message"),
    [
        ({"exterior": []}, "list of polygon dicts"),
        ([{"holes": []}], "exterior"),
        ([{"exterior": [[0, 0], [1, 0]]}], "at least 3"),
        ([{"exterior": [[0, 0], [1, 0], [1, float("nan")]]}], "NaN"),
        ([{"exterior": [[0, 0, 0], [1, 0, 0], [1, 1, 0]]}], "pairs"),
        ([{"exterior": "abc"}], "pairs"),
    ],
)
def test_bad_polygons(polys, message):
    with pytest.raises(ValueError, match=message):
        polygons_to_mask(polys, 4, 4)


def test_bad_size():
    with pytest.raises(ValueError, match="height"):
        polygons_to_mask([SQUARE], 0, 4)
    with pytest.raises(ValueError, match="width"):
        polygons_to_mask([SQUARE], 4, 2.5)


def test_polygon_is_valid():
    assert polygon_is_valid(SQUARE)
    bowtie = {"exterior": [[0, 0], [2, 2], [2, 0], [0, 2]], "holes": []}
    assert not polygon_is_valid(bowtie)
    hole_outside = dict(SQUARE, holes=[[[5, 5], [6, 5], [6, 6]]])
    assert not polygon_is_valid(hole_outside)
    assert not polygon_is_valid({"exterior": [[0, 0], [1, 1], [2, 2]]})  # zero area
    assert not polygon_is_valid({"exterior": [[0, 0]]})
    assert not polygon_is_valid("not a polygon")  # type: ignore[arg-type]
