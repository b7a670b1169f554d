"""Project models tile by tile (gigapixel pre-labels): on an image small enough to run both ways, the
tiled regions equal the one-pass regions object for object, objects cut by tile seams included.

The model is trained for a few seeded steps on real photographs (GrabCut) so that its regions are
blobs of many sizes rather than the specks of random weights; this is an equivalence check, not a
figure of mask quality."""

from __future__ import annotations

import numpy as np
import pytest

from tests.workers.sam._helpers import grabcut_dir
from workers.sam.tiled import tile_grid
from workers.train import TrainConfig, load_model, train_model
from workers.train.inference import image_stats, label_regions, predict_probabilities
from workers.train.tiled import context_margin, predict_regions_tiled, window_of

TILE, OVERLAP = 160, 32


def _grabcut(n: int):
    import cv2

    folder = grabcut_dir()
    names = sorted(p.stem for p in (folder / "images").glob("*.jpg"))[:n]
    if len(names) < n:
        pytest.skip(f"GrabCut images not available under {folder} (set LABELHUB_SHARED_DATA)")
    images, labels = [], []
    for name in names:
        images.append(np.ascontiguousarray(cv2.imread(str(folder / "images" / f"{name}.jpg"))[:, :, ::-1]))
        mask = cv2.imread(str(next((folder / "masks").glob(f"{name}.*"))), cv2.IMREAD_GRAYSCALE)
        labels.append((mask > 128).astype(np.int64))
    return images, labels


@pytest.fixture(scope="module")
def trained():
    """A U-Net (width 8, depth 3) trained for 16 seeded steps on 4 photographs, and a fifth one."""
    images, labels = _grabcut(5)
    config = TrainConfig(
        n_classes=2, epochs=2, steps_per_epoch=8, width=8, depth=3, crop=96, batch_size=4, lr=0.01, threads=1
    )
    result = train_model(images[:4], labels[:4], config=config)
    model, _ = load_model(result.weights)
    return model, images[4]


def _full(region, shape) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    for p in region.pieces:
        out[p.y : p.box[3], p.x : p.box[2]] |= p.mask
    return out


def _tiled(model, image, **kw):
    h, w = image.shape[:2]
    reads = []

    def read(x0, y0, x1, y1):
        reads.append((x0, y0, x1, y1))
        return image[y0:y1, x0:x1]

    regions = predict_regions_tiled(
        model, read, w, h, stats=image_stats(image), tile=TILE, overlap=OVERLAP, min_area=16, **kw
    )
    return regions, reads


def test_tiled_regions_equal_the_one_pass_regions_objects_across_seams_included(trained):
    model, image = trained
    h, w = image.shape[:2]
    whole = label_regions(predict_probabilities(model, image), min_area=16)
    tiled, reads = _tiled(model, image)
    grid = tile_grid(w, h, tile=TILE, overlap=OVERLAP)
    assert len(grid) >= 9 and len(reads) == len(grid)
    # each read is its tile with context, never the whole image
    assert all((x1 - x0) * (y1 - y0) < w * h / 2 for x0, y0, x1, y1 in reads)
    assert len(whole) >= 10 and len(tiled) == len(whole)  # none split in two, none kept twice
    masks = [_full(r, (h, w)) for r in tiled]
    crossing = 0
    for region in whole:
        ys, xs = np.nonzero(region.mask)
        crossing += not any(
            x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1 for x0, y0, x1, y1 in grid
        )
        ious = [(region.mask & m).sum() / (region.mask | m).sum() for m in masks]
        assert max(ious) >= 0.98, (int(region.mask.sum()), max(ious))
    assert crossing >= 3  # several objects lie across seams, the largest among them
    assert [int(r.mask.sum()) for r in whole[:5]] == [r.area for r in tiled[:5]]


def test_a_stuff_class_is_one_region_of_every_part(trained):
    model, image = trained
    whole = label_regions(predict_probabilities(model, image), stuff={1}, min_area=16)
    tiled, _ = _tiled(model, image, stuff={1})
    assert len(whole) == len(tiled) == 1 and len(tiled[0].pieces) > 1
    mask = _full(tiled[0], image.shape[:2])
    assert (mask & whole[0].mask).sum() / (mask | whole[0].mask).sum() >= 0.98


def test_windows_start_on_the_pooling_grid_with_the_receptive_field_around_the_tile():
    depth = 4
    margin = context_margin(depth)
    assert margin >= 7 * 2**depth - 5 + 2**depth and margin % 2**depth == 0
    assert window_of((0, 0, 100, 100), 1000, 800, depth=depth) == (0, 0, 100 + margin, 100 + margin)
    x0, y0, x1, y1 = window_of((500, 337, 600, 437), 1000, 800, depth=depth)
    assert x0 % 16 == 0 and y0 % 16 == 0 and x0 <= 500 - margin and y0 <= 337 - margin
    assert (x1, y1) == (600 + margin, 437 + margin)
    assert window_of((900, 700, 1000, 800), 1000, 800, depth=depth)[2:] == (1000, 800)
