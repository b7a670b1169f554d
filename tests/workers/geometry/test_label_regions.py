"""`label_regions` (all regions of an image in one vectorized pass) against the per-region
reference `polygons_to_mask` painted in order, and the label PNG encoder."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from workers.geometry import mask_to_polygons, polygons_to_mask
from workers.geometry.label_png import encode_label_png
from workers.geometry.raster import label_regions


def painted(regions: list, height: int, width: int) -> np.ndarray:
    """Reference: each region rasterized alone by polygons_to_mask, painted in order (later wins)."""
    out = np.zeros((height, width), dtype=np.int64)
    for k, polygons in enumerate(regions, 1):
        if polygons:
            try:
                out[polygons_to_mask(polygons, height, width)] = k
            except ValueError:  # degenerate ring (< 3 distinct points): not a stored polygon
                assume(False)
    return out


def check(regions: list, height: int, width: int) -> None:
    got = label_regions(regions, height, width)
    assert got.shape == (height, width)
    assert got.dtype == (np.uint8 if len(regions) <= 255 else np.uint16)
    np.testing.assert_array_equal(got, painted(regions, height, width))


coord = st.floats(-6.0, 30.0, allow_nan=False, allow_infinity=False)
grid = st.integers(-4, 28).map(float)  # integer vertices: crossings exactly on pixel centres
half = st.integers(-8, 56).map(lambda v: v / 2)  # half-integer vertices: vertices on centres


def ring(c: st.SearchStrategy[float]) -> st.SearchStrategy[list[list[float]]]:
    return st.lists(st.tuples(c, c).map(list), min_size=3, max_size=12)


def polygon(c: st.SearchStrategy[float]) -> st.SearchStrategy[dict]:
    # arbitrary rings: self-intersecting, either orientation, holes anywhere (even outside)
    return st.fixed_dictionaries(
        {"exterior": ring(c)},
        optional={"holes": st.lists(ring(c), max_size=2)},
    )


def regions_of(c: st.SearchStrategy[float]) -> st.SearchStrategy[list]:
    return st.lists(st.one_of(st.none(), st.lists(polygon(c), min_size=0, max_size=3)), max_size=8)


@settings(max_examples=150, deadline=None)
@given(regions=regions_of(coord), height=st.integers(1, 26), width=st.integers(1, 26))
def test_equals_reference_on_random_float_polygons(regions, height, width):
    check(regions, height, width)


@settings(max_examples=150, deadline=None)
@given(
    regions=st.one_of(regions_of(grid), regions_of(half)), height=st.integers(1, 24), width=st.integers(1, 24)
)
def test_equals_reference_on_grid_polygons_with_ties(regions, height, width):
    check(regions, height, width)


def test_closed_rings_holes_and_painter_order():
    square = {"exterior": [[1, 1], [4, 1], [4, 4], [1, 4], [1, 1]]}  # closed, counter-clockwise
    donut = {"exterior": [[0, 0], [6, 0], [6, 6], [0, 6]][::-1], "holes": [[[2, 2], [4, 2], [4, 4], [2, 4]]]}
    regions = [[donut], [square], None, [], [donut, square]]
    check(regions, 7, 7)
    top = label_regions(regions, 7, 7)
    assert top.max() == 5 and not (top == 3).any() and not (top == 4).any()
    check(regions[:2], 7, 7)
    assert (label_regions(regions[:2], 7, 7)[2:4, 2:4] == 2).all()  # the later square fills the hole


def test_many_regions_give_uint16():
    rng = np.random.default_rng(0)
    regions = []
    for _ in range(300):
        x, y = rng.uniform(0, 40, 2)
        r = rng.uniform(1, 6)
        t = np.sort(rng.uniform(0, 2 * np.pi, 7))
        regions.append([{"exterior": np.c_[x + r * np.cos(t), y + r * np.sin(t)].tolist()}])
    check(regions, 40, 45)
    assert label_regions(regions, 40, 45).max() > 255


def test_round_trip_of_traced_masks_is_exact():
    rng = np.random.default_rng(1)
    for _ in range(20):
        h, w = rng.integers(8, 40, 2)
        labels = np.zeros((h, w), dtype=np.int64)
        regions = []
        for k in range(1, 6):
            blob = rng.random((h, w)) < rng.uniform(0.2, 0.6)
            blob &= np.roll(blob, 1, 0) | np.roll(blob, 1, 1)  # some structure, holes, several parts
            regions.append(mask_to_polygons(blob) or None)
            labels[blob] = k
        np.testing.assert_array_equal(label_regions(regions, int(h), int(w)), labels)


def test_bad_size():
    with pytest.raises(ValueError):
        label_regions([], 0, 4)


@pytest.mark.parametrize("palette", [None, [(i * 7) % 256 for i in range(768)]])
def test_label_png_decodes_to_the_same_indices(palette):
    rng = np.random.default_rng(2)
    a = np.zeros((37, 53), dtype=np.uint8)
    a[5:20, 7:40] = rng.integers(0, 256, (15, 33))
    a[25:, :] = 7
    data = encode_label_png(a, palette)
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.mode == ("P" if palette else "L")
    assert img.size == (53, 37)
    np.testing.assert_array_equal(np.asarray(img), a)
    if palette:
        assert img.getpalette()[:768] == palette
    # every chunk's CRC is right (PIL checks IDAT's adler32 when it inflates)
    pos = 8
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        body = data[pos + 4 : pos + 8 + n]
        assert zlib.crc32(body) == int.from_bytes(data[pos + 8 + n : pos + 12 + n], "big")
        pos += 12 + n
    assert pos == len(data)


def test_label_png_rejects_other_arrays():
    with pytest.raises(ValueError):
        encode_label_png(np.zeros((3, 3), dtype=np.uint16))
    with pytest.raises(ValueError):
        encode_label_png(np.zeros((3, 3, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        encode_label_png(np.zeros((3, 3), dtype=np.uint8), [1, 2])


def test_voc_and_mask_layers_equal_region_by_region_painting():
    """The export's one-pass layers (labelhub.datasets.formats.voc) against the region-by-region
    painter it replaced (base.paint_layers): polygon and RLE mask regions mixed, over 254 regions."""
    from labelhub.datasets.formats.base import paint_layers
    from labelhub.datasets.formats.voc import MAX_INDEX, class_image, top_regions
    from workers.geometry import mask_to_rle

    rng = np.random.default_rng(3)
    h, w = 50, 60
    classes = {"a": 0, "b": 1, "c": 2}
    for n in (0, 1, 12, 254, 255, 300):
        regions = []
        for i in range(n):
            if i % 5 == 2:
                m = np.zeros((h, w), dtype=bool)
                y, x = rng.integers(0, 45), rng.integers(0, 55)
                m[y : y + rng.integers(1, 12), x : x + rng.integers(1, 12)] = True
                region = {"kind": "mask", "rle": mask_to_rle(m)}
            else:
                x, y = rng.uniform(-5, 65), rng.uniform(-5, 55)
                r = rng.uniform(1, 10)
                t = np.sort(rng.uniform(0, 2 * np.pi, 9))
                ring = np.c_[x + r * np.cos(t), y + r * np.sin(t)].tolist()
                region = {"kind": "polygon", "polygons": [{"exterior": ring, "holes": []}]}
            region["label"] = "abc"[rng.integers(0, 3)]
            regions.append(region)
        want_cls, want_obj = paint_layers(
            regions, h, w, lambda i, r: classes[r["label"]] + 1, lambda i, r: i + 1 if i < MAX_INDEX else None
        )
        top = top_regions(regions, h, w)
        obj = top if n <= MAX_INDEX else top_regions(regions[:MAX_INDEX], h, w)
        np.testing.assert_array_equal(class_image(top, regions, classes), want_cls)
        np.testing.assert_array_equal(obj, want_obj)
