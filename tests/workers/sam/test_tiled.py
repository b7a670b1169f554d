"""Everything mode tile by tile: objects cut by tile seams come back whole."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage import data, filters

from workers.sam.tiled import Piece, merge_pieces, segment_tiled, tile_grid


def _coins():
    """A real photograph (skimage's coins, 303x384) and a pixel-local segmenter of it: a fixed
    threshold and connected components, so the untiled answer is the reference for the tiled one."""
    gray = data.coins()
    threshold = filters.threshold_otsu(gray)

    def segment(pixels: np.ndarray):
        labels, n = ndimage.label(ndimage.binary_opening(pixels > threshold, iterations=2))
        return [(labels == i, float((labels == i).sum())) for i in range(1, n + 1)]

    return gray, segment


def _full(piece: Piece, shape) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    out[piece.y : piece.box[3], piece.x : piece.box[2]] = piece.mask
    return out


def test_tile_grid_covers_the_image_with_the_overlap():
    grid = tile_grid(1000, 700, tile=256, overlap=64)
    covered = np.zeros((700, 1000), dtype=int)
    for x0, y0, x1, y1 in grid:
        assert x1 - x0 <= 256 and y1 - y0 <= 256
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    xs = sorted({g[0] for g in grid})
    assert all(b - a <= 256 - 64 for a, b in zip(xs, xs[1:], strict=False))
    assert max(g[2] for g in grid) == 1000 and max(g[3] for g in grid) == 700
    assert tile_grid(100, 50, tile=256, overlap=64) == [(0, 0, 100, 50)]
    with pytest.raises(ValueError):
        tile_grid(100, 100, tile=64, overlap=64)


def test_objects_cut_by_seams_come_back_whole():
    gray, segment = _coins()
    shape = gray.shape
    whole = [m for m, _ in segment(gray) if m.sum() >= 200]
    tiled = segment_tiled(
        lambda x0, y0, x1, y1: gray[y0:y1, x0:x1], shape[1], shape[0], segment, tile=96, overlap=24
    )
    tiled_masks = [_full(p, shape) for p in tiled if p.area >= 200]
    grid = tile_grid(shape[1], shape[0], tile=96, overlap=24)
    crossing = 0
    for mask in whole:
        ys, xs = np.nonzero(mask)
        inside_one = any(
            x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1 for x0, y0, x1, y1 in grid
        )
        crossing += not inside_one
        ious = [(mask & t).sum() / (mask | t).sum() for t in tiled_masks]
        assert max(ious) >= 0.98
    assert crossing >= 5  # the check is about seams: several coins lie across them
    assert len(tiled_masks) == len(whole)  # none split in two, none kept twice


def test_pieces_of_different_objects_stay_apart():
    tile_a, tile_b = (0, 0, 60, 40), (40, 0, 100, 40)
    left = np.zeros((10, 18), dtype=bool)
    left[:, :] = True
    right = np.zeros((10, 15), dtype=bool)
    right[:, :] = True
    # both reach into the shared columns 40..60 but do not touch each other there
    a = Piece(30, 5, left, 0.5, tile_a)
    b = Piece(50, 5, right, 0.7, tile_b)
    assert len(merge_pieces([a, b])) == 2
    c = Piece(42, 5, right, 0.9, tile_b)  # now they share most of a's pixels in 40..60
    merged = merge_pieces([a, c])
    assert len(merged) == 1 and merged[0].box == (30, 5, 57, 15) and merged[0].score == 0.9
