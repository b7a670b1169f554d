"""Inference of project models: image -> class probabilities -> label map -> regions.

Regions are masks per class: one region per connected component (8-connectivity) for a thing
class, one region holding every pixel of the class for a stuff class. The caller turns each mask
into polygons with the project's simplifier (``workers.geometry.mask_to_simplified_polygons``).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ClassRegion",
    "clean_labels",
    "image_stats",
    "label_regions",
    "normalise",
    "predict_labels",
    "predict_probabilities",
]


@dataclass
class ClassRegion:
    class_index: int  # 1..n-1 (0 is background)
    mask: np.ndarray  # (H, W) bool
    score: float  # mean probability of the class over the region's pixels


def _rgb_float(image: np.ndarray) -> np.ndarray:
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = np.repeat(x[:, :, None], 3, axis=2)
    return x


def image_stats(image: np.ndarray) -> tuple[float, float]:
    """The (mean, standard deviation) that :func:`normalise` gives ``image``: a part of a larger image
    (a tile) is normalised with its whole image's, as the model saw whole images in training."""
    x = _rgb_float(image)
    return float(x.mean()), float(x.std())


def normalise(image: np.ndarray, *, stats: tuple[float, float] | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32, zero mean and unit variance per image (or with
    ``stats``, the image's :func:`image_stats` when ``image`` is a part of it)."""
    x = _rgb_float(image)
    mean, std = stats if stats is not None else (x.mean(), x.std())
    x = (x - np.float32(mean)) / (np.float32(std) + np.float32(1e-6))
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def predict_probabilities(
    model, image: np.ndarray, *, device: str = "cpu", stats: tuple[float, float] | None = None
) -> np.ndarray:
    """``(H, W, 3)`` uint8 image -> ``(n_classes, H, W)`` float32 softmax probabilities. The image is
    padded (reflected) to multiples of ``2 ** model.depth`` and the result cropped back. ``stats``:
    normalise with these (see :func:`normalise`)."""
    import torch

    x = normalise(image, stats=stats)
    _, h, w = x.shape
    m = 2**model.depth
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > max(ph, pw) else "edge")
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.ascontiguousarray(x))[None].to(device))
        probs = logits.softmax(1)[0, :, :h, :w]
    return probs.float().cpu().numpy()


def predict_labels(model, image: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """``(H, W)`` int label map: the most probable class of each pixel."""
    return predict_probabilities(model, image, device=device).argmax(0).astype(np.int64)


def clean_labels(probabilities: np.ndarray, *, min_area: int) -> np.ndarray:
    """The argmax label map without specks: a connected piece (8-connectivity) of a class, or of the
    background, smaller than ``min_area`` pixels takes the most probable other class of its pixels
    (summed over the piece). Labelers would otherwise delete specks and fill pinholes by hand."""
    import cv2

    labels = probabilities.argmax(0)
    if min_area <= 1:
        return labels
    for c in range(probabilities.shape[0]):
        n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == c).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] >= min_area:
                continue
            part = comp == k
            votes = probabilities[:, part].sum(1)
            votes[c] = -1
            labels[part] = int(votes.argmax())
    return labels


def label_regions(
    probabilities: np.ndarray,
    *,
    stuff: Set[int] = frozenset(),
    min_area: int = 1,
    core: tuple[int, int, int, int] | None = None,
) -> list[ClassRegion]:
    """Regions of the label map of ``probabilities`` (``(C, H, W)``) cleaned of pieces under
    ``min_area`` pixels (:func:`clean_labels`), background (0) left out: classes in ``stuff`` give one
    region each, the others one per connected component. Ordered by class, then by component size
    (largest first). ``core`` (x0, y0, x1, y1): the label map is cleaned whole, then only this
    rectangle's regions are made (a tile read with context around it; masks of the core's size)."""
    import cv2

    labels = clean_labels(probabilities, min_area=min_area)
    if core is not None:
        x0, y0, x1, y1 = core
        labels = labels[y0:y1, x0:x1]
        probabilities = probabilities[:, y0:y1, x0:x1]
    out: list[ClassRegion] = []
    for c in range(1, probabilities.shape[0]):
        mask = labels == c
        if not mask.any():
            continue
        if c in stuff:
            out.append(ClassRegion(c, mask, float(probabilities[c][mask].mean())))
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        order = sorted(range(1, n), key=lambda k: -stats[k, cv2.CC_STAT_AREA])
        for k in order:
            part = comp == k
            out.append(ClassRegion(c, part, float(probabilities[c][part].mean())))
    return out
