"""The U-Net, its training loop and inference: shapes, determinism for a seed, learning a simple
task, and regions per class (components for thing classes, one region for stuff classes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.train import TrainConfig, load_model, train_model
from workers.train.inference import label_regions, predict_labels, predict_probabilities
from workers.train.unet import UNet


def discs(n: int, seed: int = 0, size: int = 40):
    """Bright discs (class 1) and squares (class 2) on a dark noisy background."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    yy, xx = np.mgrid[:size, :size]
    for _ in range(n):
        img = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
        lab = np.zeros((size, size), np.int64)
        cx, cy = rng.integers(10, 30, 2)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 36
        lab[disc] = 1
        img[disc] = (220, 200, 40)
        r, c = rng.integers(0, size - 6, 2)
        sq = np.zeros_like(disc)
        sq[r : r + 5, c : c + 5] = True
        sq &= ~disc
        lab[sq] = 2
        img[sq] = (40, 90, 230)
        images.append(img)
        labels.append(lab)
    return images, labels


def test_default_unet_is_about_two_million_parameters_and_keeps_the_size():
    model = UNet(n_classes=3)
    assert 1.8e6 < sum(p.numel() for p in model.parameters()) < 2.1e6
    out = model(torch.zeros(1, 3, 64, 48))
    assert out.shape == (1, 3, 64, 48)


TINY = TrainConfig(
    n_classes=3, epochs=8, steps_per_epoch=5, batch_size=4, crop=32, width=8, depth=2, lr=0.02, threads=1
)


def test_training_is_deterministic_for_a_seed_and_reports_progress():
    images, labels = discs(6)
    rows = []
    a = train_model(
        images[:4],
        labels[:4],
        config=TINY,
        heldout_images=images[4:],
        heldout_labels=labels[4:],
        progress=rows.append,
    )
    b = train_model(images[:4], labels[:4], config=TINY, heldout_images=images[4:], heldout_labels=labels[4:])
    untimed = [[{k: v for k, v in r.items() if k != "seconds"} for r in x.history] for x in (a, b)]
    assert a.weights == b.weights and untimed[0] == untimed[1]
    assert [r["epoch"] for r in rows] == list(range(1, 9))
    assert set(rows[-1]) == {"epoch", "epochs", "loss", "metrics", "seconds"}
    assert set(a.metrics) == {"pixel_accuracy", "dice", "iou", "boundary_f1"}
    assert rows[-1]["loss"] < rows[0]["loss"]
    other = train_model(images[:4], labels[:4], config=TrainConfig(**{**TINY.__dict__, "seed": 1}))
    assert other.weights != a.weights


def test_a_trained_model_segments_held_out_images_and_reloads():
    images, labels = discs(10)
    config = TrainConfig(**{**TINY.__dict__, "epochs": 25})
    result = train_model(
        images[:8], labels[:8], config=config, heldout_images=images[8:], heldout_labels=labels[8:]
    )
    assert result.metrics["pixel_accuracy"] > 0.9 and result.metrics["dice"] > 0.6, result.history
    model, loaded = load_model(result.weights)
    assert loaded.n_classes == 3
    probs = predict_probabilities(model, images[9])
    assert probs.shape == (3, 40, 40) and np.allclose(probs.sum(0), 1, atol=1e-4)
    assert predict_labels(model, images[9][:37, :35]).shape == (37, 35)  # padded and cropped back


def test_label_regions_components_for_things_one_region_for_stuff():
    probs = np.zeros((3, 10, 10), np.float32)
    probs[0] = 0.6
    probs[1, 1:3, 1:3] = 0.9  # two components of class 1
    probs[1, 6:9, 6:9] = 0.8
    probs[2, 0, 5:10] = 0.7  # class 2 in two pieces
    probs[2, 9, 0:3] = 0.7
    things = label_regions(probs)
    assert [(r.class_index, int(r.mask.sum())) for r in things] == [(1, 9), (1, 4), (2, 5), (2, 3)]
    assert things[0].score == pytest.approx(0.8)
    stuff = label_regions(probs, stuff={2})
    assert [(r.class_index, int(r.mask.sum())) for r in stuff] == [(1, 9), (1, 4), (2, 8)]
    # Pieces under min_area take their most probable other class: the 4-pixel square and the 3-pixel
    # piece of class 2 go (to background), and so does a 1-pixel pinhole in the 9-pixel square.
    probs[1, 7, 7] = 0.1
    cleaned = label_regions(probs, min_area=5)
    assert [(r.class_index, int(r.mask.sum())) for r in cleaned] == [(1, 9), (2, 5)]
