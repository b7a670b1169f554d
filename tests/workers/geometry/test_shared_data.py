"""Checks on real masks from ../shared/data (skipped when the folder is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from workers.geometry import mask_to_polygons, mask_to_simplified_polygons, polygons_to_mask

from .helpers import assert_region_valid, n_vertices

DATA = Path(
    os.environ.get("LABELHUB_SHARED_DATA") or Path(__file__).resolve().parents[3].parent / "shared" / "data"
)


def _load(rel: str) -> np.ndarray:
    path = DATA / rel
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (set LABELHUB_SHARED_DATA)")
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert img is not None, f"could not read {path}"
    return img


@pytest.mark.parametrize(
    ("rel", "threshold"),
    [("grabcut/masks/106024.bmp", 255), ("isbi-membrane/label/0.png", 128)],
)
def test_real_masks_roundtrip_and_bounded(rel, threshold):
    m = _load(rel) >= threshold
    exact = mask_to_polygons(m)
    np.testing.assert_array_equal(polygons_to_mask(exact, *m.shape), m)
    out = mask_to_simplified_polygons(m, min_iou=0.98)
    assert_region_valid(out)
    back = polygons_to_mask(out, *m.shape)
    assert np.count_nonzero(back & m) / np.count_nonzero(back | m) >= 0.98
    assert len(out) == len(exact)
    assert n_vertices(out) < 0.25 * n_vertices(exact)
