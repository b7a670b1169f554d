"""encode_id_png writes COCO panoptic segment-id PNGs: any PNG reader gets id = R + 256 G + 256^2 B back."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

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
