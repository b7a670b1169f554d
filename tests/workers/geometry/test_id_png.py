"""encode_id_png writes COCO panoptic segment-id PNGs: any PNG reader gets id = R + 256 G + 256^2 B back."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from workers.geometry import label_png
from workers.geometry.label_png import encode_id_png


def decoded(data: bytes) -> np.ndarray:
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def test_one_byte_and_wide_ids_read_back_exactly():
    rng = np.random.default_rng(0)
    small = np.repeat(rng.integers(0, 256, size=(40, 7), dtype=np.uint8), 9, axis=1)  # flat runs
    assert np.array_equal(decoded(encode_id_png(small)), small)
    wide = rng.integers(0, 1 << 24, size=(33, 50), dtype=np.uint32)
    wide[:, 10:30] = 70_000  # a run that needs all three channels
    assert np.array_equal(decoded(encode_id_png(wide)), wide)


@pytest.mark.parametrize("deflate", [label_png.deflate_isal, label_png.deflate_zlib_rle])
def test_both_deflaters_give_the_same_pixels(monkeypatch, deflate):
    """ISA-L (the default) and zlib's run-length fallback write the same id and label pixels."""
    monkeypatch.setattr(label_png, "_deflate", deflate)
    rng = np.random.default_rng(1)
    ids = np.repeat(rng.integers(0, 1 << 20, size=(30, 6), dtype=np.int64), 11, axis=1)
    assert np.array_equal(decoded(label_png.encode_id_png(ids)), ids)
    labels = np.repeat(rng.integers(0, 256, size=(25, 8), dtype=np.uint8), 5, axis=1)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(label_png.encode_label_png(labels)))), labels)
