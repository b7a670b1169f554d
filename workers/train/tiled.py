"""Project models on images too large for one pass (gigapixel slides and scenes): the network runs tile
by tile at full resolution, each tile read with context around it, and the objects that tile seams cut
are merged into one region by the merge everything mode uses (:func:`workers.sam.tiled.merge_pieces`).

Why the context: a U-Net's output at a pixel depends on the pixels within its receptive field
(``7 * 2**depth - 5`` px for :class:`workers.train.unet.UNet`) and, through its max-pooling, on where
the input starts modulo ``2**depth``. Each tile is therefore read with :func:`context_margin` pixels
more on every side (clipped to the image), its window starting at a multiple of ``2**depth``, and
normalised with the whole image's mean and deviation (:func:`workers.train.inference.image_stats`):
the probabilities in the tile equal those of one pass over the whole image (up to float rounding), so
the label map is cleaned of specks on the window and cut to the tile only then. Neighbouring tiles see
the same labels in their overlap, and a piece of an object in one tile shares its pixels there with
the piece in the next; union-find joins them, and the merged object's mask is the union.

Memory: one window's pixels, probabilities and activations at a time, plus every object's mask cropped
to its bounding box (objects, not the image: a slide's background is never held). Pure numpy and torch,
no Django: the caller gives ``read(x0, y0, x1, y1) -> (y1 - y0, x1 - x0, 3) uint8``.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass

import numpy as np

from workers.sam.tiled import Piece, crop_to_box, merge_pieces, tile_grid

from .inference import label_regions, predict_probabilities

__all__ = ["TiledRegion", "context_margin", "predict_regions_tiled", "window_of"]


@dataclass
class TiledRegion:
    """A region in full-resolution image coordinates: a thing class's one object, or every part of a
    stuff class (`pieces`: masks at (x, y), each cropped to its bounding box; disjoint)."""

    class_index: int
    pieces: list[Piece]
    score: float

    @property
    def area(self) -> int:
        return sum(p.area for p in self.pieces)


def context_margin(depth: int) -> int:
    """Pixels of context read around a tile: a multiple of ``2**depth`` at least the U-Net's
    receptive-field radius (``7 * 2**depth - 5``) plus one pooling cell."""
    return 8 * 2**depth


def window_of(
    box: tuple[int, int, int, int], width: int, height: int, *, depth: int
) -> tuple[int, int, int, int]:
    """The window read for tile `box`: the tile grown by :func:`context_margin`, inside the image, its
    origin moved down to a multiple of ``2**depth`` (the pooling grid of a whole-image pass)."""
    align, margin = 2**depth, context_margin(depth)
    x0, y0, x1, y1 = box
    return (
        max(0, (x0 - margin) // align * align),
        max(0, (y0 - margin) // align * align),
        min(width, x1 + margin),
        min(height, y1 + margin),
    )


def predict_regions_tiled(
    model,
    read: Callable[[int, int, int, int], np.ndarray],
    width: int,
    height: int,
    *,
    stats: tuple[float, float],
    tile: int,
    overlap: int,
    stuff: Set[int] = frozenset(),
    min_area: int = 1,
    device: str = "cpu",
    min_overlap: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> list[TiledRegion]:
    """The regions of :func:`workers.train.inference.label_regions` on the whole image, computed tile
    by tile (see the module's note): ordered by class, then by area (largest first). ``stats``: the
    whole image's (mean, std); ``progress(done, total)`` after each tile. A region's score is the
    largest of its pieces' (each a mean probability over the piece)."""
    by_class: dict[int, list[Piece]] = {}
    grid = tile_grid(width, height, tile=tile, overlap=overlap)
    for done, box in enumerate(grid, start=1):
        x0, y0, x1, y1 = box
        wx0, wy0, wx1, wy1 = window_of(box, width, height, depth=model.depth)
        probs = predict_probabilities(model, read(wx0, wy0, wx1, wy1), device=device, stats=stats)
        core = (x0 - wx0, y0 - wy0, x1 - wx0, y1 - wy0)
        # every class by connected component here; a stuff class's parts are gathered after the merge
        for part in label_regions(probs, min_area=min_area, core=core):
            cropped = crop_to_box(part.mask)
            if cropped is not None:
                cx, cy, mask = cropped
                by_class.setdefault(part.class_index, []).append(
                    Piece(x0 + cx, y0 + cy, mask, part.score, box)
                )
        del probs
        if progress is not None:
            progress(done, len(grid))
    out: list[TiledRegion] = []
    for c in sorted(by_class):
        merged = sorted(merge_pieces(by_class[c], min_overlap=min_overlap), key=lambda p: -p.area)
        if c in stuff:
            out.append(TiledRegion(c, merged, max(p.score for p in merged)))
        else:
            out.extend(TiledRegion(c, [p], p.score) for p in merged)
    return out
