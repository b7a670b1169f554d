"""Segmenting an image too large for one pass, tile by tile with overlap, and merging the objects that
tile seams cut back into one region each. Pure functions (numpy only): the caller reads the tiles.

Two pieces from different tiles are one object when, inside the rectangle both tiles cover (their
overlap), they share at least `min_overlap` of the smaller one's pixels there. An object cut by a seam
is seen whole or in part by each tile around it; with an overlap wider than the cut, its parts meet in
the shared rectangle and are joined (union-find), and a small object seen whole by two tiles is kept
once. The merged object is the union of its pieces' masks.

Used by everything mode on gigapixel images (labelhub.predictions) and by project models run tile by
tile (workers.train.tiled): one merge for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Piece:
    """A mask at (x, y) in the image's coordinates (`mask` is cropped to its bounding box)."""

    x: int
    y: int
    mask: np.ndarray
    score: float
    tile: tuple[int, int, int, int] = (0, 0, 0, 0)  # x0, y0, x1, y1 of the tile that saw it
    tiles: list[int] = field(default_factory=list)

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.x + self.mask.shape[1], self.y + self.mask.shape[0]

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, size - tile + 1, step))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


def tile_grid(width: int, height: int, *, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Tiles (x0, y0, x1, y1) of at most `tile` px a side covering the image, neighbours sharing at
    least `overlap` px (the last row and column are moved back to end at the image's edge)."""
    if tile <= overlap:
        raise ValueError("tile must be larger than overlap")
    return [
        (x, y, min(x + tile, width), min(y + tile, height))
        for y in _starts(height, tile, overlap)
        for x in _starts(width, tile, overlap)
    ]


def crop_to_box(mask: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return int(x0), int(y0), np.ascontiguousarray(mask[y0:y1, x0:x1])


def _window(piece: Piece, box: tuple[int, int, int, int]) -> np.ndarray:
    """The part of `piece.mask` inside `box` (image coordinates), as an array of the box's size."""
    x0, y0, x1, y1 = box
    out = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), dtype=bool)
    px0, py0, px1, py1 = piece.box
    ix0, iy0, ix1, iy1 = max(x0, px0), max(y0, py0), min(x1, px1), min(y1, py1)
    if ix0 < ix1 and iy0 < iy1:
        out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = piece.mask[
            iy0 - py0 : iy1 - py0, ix0 - px0 : ix1 - px0
        ]
    return out


def _intersect(
    a: tuple[int, int, int, int], b: tuple[int, int, int, int]
) -> tuple[int, int, int, int] | None:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


# Side of the cells that find the pairs of pieces worth comparing (those whose boxes are near).
_CELL = 256


def _candidate_pairs(pieces: list[Piece]) -> list[tuple[int, int]]:
    """Pairs (i < j) of pieces seen by different tiles whose boxes meet, found through a grid of
    cells (each piece in the cells its box touches) instead of comparing every pair: a slide's tens
    of thousands of pieces would be ~10^9 pairs."""
    cells: dict[tuple[int, int], list[int]] = {}
    for i, piece in enumerate(pieces):
        x0, y0, x1, y1 = piece.box
        for cy in range(y0 // _CELL, (y1 - 1) // _CELL + 1):
            for cx in range(x0 // _CELL, (x1 - 1) // _CELL + 1):
                cells.setdefault((cx, cy), []).append(i)
    pairs: set[tuple[int, int]] = set()
    for members in cells.values():
        for k, i in enumerate(members):
            a = pieces[i]
            for j in members[k + 1 :]:
                b = pieces[j]
                if a.tile != b.tile and _intersect(a.box, b.box) is not None:
                    pairs.add((i, j) if i < j else (j, i))
    return sorted(pairs)


def merge_pieces(pieces: list[Piece], *, min_overlap: float = 0.5) -> list[Piece]:
    """Join the pieces of one object seen by different tiles (see the module's note); each result's
    score is the largest of its pieces'."""
    parent = list(range(len(pieces)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in _candidate_pairs(pieces):
        a, b = pieces[i], pieces[j]
        if find(i) == find(j):
            continue
        shared = _intersect(a.tile, b.tile)
        if shared is None:
            continue
        wa, wb = _window(a, shared), _window(b, shared)
        smaller = min(int(wa.sum()), int(wb.sum()))
        if smaller and int((wa & wb).sum()) >= min_overlap * smaller:
            parent[find(j)] = find(i)
    groups: dict[int, list[Piece]] = {}
    for i, piece in enumerate(pieces):
        groups.setdefault(find(i), []).append(piece)
    merged = []
    for members in groups.values():
        if len(members) == 1:
            merged.append(members[0])
            continue
        x0 = min(p.x for p in members)
        y0 = min(p.y for p in members)
        x1 = max(p.box[2] for p in members)
        y1 = max(p.box[3] for p in members)
        canvas = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        for p in members:
            canvas[p.y - y0 : p.box[3] - y0, p.x - x0 : p.box[2] - x0] |= p.mask
        merged.append(Piece(x0, y0, canvas, max(p.score for p in members), members[0].tile))
    return merged


def segment_tiled(
    read: Callable[[int, int, int, int], np.ndarray],
    width: int,
    height: int,
    segment: Callable[[np.ndarray], Iterable[tuple[np.ndarray, float]]],
    *,
    tile: int,
    overlap: int,
    min_overlap: float = 0.5,
) -> list[Piece]:
    """Run `segment` (pixels -> (mask, score) pairs of the tile's size) on every tile of the grid
    (`read(x0, y0, x1, y1)` gives a tile's pixels) and merge what the seams cut. Memory: one tile's
    pixels and masks at a time, plus every object's bounding-box mask."""
    pieces: list[Piece] = []
    for box in tile_grid(width, height, tile=tile, overlap=overlap):
        x0, y0, x1, y1 = box
        for mask, score in segment(read(x0, y0, x1, y1)):
            cropped = crop_to_box(np.asarray(mask, dtype=bool))
            if cropped is not None:
                cx, cy, part = cropped
                pieces.append(Piece(x0 + cx, y0 + cy, part, float(score), box))
    return merge_pieces(pieces, min_overlap=min_overlap)
