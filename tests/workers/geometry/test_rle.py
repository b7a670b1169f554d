from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from pycocotools import mask as coco_mask

from workers.geometry import mask_to_rle, rle_area, rle_to_mask

from .helpers import noise_masks


@settings(max_examples=60, deadline=None)
@given(noise_masks(max_side=20))
def test_roundtrip_and_coco_compatibility(m):
    rle = mask_to_rle(m)
    assert rle["size"] == list(m.shape)
    assert isinstance(rle["counts"], str)
    np.testing.assert_array_equal(rle_to_mask(rle), m)
    assert rle_area(rle) == int(m.sum())
    ref = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
    assert ref["counts"].decode() == rle["counts"]


def test_uncompressed_counts_column_major():
    # 2x3, column-major: runs 1 bg, 2 fg, 3 bg
    rle = {"size": [2, 3], "counts": [1, 2, 3]}
    expected = np.array([[False, True, False], [True, False, False]])
    np.testing.assert_array_equal(rle_to_mask(rle), expected)
    assert rle_area(rle) == 2
    assert rle_to_mask({"size": [2, 3], "counts": mask_to_rle(expected)["counts"].encode()}).sum() == 2


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ({"size": [2, 3], "counts": [1, 2]}, "size mismatch"),
        ({"size": [2, 2], "counts": "0"}, "size mismatch"),
        ({"size": [2, 2], "counts": [1, -1, 4]}, "negative"),
        ({"size": [2], "counts": [4]}, "size"),
        ({"size": [2, 2]}, "'size' and 'counts'"),
        ({"size": [2, 2], "counts": 4}, "counts"),
        ({"size": [2, 2], "counts": "\x7f"}, "invalid character"),
        ({"size": [2, 2], "counts": "o"}, "truncated"),
        ("4", "dict"),
    ],
)
def test_bad_rle(rle, message):
    with pytest.raises(ValueError, match=message):
        rle_to_mask(rle)


def test_bad_mask_for_rle():
    with pytest.raises(ValueError, match="binary"):
        mask_to_rle(np.array([[0, 3]]))
